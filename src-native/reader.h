// The thread that reads a fanotify group.
//
// Notification groups are read on demand only (Request), so when JavaScript stops
// consuming, the backlog stays in the kernel queue, not in our memory.
// Permission groups are read all the time: the thread must see this process's
// own events (answered "allow" at once, since the JS thread may be the one
// blocked in open()) and must answer events whose deadline passed, whatever the
// JS thread is doing. No N-API in here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "parser.h"
#include "pending.h"
#include "unique_fd.h"

namespace fan {

struct Batch {
  std::vector<uint8_t> bytes;
  ParsedBatch parsed;
  int error = 0;  // errno of a failed read(); then there are no events
};

// Closes the fds a batch carries; for a batch that will never reach JavaScript.
void CloseBatchFds(const Batch& batch);

// One non-blocking read() of up to `size` bytes, parsed. Null on EAGAIN; a
// failed read gives a batch with `error` set.
std::unique_ptr<Batch> ReadBatch(int group_fd, size_t size);

struct ReaderOptions {
  bool permission_class = false;  // content or pre-content group
  bool allow_self = true;         // answer this process's permission events natively
  bool report_tid = false;        // event pid is a thread id
  std::chrono::milliseconds timeout{5000};  // for permission events; <0: none
  size_t buffer_size = 64 * 1024;
};

class Reader {
 public:
  // deliver() takes the batch, or returns it (false) when it cannot be delivered.
  using Deliver = std::function<bool(std::unique_ptr<Batch>&)>;

  Reader(int group_fd, PendingPermissions* pending, ReaderOptions options, Deliver deliver);
  ~Reader();  // stops and joins
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Reads one batch now if the kernel has events (non-blocking), files its
  // permission events and answers our own; null when there is nothing left to
  // hand over. The JS thread calls it too, so a busy consumer needs no hand-off.
  std::unique_ptr<Batch> ReadNow();
  // Asks the thread for one more batch (notification groups read nothing until asked).
  void Request();
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

  std::mutex mu_;
  bool demand_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fan
