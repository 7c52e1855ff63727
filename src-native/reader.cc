#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <type_traits>

#include "uapi.h"

namespace fan {
namespace {

constexpr uint64_t kPermissionEvents =
    FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM | FAN_PRE_ACCESS;

// The reader thread checks the fd this often, backing off while all is quiet
// (to kMaxCheckMs) and while JavaScript reads (to kBusyCheckMs: a wake-up
// every millisecond cost a context switch per 30 answers when all share a
// CPU). A stall is seen at the second check after it, so the first of our
// own opens that the blocked JS thread waits on takes up to 2 * kBusyCheckMs
// after events flowed, kMaxCheckMs after a quiet spell, and the next ones
// kMinCheckMs.
constexpr int kMinCheckMs = 1;
constexpr int kBusyCheckMs = 8;
constexpr int kMaxCheckMs = 64;

uint64_t MaskOf(const int32_t* ev) {
  return static_cast<uint32_t>(ev[kEvMaskLo]) |
         (static_cast<uint64_t>(static_cast<uint32_t>(ev[kEvMaskHi])) << 32);
}

void ClosePidfds(const ParsedBatch& parsed, const int32_t* ev) {
  for (int32_t r = 0; r < ev[kEvRecordCount]; r++) {
    const int32_t* rec = &parsed.records[(ev[kEvFirstRecord] + r) * kRecordStride];
    if (rec[kRecType] == FAN_EVENT_INFO_TYPE_PIDFD && rec[kRecValid] && rec[kRecA] >= 0)
      close(rec[kRecA]);
  }
}

bool Readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP));
}

}  // namespace

void CloseBatchFds(const Batch& batch) {
  std::vector<int> fds;
  CollectFds(batch.parsed, &fds);
  for (int fd : fds) close(fd);
}

std::unique_ptr<Batch> ReadBatch(int group_fd, std::vector<uint8_t>& scratch) {
  ssize_t n;
  do {
    n = read(group_fd, scratch.data(), scratch.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return nullptr;
  auto batch = std::make_unique<Batch>();
  if (n < 0) {
    batch->error = errno;
    return batch;
  }
  batch->bytes.assign(scratch.begin(), scratch.begin() + n);
  ParseEvents(batch->bytes.data(), batch->bytes.size(), &batch->parsed);
  return batch;
}

// Every live Reader, so that exit() can answer what is pending and queued:
// process.exit() runs no env cleanup hooks, but it does run atexit handlers.
// A list through the Readers themselves under a constant-initialized mutex:
// nothing allocated (a heap registry leaked when a Worker-only process
// unloaded the addon) and nothing with a destructor that could run before the
// atexit handler.
namespace {
std::mutex registry_mu;
Reader* registry_head = nullptr;
static_assert(std::is_trivially_destructible_v<std::mutex>, "registry_mu must outlive exit()");
}  // namespace

Reader::Reader(int group_fd, PendingPermissions* pending, ReaderOptions options,
               Deliver deliver, Expired expired)
    : group_fd_(group_fd),
      pending_(pending),
      options_(options),
      deliver_(std::move(deliver)),
      expired_(std::move(expired)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      self_pid_(getpid()) {
  if (!wake_fd_.valid()) throw std::system_error(errno, std::generic_category(), "eventfd");
  thread_ = std::thread([this] { Run(); });
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(ShutdownAllAtExit); });
  std::lock_guard<std::mutex> lock(registry_mu);
  next_live_ = registry_head;
  if (next_live_ != nullptr) next_live_->prev_live_ = this;
  registry_head = this;
}

Reader::~Reader() {
  {
    // Waits for an exit() in progress, which may be using this Reader.
    std::lock_guard<std::mutex> lock(registry_mu);
    if (prev_live_ != nullptr) prev_live_->next_live_ = next_live_;
    else registry_head = next_live_;
    if (next_live_ != nullptr) next_live_->prev_live_ = prev_live_;
  }
  Shutdown();
}

void Reader::ShutdownAllAtExit() {
  std::lock_guard<std::mutex> lock(registry_mu);
  for (Reader* reader = registry_head; reader != nullptr; reader = reader->next_live_) reader->Shutdown();
}

void Reader::Wake() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_.get(), &one, sizeof one);
  (void)n;  // a full counter still wakes
}

void Reader::Stop() {
  stopping_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
}

void Reader::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    // No marks, no new events: the queue ends. First, so that an opener we
    // answer below opens its next file unwatched. (Mount namespace marks
    // carry no permission events.)
    for (unsigned type : {FAN_MARK_INODE, FAN_MARK_MOUNT, FAN_MARK_FILESYSTEM})
      fanotify_mark(group_fd_, FAN_MARK_FLUSH | type, 0, AT_FDCWD, "/");
    Stop();
    pending_->AnswerAll(/*shut=*/true);  // and every event filed from now on
    std::vector<uint8_t> scratch(options_.buffer_size);
    std::lock_guard<std::mutex> lock(read_mu_);
    for (;;) {
      std::unique_ptr<Batch> batch = ReadBatch(group_fd_, scratch);
      if (!batch) break;  // EAGAIN: the queue is empty
      // A failed read took its event off the queue (the kernel denied it),
      // unless the buffer was the trouble: then nothing more can be read.
      if (batch->error == EINVAL || batch->error == EFAULT) break;
      if (batch->error != 0) continue;
      RoutePermissionEvents(batch.get());  // ours the self answer, the rest the default
      CloseBatchFds(*batch);
    }
  });
}

