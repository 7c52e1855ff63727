// The JavaScript handle of one fanotify group: owns the group fd and reads it.
// The JS thread's loop waits on the fd while an iteration waits for events
// (Poller): a batch costs one wake-up and no thread hand-off. Permission groups
// also have a reader thread (see reader.h), which hands what it reads over
// through a thread-safe function.
#pragma once

#include <napi.h>

#include <memory>
#include <unordered_set>

#include "pending.h"
#include "poller.h"
#include "reader.h"
#include "unique_fd.h"

namespace fan {

// Ints before the tables in a batch's ArrayBuffer (lib/core/event.ts batchViews()).
constexpr size_t kBatchHeaderInts = 6;
// Events the reader thread may queue for a JS thread that does not take them
// (blocked, or busy for long): past this they are answered with the default at
// once and their fds closed, instead of holding an fd each until EMFILE.
constexpr size_t kMaxEventsInTransit = 4096;

class Group : public Napi::ObjectWrap<Group> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new Group(initFlags, eventFFlags, options, onBatch)
  explicit Group(const Napi::CallbackInfo& info);
  ~Group() override;

 private:
  struct Sink;  // what the thread-safe function's callbacks may touch
  static void CallJs(Napi::Env env, Napi::Function callback, Sink* sink, Batch* batch);
  using Tsfn = Napi::TypedThreadSafeFunction<Sink, Batch, CallJs>;

  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value ReadAvailable(const Napi::CallbackInfo& info);
  Napi::Value Respond(const Napi::CallbackInfo& info);
  Napi::Value AnswerPending(const Napi::CallbackInfo& info);
  Napi::Value AnswerDefault(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value Keep(const Napi::CallbackInfo& info);

  // Hands a batch to JavaScript: from here its fds are ours until released.
  // `dropped`: events answered with the default since the last batch because
  // too many waited for JavaScript (lib/ reports them as an overflow).
  Napi::Value BatchToJs(Napi::Env env, const Batch& batch, uint32_t dropped);
  uint32_t TakeDropped();
  std::unique_ptr<Batch> ReadNow();
  // Closes an fd handed to JavaScript, or, for a pending permission event's
  // fd (token != 0), has it closed with the answer.
  void ReleaseFd(int fd, uint64_t token);
  void OnReadable();
  // A read waits for a batch (or no longer): only then may the poll handle
  // keep the loop alive, and only while ref() is in force.
  void SetReadPending(bool pending);
  void CloseGroup(bool teardown = false);
  static void OnEnvCleanup(void* group);

  Napi::Env env_;
  UniqueFd fd_;
  std::vector<uint8_t> scratch_;  // the JS thread's read() buffer
  std::unique_ptr<Poller> poller_;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_expired_;  // permission events their deadline answered
  std::unique_ptr<Napi::AsyncContext> async_context_;
  // Permission groups only:
  std::unique_ptr<PendingPermissions> pending_;
  std::unique_ptr<Reader> reader_;
  Tsfn tsfn_;
  Sink* sink_ = nullptr;

  // Event fds and pidfds handed to JavaScript and not released or kept yet:
  // closed with the group, so a terminated Worker leaks none.
  std::unordered_set<int> live_fds_;
  bool read_pending_ = false;  // JavaScript waits for a batch
  bool ref_ = true;            // ref() / unref()
  // The last read took less than half the buffer: the kernel's queue was
  // empty then, and a read now would most likely return EAGAIN.
  bool drained_ = false;
  bool closed_ = false;
  bool cleanup_hook_added_ = false;
};

}  // namespace fan
