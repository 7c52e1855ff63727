#include "group.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_set>
#include <utility>
#include <vector>

#include "errors.h"
#include "uapi.h"

namespace fan {

// Owned by the thread-safe function and deleted by its finalizer, so that
// batches still queued after the Group is gone find a valid place to look.
struct Group::Sink {
  explicit Sink(Group* g) : group(g) {}
  Group* group = nullptr;  // null once the group is closed
  std::mutex mu;
  // Fds of batches queued for JavaScript: close() closes them at once instead
  // of a loop turn later, when the thread-safe function frees its queue.
  std::unordered_set<int> in_transit;
  // Events queued for JavaScript, and those answered with the default instead
  // because too many were queued (reported with the next batch JS takes).
  size_t events_in_transit = 0;
  uint32_t dropped = 0;
  // Permission events answered by their deadline, not told to JavaScript yet.
  std::atomic<uint64_t> expired{0};

  // Queues a batch's fds and events; false (and counted as dropped) when the
  // queue is full: a blocked JS thread must not make us hold fds without bound.
  bool Put(const Batch& batch) {
    std::vector<int> fds;
    CollectFds(batch.parsed, &fds);
    std::lock_guard<std::mutex> lock(mu);
    if (events_in_transit + batch.parsed.size() > kMaxEventsInTransit) {
      dropped += static_cast<uint32_t>(batch.parsed.size());
      return false;
    }
    in_transit.insert(fds.begin(), fds.end());
    events_in_transit += batch.parsed.size();
    return true;
  }

  // Takes a batch out of the queue; returns its fds still there (not closed by
  // close()). `dropped` gets the drops so far, under the same lock as the
  // count that made them: a drop always finds a queued batch to report it.
  std::vector<int> Take(const Batch& batch, uint32_t* dropped_so_far = nullptr) {
    std::vector<int> fds, left;
    CollectFds(batch.parsed, &fds);
    std::lock_guard<std::mutex> lock(mu);
    for (int fd : fds)
      if (in_transit.erase(fd) > 0) left.push_back(fd);
    events_in_transit -= std::min(events_in_transit, batch.parsed.size());
    if (dropped_so_far != nullptr) *dropped_so_far = std::exchange(dropped, 0);
    return left;
  }