bool Reader::IsSelf(int pid) const {
  if (pid == self_pid_) return true;
  // With FAN_REPORT_TID the pid is a thread id: ours if it is in our thread group.
  return options_.report_tid && syscall(SYS_tgkill, self_pid_, pid, 0) == 0;
}

void Reader::RoutePermissionEvents(Batch* batch) {
  ParsedBatch& parsed = batch->parsed;
  auto deadline = options_.timeout.count() < 0
                      ? PendingPermissions::Clock::time_point::max()
                      : PendingPermissions::Clock::now() + options_.timeout;
  size_t kept = 0;
  bool wake = false;
  bool based = false;
  for (size_t i = 0; i < parsed.size(); i++) {
    int32_t* ev = parsed.event(i);
    if ((MaskOf(ev) & kPermissionEvents) && ev[kEvFd] >= 0) {
      uint64_t token = 0;
      if (options_.allow_self && IsSelf(ev[kEvPid])) {
        fanotify_response answer{ev[kEvFd], options_.self_response};
        ssize_t n = write(group_fd_, &answer, sizeof answer);
        (void)n;  // the only failure is a waiter that is gone already
      } else {
        token = pending_->Add(ev[kEvFd], deadline);
      }
      if (token == 0) {
        // Our own access, or answered with the default at once (shut): not shown to JavaScript.
        close(ev[kEvFd]);
        ClosePidfds(parsed, ev);
        continue;
      }
      if (!based) batch->token_base = token - 1;  // the rows hold 1, 2, ...
      based = true;
      ev[kEvToken] = static_cast<int32_t>(token - batch->token_base);
      wake = wake || deadline.time_since_epoch().count() < next_wakeup_;
    }
    if (kept != i) std::memcpy(parsed.event(kept), ev, sizeof(int32_t) * kEventStride);
    kept++;
  }
  parsed.events.resize(kept * kEventStride);
  // Read on the JS thread: the reader thread must learn of a deadline earlier
  // than its next wake-up, or it sleeps in poll() past it.
  if (wake && std::this_thread::get_id() != thread_.get_id()) Wake();
}

std::unique_ptr<Batch> Reader::ReadLocked(std::vector<uint8_t>& scratch) {
  std::unique_ptr<Batch> batch = ReadBatch(group_fd_, scratch);
  if (!batch || batch->error != 0) return batch;
  reads_++;
  RoutePermissionEvents(batch.get());
  if (batch->parsed.size() == 0) return nullptr;  // all were our own
  return batch;
}

std::unique_ptr<Batch> Reader::ReadNow(std::vector<uint8_t>& scratch) {
  std::lock_guard<std::mutex> lock(read_mu_);
  if (handed_over_ > 0) return nullptr;
  return ReadLocked(scratch);
}

void Reader::Taken() {
  std::lock_guard<std::mutex> lock(read_mu_);
  if (handed_over_ > 0) handed_over_--;
}

void Reader::Run() {
  std::vector<uint8_t> scratch(options_.buffer_size);
  int check_ms = kMinCheckMs;
  uint64_t reads_seen = 0;
  int failing = 0;  // errno of the reads here while they keep failing
  while (!stopping_) {
    // Until the sleep below is computed, any newly filed event wakes us.
    next_wakeup_ = INT64_MAX;
    int timeout_ms = check_ms;
    auto next = pending_->NextDeadline();
    if (next != PendingPermissions::Clock::time_point::max()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(
          next - PendingPermissions::Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, check_ms));
    }
    next_wakeup_ = (PendingPermissions::Clock::now() + std::chrono::milliseconds(timeout_ms))
                       .time_since_epoch().count();
    // Not on the group fd: waking on every event would race the JS thread.
    pollfd wake{wake_fd_.get(), POLLIN, 0};
    if (poll(&wake, 1, timeout_ms) > 0) {
      uint64_t count;
      ssize_t n = read(wake_fd_.get(), &count, sizeof count);
      (void)n;
    }
    if (stopping_) break;
    size_t expired = pending_->AnswerExpired(PendingPermissions::Clock::now());
    if (expired > 0 && expired_) expired_(expired);
    uint64_t reads = reads_;
    bool progress = reads != reads_seen;
    reads_seen = reads;
    if (progress) failing = 0;
    if (progress || !Readable(group_fd_, 0)) {
      check_ms = std::min(check_ms * 2, progress ? kBusyCheckMs : kMaxCheckMs);
      continue;
    }
    // Unread events and no read since the last check: read them here.
    std::lock_guard<std::mutex> lock(read_mu_);
    std::unique_ptr<Batch> batch = ReadLocked(scratch);
    reads_seen = reads_;
    if (batch && batch->error != 0) {
      // A read that keeps failing (EMFILE: no fd for the event, which the
      // kernel denies then) is tried less and less often, up to every
      // kMaxCheckMs, and JavaScript hears of it once, not at every try.
      check_ms = std::min(check_ms * 2, kMaxCheckMs);
      if (batch->error == failing) continue;
      failing = batch->error;
    } else {
      check_ms = kMinCheckMs;
      failing = 0;
      if (!batch) continue;
    }
    if (deliver_(batch)) {
      handed_over_++;
      continue;
    }
    // Closing, or too many events wait for JavaScript: nobody will see these.
    for (size_t i = 0; i < batch->parsed.size(); i++)
      if (int32_t row = batch->parsed.event(i)[kEvToken]) pending_->AnswerDefault(batch->token_base + row);
    CloseBatchFds(*batch);
  }
}

}  // namespace fan
