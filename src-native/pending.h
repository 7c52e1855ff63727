// Permission events read from the kernel and not answered yet.
//
// A process is blocked in the kernel until its event is answered, so this table
// is the one place that guarantees an answer: from JavaScript (Answer), when the
// deadline passes (AnswerExpired, called by the reader thread even while the JS
// thread is blocked), and when the group closes, the env is torn down or the
// process exits (AnswerAll).
//
// The kernel finds the event an answer is for by fd number, oldest first, so
// an event's fd number must stay ours until the kernel has taken its answer:
// were it freed before, a newer event could get the same number and its
// answer would go to the older one. The event fd is not closed by an answer
// while JavaScript may still use it (ev.fd must never come to name another
// file): the Group closes it when the event is released. An event released
// before its answer is closed once the kernel has taken the answer. A
// writable one ('w', 'rw') has its file dropped just before the answer is
// written (an exec allowed while our writable fd is open fails with
// ETXTBSY), but not its number: a placeholder (an eventfd) is dup3()ed over
// it until then.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>

#include "unique_fd.h"

namespace fan {

class PendingPermissions {
 public:
  using Clock = std::chrono::steady_clock;

  // writable_fds: event fds are opened for writing. Throws std::system_error
  // when the placeholder fd cannot be made (writable fds only).
  PendingPermissions(int group_fd, uint32_t default_response, bool writable_fds);
  ~PendingPermissions();  // answers what is still pending
  PendingPermissions(const PendingPermissions&) = delete;
  PendingPermissions& operator=(const PendingPermissions&) = delete;

  // Files an event and returns the token JavaScript answers with. Tokens count
  // up from 1 in 64 bits and are never reused: JavaScript holds them as
  // numbers, exact up to 2^53, which is 285 years at a million events a
  // second, so a late answer with an old token finds nothing rather than a
  // newer event. Returns 0 once the table is shut (AnswerAll(true)): the event
  // was answered with the default at once, and the caller closes its fd.
  uint64_t Add(int event_fd, Clock::time_point deadline);

  // The longest info record after a response (an audit rule is 16 bytes).
  static constexpr size_t kMaxInfoLen = 64;

  // Returns 0 when answered, ENOENT when the token is not pending (answered
  // already), or the errno of the kernel's refusal (the event stays pending,
  // under its fd number).
  int Answer(uint64_t token, uint32_t response, const void* info, size_t info_len);
  // Answers with the default; for events that will never reach JavaScript.
  void AnswerDefault(uint64_t token);
  // Nobody will look at the fd again: close it with the answer. False when
  // the token was answered already (then the caller closes the fd).
  bool ReleaseWhenAnswered(uint64_t token);

  // Answers with the default what is past its deadline; returns how many.
  size_t AnswerExpired(Clock::time_point now);
  // Answers everything pending with the default. With shut, every event filed
  // later is answered so at once (the group is going away: nobody else will).
  void AnswerAll(bool shut = false);
  // The nearest deadline, or Clock::time_point::max() when there is none.
  Clock::time_point NextDeadline();

 private:
  struct Entry {
    int fd;
    Clock::time_point deadline;
    bool close_on_answer = false;
    bool file_dropped = false;  // the placeholder holds the number
  };
  // Writes a response for the entry; drops a released writable entry's file
  // first. Returns 0 or the kernel's errno. Caller holds mu_.
  int WriteLocked(Entry& entry, uint32_t response, const void* info, size_t info_len);
  // The default, or FAN_DENY when the kernel refuses the default (a deny
  // errno it lacks): never allow, and never an opener left waiting. Then the
  // entry is done with: its number closed if it was released. Caller holds mu_.
  void AnswerDefaultLocked(Entry& entry);
  // The entry is answered: a released entry's number goes now.
  static void Forget(Entry& entry);

  std::mutex mu_;
  int group_fd_;
  uint32_t default_response_;
  UniqueFd placeholder_;  // writable fds only
  uint64_t next_token_ = 1;
  bool shut_ = false;
  std::map<uint64_t, Entry> entries_;
};

}  // namespace fan
