// Reading a fanotify group: one batch per read(), and, for permission groups,
// the thread that guarantees every permission event an answer.
//
// Notification groups are read by the JS thread's loop only (see poller.h).
// Permission groups are read by the JS thread too, while it waits for events
// (no hand-off: the lowest latency), but a reader thread also checks the fd,
// often while events flow and less often while all is quiet: when events stay
// unread and nobody read since its last check, the JS thread is busy or blocked
// (perhaps in one of our own opens), and the thread reads them itself: it
// answers this process's own events "allow" at once and hands the rest over.
// It also answers events whose deadline passed, whatever the JS thread is
// doing. No N-API in here.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "parser.h"
#include "pending.h"
#include "uapi.h"
#include "unique_fd.h"

namespace fan {

struct Batch {
  std::vector<uint8_t> bytes;
  ParsedBatch parsed;
  int error = 0;  // errno of a failed read(); then there are no events
};

// Closes the fds a batch carries; for a batch that will never reach JavaScript.
// Its permission events must have been answered already.
void CloseBatchFds(const Batch& batch);

// One non-blocking read() into `scratch` (its size is the most read at once),
// parsed into a batch of exactly the bytes read. Null on EAGAIN; a failed read
// gives a batch with `error` set. The scratch buffer is reused across calls:
// allocating and zeroing 64 KiB per read would cost more than the read.
std::unique_ptr<Batch> ReadBatch(int group_fd, std::vector<uint8_t>& scratch);

struct ReaderOptions {
  bool allow_self = true;   // answer this process's permission events natively
  uint32_t self_response = FAN_ALLOW;  // ... with this
  bool report_tid = false;  // event pid is a thread id
  std::chrono::milliseconds timeout{5000};  // for permission events; <0: none
  size_t buffer_size = 4096;
};

class Reader {
 public:
  // deliver() takes the batch, or leaves it (false) when it cannot be delivered
  // (closing, or too much waits for JavaScript): then its permission events
  // get the default answer and its fds are closed here.
  using Deliver = std::function<bool(std::unique_ptr<Batch>&)>;

  Reader(int group_fd, PendingPermissions* pending, ReaderOptions options, Deliver deliver);
  ~Reader();  // stops and joins
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Reads one batch now if the kernel has events (non-blocking), files its
  // permission events and answers our own; null when there is nothing left to
  // hand over. Called by the JS thread and by the reader thread, each with a
  // scratch buffer of its own.
  std::unique_ptr<Batch> ReadNow(std::vector<uint8_t>& scratch);
  void Stop();

 private:
  void Run();
  void Wake();
  bool IsSelf(int pid) const;
  // Files permission events in the pending table, answers our own, and removes
  // the rows of the ones answered here.
  void RoutePermissionEvents(Batch* batch);

  int group_fd_;
  PendingPermissions* pending_;
  ReaderOptions options_;
  Deliver deliver_;
  UniqueFd wake_fd_;
  pid_t self_pid_;
  std::atomic<uint64_t> reads_{0};  // batches read, by either thread
  // When the reader thread wakes up next on its own (steady-clock ticks):
  // events filed on the JS thread wake it only if their deadline is earlier.
  std::atomic<int64_t> next_wakeup_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace fan
