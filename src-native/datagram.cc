#include "datagram.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "unique_fd.h"

namespace fan {

int SendUnixDatagram(const std::string& path, const void* data, size_t len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path || path.find('\0') != std::string::npos) return ENAMETOOLONG;
  memcpy(addr.sun_path, path.data(), path.size());
  // A socket per datagram: errors are rare events, and an unconnected socket
  // needs no reconnecting when journald restarts.
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno;
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  // MSG_DONTWAIT: a stuck journald must not block the JS thread (and /metrics with it).
  ssize_t n = sendto(fd.get(), data, len, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), addr_len);
  return n < 0 ? errno : 0;
}

}  // namespace fan
