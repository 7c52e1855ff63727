#include "pending.h"

#include <errno.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "uapi.h"

namespace fan {
namespace {

// Every live table, so that exit() can answer what is pending: process.exit()
// runs no env cleanup hooks, but it does run atexit handlers. A list through
// the tables themselves under a constant-initialized mutex: nothing allocated
// (a heap registry leaked when a Worker-only process unloaded the addon) and
// nothing with a destructor that could run before the atexit handler.
std::mutex registry_mu;
PendingPermissions* registry_head = nullptr;
static_assert(std::is_trivially_destructible_v<std::mutex>, "registry_mu must outlive exit()");

}  // namespace

PendingPermissions::PendingPermissions(int group_fd, uint32_t default_response)
    : group_fd_(group_fd), default_response_(default_response) {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(AnswerAllAtExit); });
  std::lock_guard<std::mutex> lock(registry_mu);
  next_live_ = registry_head;
  if (next_live_ != nullptr) next_live_->prev_live_ = this;
  registry_head = this;
}

PendingPermissions::~PendingPermissions() {
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    if (prev_live_ != nullptr) prev_live_->next_live_ = next_live_;
    else registry_head = next_live_;
    if (next_live_ != nullptr) next_live_->prev_live_ = prev_live_;
  }
  AnswerAll();
}

void PendingPermissions::AnswerAllAtExit() {
  std::lock_guard<std::mutex> lock(registry_mu);
  for (PendingPermissions* table = registry_head; table != nullptr; table = table->next_live_)
    table->AnswerAll();
}

uint32_t PendingPermissions::Add(int event_fd, Clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t token = next_token_++;
  if (next_token_ == 0) next_token_ = 1;  // 0 means "no token" to JavaScript
  entries_[token] = Entry{event_fd, deadline};
  return token;
}

int PendingPermissions::WriteLocked(Entry& entry, uint32_t response, const void* info,
                                    size_t info_len) {
  if (info_len > kMaxInfoLen) return EINVAL;
  // A released fd closes before the answer wakes the waiter: an exec allowed
  // while our fd (opened for writing with 'rw') is still open fails with
  // ETXTBSY. The kernel matches the answer by fd number against the events in
  // read order, so a number reused meanwhile by a newer event is harmless.
  if (entry.close_on_answer && !entry.fd_closed) {
    close(entry.fd);
    entry.fd_closed = true;
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

int PendingPermissions::Answer(uint32_t token, uint32_t response, const void* info,
                               size_t info_len) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return ENOENT;
  int err = WriteLocked(it->second, response, info, info_len);
  if (err != 0 && err != ENOENT) return err;  // refused: still pending
  entries_.erase(it);
  return 0;
}

void PendingPermissions::AnswerDefault(uint32_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return;
  WriteLocked(it->second, default_response_, nullptr, 0);
  entries_.erase(it);
}

bool PendingPermissions::ReleaseWhenAnswered(uint32_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return false;
  it->second.close_on_answer = true;
  return true;
}

void PendingPermissions::AnswerExpired(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.deadline <= now) {
      WriteLocked(it->second, default_response_, nullptr, 0);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

void PendingPermissions::AnswerAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [token, entry] : entries_) WriteLocked(entry, default_response_, nullptr, 0);
  entries_.clear();
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
