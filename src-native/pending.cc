#include "pending.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <set>

#include "uapi.h"

namespace fan {
namespace {

// Every live table, so that exit() can answer what is pending: process.exit()
// runs no env cleanup hooks, but it does run atexit handlers. Leaked on purpose
// so it outlives static destructors.
std::mutex& RegistryMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::set<PendingPermissions*>& Registry() {
  static std::set<PendingPermissions*>* live = new std::set<PendingPermissions*>;
  return *live;
}

}  // namespace

PendingPermissions::PendingPermissions(int group_fd, uint32_t default_response)
    : group_fd_(group_fd), default_response_(default_response) {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(AnswerAllAtExit); });
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().insert(this);
}

PendingPermissions::~PendingPermissions() {
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Registry().erase(this);
  }
  AnswerAll();
}

void PendingPermissions::AnswerAllAtExit() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (PendingPermissions* table : Registry()) table->AnswerAll();
}

uint32_t PendingPermissions::Add(int event_fd, Clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t token = next_token_++;
  if (next_token_ == 0) next_token_ = 1;  // 0 means "no token" to JavaScript
  entries_[token] = Entry{event_fd, deadline};
  return token;
}

int PendingPermissions::WriteLocked(int fd, uint32_t response, const void* info,
                                    size_t info_len) {
  fanotify_response base{fd, response};
  iovec iov[2] = {{&base, sizeof base}, {const_cast<void*>(info), info_len}};
  ssize_t n;
  do {
    n = writev(group_fd_, iov, info_len ? 2 : 1);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? errno : 0;
}

int PendingPermissions::Answer(uint32_t token, uint32_t response, const void* info,
                               size_t info_len) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return ENOENT;
  int err = WriteLocked(it->second.fd, response, info, info_len);
  // ENOENT from the kernel: the waiter is gone (killed); the event is over too.
  if (err != 0 && err != ENOENT) return err;
  close(it->second.fd);
  entries_.erase(it);
  return 0;
}

void PendingPermissions::AnswerExpired(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.deadline <= now) {
      WriteLocked(it->second.fd, default_response_, nullptr, 0);
      close(it->second.fd);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

void PendingPermissions::AnswerAllLocked() {
  for (auto& [token, entry] : entries_) {
    WriteLocked(entry.fd, default_response_, nullptr, 0);
    close(entry.fd);
  }
  entries_.clear();
}

void PendingPermissions::AnswerAll() {
  std::lock_guard<std::mutex> lock(mu_);
  AnswerAllLocked();
}

PendingPermissions::Clock::time_point PendingPermissions::NextDeadline() {
  std::lock_guard<std::mutex> lock(mu_);
  Clock::time_point next = Clock::time_point::max();
  for (auto& [token, entry] : entries_)
    if (entry.deadline < next) next = entry.deadline;
  return next;
}

size_t PendingPermissions::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace fan
