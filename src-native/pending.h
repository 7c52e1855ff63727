// Permission events read from the kernel and not answered yet.
//
// A process is blocked in the kernel until its event is answered, so this table
// is the one place that guarantees an answer: from JavaScript (Answer), when the
// deadline passes (AnswerExpired, called by the reader thread even while the JS
// thread is blocked), and when the group closes, the env is torn down or the
// process exits (AnswerAll).
//
// The event fd is not closed by an answer while JavaScript may still use it
// (ev.fd must never come to name another file): the Group closes it when the
// event is released. An event released before its answer is closed here, on
// the answer (ReleaseWhenAnswered), just before it is written.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>

namespace fan {

class PendingPermissions {
 public:
  using Clock = std::chrono::steady_clock;

  PendingPermissions(int group_fd, uint32_t default_response);
  ~PendingPermissions();
  PendingPermissions(const PendingPermissions&) = delete;
  PendingPermissions& operator=(const PendingPermissions&) = delete;

  // Files an event. Returns the token JavaScript answers with; tokens are
  // never reused, so a late answer cannot hit a newer event whose fd number
  // happens to be the same.
  uint32_t Add(int event_fd, Clock::time_point deadline);

  // The longest info record after a response (an audit rule is 16 bytes).
  static constexpr size_t kMaxInfoLen = 64;

  // Returns 0 when answered, ENOENT when the token is not pending (answered
  // already), or the errno of the kernel's refusal (the event stays pending).
  int Answer(uint32_t token, uint32_t response, const void* info, size_t info_len);
  // Answers with the default; for events that will never reach JavaScript.
  void AnswerDefault(uint32_t token);
  // Nobody will look at the fd again: close it with the answer. False when
  // the token was answered already (then the caller closes the fd).
  bool ReleaseWhenAnswered(uint32_t token);

  void AnswerExpired(Clock::time_point now);
  void AnswerAll();
  // The nearest deadline, or Clock::time_point::max() when there is none.
  Clock::time_point NextDeadline();
  size_t size();

 private:
  struct Entry {
    int fd;
    Clock::time_point deadline;
    bool close_on_answer = false;
    bool fd_closed = false;
  };
  // Closes the fd if released, then writes the response. Caller holds mu_.
  int WriteLocked(Entry& entry, uint32_t response, const void* info, size_t info_len);
  static void AnswerAllAtExit();

  std::mutex mu_;
  int group_fd_;
  uint32_t default_response_;
  uint32_t next_token_ = 1;
  std::map<uint32_t, Entry> entries_;
  // The other live tables (pending.cc's registry, guarded by its mutex).
  PendingPermissions* prev_live_ = nullptr;
  PendingPermissions* next_live_ = nullptr;
};

}  // namespace fan
