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
// doing, and, when the group goes away, everything still pending or queued
// (Shutdown). No N-API in here.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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
  // A row's kEvToken is its token minus this (0: none), so that 64-bit
  // tokens fit the int32 table (PendingPermissions::Add).
  uint64_t token_base = 0;
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
  // Told how many permission events its deadline just answered (on the
  // reader thread), so that JavaScript can say so: nobody else will.
  using Expired = std::function<void(size_t)>;

  Reader(int group_fd, PendingPermissions* pending, ReaderOptions options, Deliver deliver,
         Expired expired = nullptr);
  ~Reader();  // Shutdown()
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // The JS thread's read: one batch now if the kernel has events
  // (non-blocking), its permission events filed and our own answered; null
  // when there is nothing to hand over, and while batches the reader thread
  // read are still on their way to JavaScript (they are older: events reach
  // JavaScript in the kernel's order).
  std::unique_ptr<Batch> ReadNow(std::vector<uint8_t>& scratch);
  // JavaScript took a batch the reader thread handed over.
  void Taken();
  // Answers everything, for good: removes the group's marks (so that the
  // queue ends), stops the thread, answers what is pending, then reads what
  // the kernel still holds and answers it (our own events as allowSelf says,
  // the rest the default). The kernel allows whatever is still queued when the group fd
  // closes: without this, a group with default 'deny' would fail open. For
  // close(), env teardown and process exit (every live Reader at exit());
  // once only.
  void Shutdown();

 private:
  void Run();
  void Stop();
  void Wake();
  bool IsSelf(int pid) const;
  // Files permission events in the pending table, answers our own (and,
  // once the table is shut, the rest), and removes the rows answered here.
  void RoutePermissionEvents(Batch* batch);
  // read() and RoutePermissionEvents(); caller holds read_mu_.
  std::unique_ptr<Batch> ReadLocked(std::vector<uint8_t>& scratch);
  static void ShutdownAllAtExit();

  int group_fd_;
  PendingPermissions* pending_;
  ReaderOptions options_;
  Deliver deliver_;
  Expired expired_;
  UniqueFd wake_fd_;
  pid_t self_pid_;
  // Held from a read() to the hand-over of its batch, so that the JS thread
  // never reads past a batch the reader thread has read and not handed over.
  std::mutex read_mu_;
  size_t handed_over_ = 0;  // batches on their way to JavaScript (read_mu_)
  std::atomic<uint64_t> reads_{0};  // batches read, by either thread
  // When the reader thread wakes up next on its own (steady-clock ticks):
  // events filed on the JS thread wake it only if their deadline is earlier.
  std::atomic<int64_t> next_wakeup_{0};
  std::atomic<bool> stopping_{false};
  std::once_flag shutdown_once_;
  std::thread thread_;
  // The other live Readers (reader.cc's registry, guarded by its mutex).
  Reader* prev_live_ = nullptr;
  Reader* next_live_ = nullptr;
};

}  // namespace fan