  uint32_t TakeDropped() {
    std::lock_guard<std::mutex> lock(mu);
    return std::exchange(dropped, 0);
  }
};

Napi::Function Group::Define(Napi::Env env) {
  return DefineClass(env, "Group",
                     {
                         InstanceAccessor<&Group::Fd>("fd"),
                         InstanceMethod<&Group::Read>("read"),
                         InstanceMethod<&Group::ReadAvailable>("readAvailable"),
                         InstanceMethod<&Group::Respond>("respond"),
                         InstanceMethod<&Group::AnswerPending>("answerPending"),
                         InstanceMethod<&Group::AnswerDefault>("answerDefault"),
                         InstanceMethod<&Group::Close>("close"),
                         InstanceMethod<&Group::Ref>("ref"),
                         InstanceMethod<&Group::Unref>("unref"),
                         InstanceMethod<&Group::Release>("release"),
                         InstanceMethod<&Group::Keep>("keep"),
                     });
}

Group::Group(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Group>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  unsigned init_flags = info[0].As<Napi::Number>().Uint32Value();
  unsigned event_f_flags = info[1].As<Napi::Number>().Uint32Value();
  Napi::Object options = info[2].As<Napi::Object>();
  Napi::Function on_batch = info[3].As<Napi::Function>();
  bool permission_class = options.Get("permissionClass").ToBoolean();
  size_t buffer_size = options.Get("bufferSize").ToNumber().Uint32Value();
  scratch_.resize(buffer_size);
  uint32_t default_response = options.Get("defaultResponse").ToNumber().Uint32Value();

  // Always non-blocking and close-on-exec: we poll, and a child process must
  // never inherit a group whose events it would not answer.
  int fd = fanotify_init(init_flags | FAN_CLOEXEC | FAN_NONBLOCK, event_f_flags);
  if (fd < 0) throw ErrnoError(env, errno, "fanotify_init");
  fd_.reset(fd);

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
  poller_ = std::make_unique<Poller>(loop, fd, [this] { OnReadable(); });
  poller_->Ref(false);  // until a read waits (SetReadPending)
  on_batch_ = Napi::Persistent(on_batch);
  Napi::Value on_expired = options.Get("onExpired");
  if (on_expired.IsFunction()) on_expired_ = Napi::Persistent(on_expired.As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "fanotify");

  if (permission_class) {
    ReaderOptions reader_options;
    reader_options.allow_self = options.Get("allowSelf").ToBoolean();
    // Absent (callers that predate it): allow, as before.
    Napi::Value self_response = options.Get("selfResponse");
    reader_options.self_response =
        self_response.IsNumber() ? self_response.As<Napi::Number>().Uint32Value() : FAN_ALLOW;
    reader_options.report_tid = (init_flags & FAN_REPORT_TID) != 0;
    reader_options.buffer_size = buffer_size;
    double timeout_ms = options.Get("timeoutMs").ToNumber().DoubleValue();
    reader_options.timeout = std::chrono::milliseconds(
        timeout_ms >= 0 && timeout_ms < 1e12 ? static_cast<int64_t>(timeout_ms) : -1);
    try {
      pending_ = std::make_unique<PendingPermissions>(fd, default_response, (event_f_flags & O_ACCMODE) != O_RDONLY);
    } catch (const std::system_error& e) {
      throw ErrnoError(env, e.code().value(), "eventfd");
    }
    sink_ = new Sink(this);
    tsfn_ = Tsfn::New(env, on_batch, "fanotify", 0, 1, sink_,
                      [](Napi::Env, Sink* sink, Sink*) { delete sink; }, sink_);
    tsfn_.Unref(env);  // the poller decides whether the loop stays alive
    Tsfn tsfn = tsfn_;
    Sink* sink = sink_;  // outlives the reader thread, which close() joins first
    try {
      reader_ = std::make_unique<Reader>(fd, pending_.get(), reader_options,
                                         [tsfn, sink](std::unique_ptr<Batch>& batch) {
                                           if (!sink->Put(*batch)) return false;
                                           if (tsfn.NonBlockingCall(batch.get()) != napi_ok) {
                                             sink->Take(*batch);  // the caller closes them
                                             return false;
                                           }
                                           batch.release();
                                           return true;
                                         },
                                         [tsfn, sink](size_t n) {
                                           // A null batch: "look at sink->expired".
                                           if (sink->expired.fetch_add(n) == 0) tsfn.NonBlockingCall(nullptr);
                                         });
    } catch (const std::system_error& e) {
      CloseGroup();
      // Its wake-up eventfd, or the thread.
      throw ErrnoError(env, e.code().value(), std::strncmp(e.what(), "eventfd", 7) == 0 ? "eventfd" : "pthread_create");
    }
  }
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanup_hook_added_ = true;
}

Group::~Group() {
  CloseGroup();
  if (cleanup_hook_added_) napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
}

// A Worker being terminated, or the main env shutting down: stop the thread
// before the env goes away and answer everything pending.
void Group::OnEnvCleanup(void* data) {
  auto* group = static_cast<Group*>(data);
  group->cleanup_hook_added_ = false;
  group->CloseGroup(true);
}

void Group::CloseGroup(bool teardown) {
  if (closed_) return;
  closed_ = true;
  // The uv handle goes before the fd it watches.
  if (teardown) poller_->CloseForTeardown();
  poller_.reset();
  // Stops and joins the thread, answers what is pending and what is still in
  // the kernel queue with the default, while every event fd is open.
  if (reader_) reader_->Shutdown();
  reader_.reset();
  pending_.reset();  // and its placeholder fd
  if (sink_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(sink_->mu);
      for (int fd : sink_->in_transit) close(fd);  // batches still queued
      sink_->in_transit.clear();
    }
    sink_->group = nullptr;
    tsfn_.Abort();        // queued batches are freed with env == nullptr
  }
  for (int fd : live_fds_) close(fd);
  live_fds_.clear();
  fd_.reset();
}

