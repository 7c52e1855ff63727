// One datagram to a unix socket path: how the command line writes structured
// entries to systemd-journald (its native protocol, built in JavaScript), as
// Node has no unix datagram sockets. Plain C++, no N-API.
#pragma once

#include <stddef.h>

#include <string>

namespace fan {

// Sends `data` as one datagram to the AF_UNIX socket at `path`, without
// waiting: returns 0, or the errno (EAGAIN when the receiver's queue is full,
// ENOENT/ECONNREFUSED when nothing listens there, EMSGSIZE when too big).
int SendUnixDatagram(const std::string& path, const void* data, size_t len);

}  // namespace fan
