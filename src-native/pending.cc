#include "pending.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

#include "uapi.h"

namespace fan {

PendingPermissions::PendingPermissions(int group_fd, uint32_t default_response, bool writable_fds)
    : group_fd_(group_fd), default_response_(default_response) {
  if (!writable_fds) return;
  placeholder_.reset(eventfd(0, EFD_CLOEXEC));
  if (!placeholder_.valid()) throw std::system_error(errno, std::generic_category(), "eventfd");
}

PendingPermissions::~PendingPermissions() { AnswerAll(true); }

uint64_t PendingPermissions::Add(int event_fd, Clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_) {
    Entry entry{event_fd, deadline};
    AnswerDefaultLocked(entry);
    return 0;
  }
  uint64_t token = next_token_++;
  entries_.emplace(token, Entry{event_fd, deadline});
  return token;
}

int PendingPermissions::WriteLocked(Entry& entry, uint32_t response, const void* info,
                                    size_t info_len) {
  if (info_len > kMaxInfoLen) return EINVAL;
  // A released writable fd's file goes before the answer wakes the waiter:
  // an exec allowed while our fd (opened for writing with 'rw') is still open
  // fails with ETXTBSY. Its number stays ours (the placeholder) until the
  // answer is taken; should dup3() fail, the file stays open through the
  // write instead. (A read-only fd just closes after the answer: a dup3()
  // costs about a microsecond per answer.)
  if (entry.close_on_answer && placeholder_.valid() && !entry.file_dropped) {
    int r;
    do {
      r = dup3(placeholder_.get(), entry.fd, O_CLOEXEC);
    } while (r < 0 && (errno == EINTR || errno == EBUSY));
    entry.file_dropped = r >= 0;
  }
  // One write(), not writev(): fanotify has no write_iter, so writev() would
  // hand the kernel the response and its info record as separate writes.
  fanotify_response base{entry.fd, response};
  uint8_t buf[sizeof base + kMaxInfoLen];
  memcpy(buf, &base, sizeof base);
  if (info_len) memcpy(buf + sizeof base, info, info_len);
  ssize_t n;
  do {
    n = write(group_fd_, buf, sizeof base + info_len);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? errno : 0;
}

void PendingPermissions::Forget(Entry& entry) {
  if (entry.close_on_answer) close(entry.fd);
}

void PendingPermissions::AnswerDefaultLocked(Entry& entry) {
  int err = WriteLocked(entry, default_response_, nullptr, 0);
  if (err != 0 && err != ENOENT && default_response_ != FAN_DENY) WriteLocked(entry, FAN_DENY, nullptr, 0);
  Forget(entry);
}

int PendingPermissions::Answer(uint64_t token, uint32_t response, const void* info,
                               size_t info_len) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return ENOENT;
  int err = WriteLocked(it->second, response, info, info_len);
  if (err != 0 && err != ENOENT) return err;  // refused: still pending, under its number
  Forget(it->second);
  entries_.erase(it);
  return 0;
}

void PendingPermissions::AnswerDefault(uint64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return;
  AnswerDefaultLocked(it->second);
  entries_.erase(it);
}

bool PendingPermissions::ReleaseWhenAnswered(uint64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return false;
  it->second.close_on_answer = true;
  return true;
}

size_t PendingPermissions::AnswerExpired(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t answered = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.deadline <= now) {
      AnswerDefaultLocked(it->second);
      it = entries_.erase(it);
      answered++;
    } else {
      ++it;
    }
  }
  return answered;
}

void PendingPermissions::AnswerAll(bool shut) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [token, entry] : entries_) AnswerDefaultLocked(entry);
  entries_.clear();
  if (shut) shut_ = true;
}

PendingPermissions::Clock::time_point PendingPermissions::NextDeadline() {
  std::lock_guard<std::mutex> lock(mu_);
  Clock::time_point next = Clock::time_point::max();
  for (auto& [token, entry] : entries_)
    if (entry.deadline < next) next = entry.deadline;
  return next;
}

}  // namespace fan