// A batch as lib/core/group.ts takes it: the errno of a failed read, or an ArrayBuffer.
Napi::Value Group::BatchToJs(Napi::Env env, const Batch& batch, uint32_t dropped) {
  std::vector<int> fds;
  CollectFds(batch.parsed, &fds);
  live_fds_.insert(fds.begin(), fds.end());
  if (batch.error != 0) return Napi::Number::New(env, batch.error);
  // One ArrayBuffer per batch: [event ints, record ints, byte count, events
  // dropped before it, token base low, high 32 bits], the event table, the
  // record table, the bytes read (JavaScript makes the views: one allocation
  // here instead of five, and no Buffer prototype to set).
  const ParsedBatch& parsed = batch.parsed;
  const int32_t header[kBatchHeaderInts] = {static_cast<int32_t>(parsed.events.size()),
                                            static_cast<int32_t>(parsed.records.size()),
                                            static_cast<int32_t>(batch.bytes.size()),
                                            static_cast<int32_t>(dropped),
                                            static_cast<int32_t>(batch.token_base & 0xffffffffu),
                                            static_cast<int32_t>(batch.token_base >> 32)};
  const size_t events_len = parsed.events.size() * sizeof(int32_t);
  const size_t records_len = parsed.records.size() * sizeof(int32_t);
  auto out = Napi::ArrayBuffer::New(env, sizeof header + events_len + records_len + batch.bytes.size());
  auto* p = static_cast<uint8_t*>(out.Data());
  memcpy(p, header, sizeof header);
  p += sizeof header;
  if (events_len) memcpy(p, parsed.events.data(), events_len);
  p += events_len;
  if (records_len) memcpy(p, parsed.records.data(), records_len);
  p += records_len;
  if (!batch.bytes.empty()) memcpy(p, batch.bytes.data(), batch.bytes.size());
  return out;
}

// A batch the reader thread read (permission groups).
void Group::CallJs(Napi::Env env, Napi::Function callback, Sink* sink, Batch* raw) {
  std::unique_ptr<Batch> batch(raw);
  // env == nullptr: the queue is being emptied after close(), which closed
  // every fd in transit already; the sink may be freed by then (Node runs the
  // finalizer first): touch nothing.
  if (env == nullptr || sink == nullptr) return;
  if (raw == nullptr) {  // events answered by their deadline
    uint64_t n = sink->expired.exchange(0);
    Group* group = sink->group;
    if (group == nullptr || n == 0 || group->on_expired_.IsEmpty()) return;
    try {
      group->on_expired_.Call({Napi::Number::New(env, static_cast<double>(n))});
    } catch (const Napi::Error&) {
      // JavaScript cannot run any more (a Worker being terminated).
    }
    return;
  }
  uint32_t dropped = 0;
  sink->Take(*batch, &dropped);  // out of transit: from here live_fds_ owns them
  if (sink->group == nullptr) return;  // closed: its fds were closed with it
  Group* group = sink->group;
  group->reader_->Taken();  // the JS thread may read again: nothing older is on its way
  group->SetReadPending(false);  // JavaScript reads again if it wants more
  try {
    callback.Call({group->BatchToJs(env, *batch, dropped)});
  } catch (const Napi::Error&) {
    // JavaScript cannot run any more (a Worker being terminated); its fds are
    // in live_fds_ and close with the group, its permission events with it too.
  }
}

uint32_t Group::TakeDropped() { return sink_ != nullptr ? sink_->TakeDropped() : 0; }

std::unique_ptr<Batch> Group::ReadNow() {
  std::unique_ptr<Batch> batch = reader_ ? reader_->ReadNow(scratch_) : ReadBatch(fd_.get(), scratch_);
  drained_ = batch && batch->error == 0 && batch->bytes.size() < scratch_.size() / 2;
  return batch;
}

// The poller saw the fd readable. The poller stays active between reads that
// follow each other (starting and stopping it costs epoll_ctl calls), and
// stops here, lazily, when nobody asked for more: that is the backpressure.
void Group::OnReadable() {
  if (!read_pending_) {
    poller_->Stop();
    return;
  }
  std::unique_ptr<Batch> batch = ReadNow();
  if (!batch) return;  // taken by the reader thread, or all ours: keep waiting
  SetReadPending(false);
  Napi::HandleScope scope(env_);
  try {
    // MakeCallback: a callback scope, so promises resolved in there settle now.
    on_batch_.MakeCallback(Value(), {BatchToJs(env_, *batch, TakeDropped())}, *async_context_);
  } catch (const Napi::Error&) {
    // As in CallJs: only when JavaScript cannot run any more (lib's handler
    // does not throw); the batch's fds and events close with the group.
  }
}

Napi::Value Group::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), closed_ ? -1 : fd_.get());
}

// read() -> a batch when the kernel has events now; otherwise undefined, and
// the batch comes later through the onBatch callback.
Napi::Value Group::Read(const Napi::CallbackInfo& info) {
  if (closed_) return info.Env().Undefined();
  // Events already queued are read at once, without a loop turn. Not after a
  // read that drained the queue while the poller still watches the fd: epoll
  // tells when more comes, and the read that would say EAGAIN is saved (one
  // system call per wake-up when events trickle in).
  if (!(drained_ && poller_->active())) {
    if (std::unique_ptr<Batch> batch = ReadNow()) return BatchToJs(info.Env(), *batch, TakeDropped());
  }
  poller_->Start();
  SetReadPending(true);
  return info.Env().Undefined();
}

// One read now, whatever the poller knows, and nothing armed when the queue
// is empty: for a caller that must see everything the kernel holds (watch()
// checking what happened since an event).
Napi::Value Group::ReadAvailable(const Napi::CallbackInfo& info) {
  if (closed_) return info.Env().Undefined();
  if (std::unique_ptr<Batch> batch = ReadNow()) return BatchToJs(info.Env(), *batch, TakeDropped());
  return info.Env().Undefined();
}

void Group::SetReadPending(bool pending) {
  read_pending_ = pending;
  if (poller_) poller_->Ref(ref_ && pending);
}

// Tokens come from JavaScript as numbers: exact below 2^53 (pending.h).
static uint64_t TokenArg(const Napi::Value& value) {
  double token = value.As<Napi::Number>().DoubleValue();
  return token >= 1 && token < 9007199254740992.0 ? static_cast<uint64_t>(token) : 0;
}

// respond(token, response, releaseFd, info?) -> 0, ENOENT (not pending) or
// the kernel's errno. releaseFd (or -1) is released first, as release() does,
// so that it closes just before the answer is written: one call, not two.
// It is released whatever the outcome: JavaScript must forget its number.
Napi::Value Group::Respond(const Napi::CallbackInfo& info) {
  uint64_t token = TokenArg(info[0]);
  uint32_t response = info[1].As<Napi::Number>().Uint32Value();
  int release_fd = info[2].As<Napi::Number>().Int32Value();
  if (release_fd >= 0) ReleaseFd(release_fd, token);
  const void* extra = nullptr;
  size_t extra_len = 0;
  if (info.Length() > 3 && info[3].IsBuffer()) {
    auto buf = info[3].As<Napi::Buffer<uint8_t>>();
    extra = buf.Data();
    extra_len = buf.Length();
  }
  int err = closed_ || !pending_ ? ENOENT : pending_->Answer(token, response, extra, extra_len);
  return Napi::Number::New(info.Env(), err);
}

Napi::Value Group::AnswerPending(const Napi::CallbackInfo& info) {
  if (!closed_ && pending_) pending_->AnswerAll();
  return info.Env().Undefined();
}

// answerDefault(token): for an event JavaScript drops unseen (FAN_DENY if the
// kernel refuses the default).
Napi::Value Group::AnswerDefault(const Napi::CallbackInfo& info) {
  if (!closed_ && pending_) pending_->AnswerDefault(TokenArg(info[0]));
  return info.Env().Undefined();
}

Napi::Value Group::Close(const Napi::CallbackInfo& info) {
  CloseGroup();
  return info.Env().Undefined();
}

// Whether a waiting read keeps the process alive. The poll handle may stay
// active between reads (Stop() is lazy), so it is referenced only while a
// read waits: whether the process stays alive never depends on what came
// after the last read.
Napi::Value Group::Ref(const Napi::CallbackInfo& info) {
  ref_ = true;
  SetReadPending(read_pending_);
  return info.Env().Undefined();
}

Napi::Value Group::Unref(const Napi::CallbackInfo& info) {
  ref_ = false;
  SetReadPending(read_pending_);
  return info.Env().Undefined();
}

// release(fd, token): JavaScript is done with an event fd (or pidfd). A
// permission event's fd waits for its answer, then closes with it.
Napi::Value Group::Release(const Napi::CallbackInfo& info) {
  ReleaseFd(info[0].As<Napi::Number>().Int32Value(), TokenArg(info[1]));
  return info.Env().Undefined();
}

void Group::ReleaseFd(int fd, uint64_t token) {
  if (live_fds_.erase(fd) == 0) return;  // not ours (any more)
  if (token != 0 && !closed_ && pending_ && pending_->ReleaseWhenAnswered(token)) return;
  close(fd);
}

// keep(fd) -> whether the fd was ours: the caller owns it from now on.
Napi::Value Group::Keep(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Napi::Boolean::New(info.Env(), live_fds_.erase(fd) > 0);
}

}  // namespace fan
