// The JavaScript handle of one fanotify group: owns the group fd and how it is
// read. Notification groups are read on the JS thread's event loop (Poller);
// permission groups by a reader thread that owns the table of pending
// permission events and hands batches over through a thread-safe function.
#pragma once

#include <napi.h>

#include <memory>

#include "pending.h"
#include "poller.h"
#include "reader.h"
#include "unique_fd.h"

namespace fan {

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
  Napi::Value Respond(const Napi::CallbackInfo& info);
  Napi::Value AnswerPending(const Napi::CallbackInfo& info);
  Napi::Value PendingCount(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);

  static Napi::Value BatchToJs(Napi::Env env, const Batch& batch);
  void OnReadable();
  void CloseGroup();
  void Delivered();
  void UpdateRef();

  Napi::Env env_;
  UniqueFd fd_;
  std::unique_ptr<PendingPermissions> pending_;
  size_t buffer_size_ = 0;
  // Permission groups:
  std::unique_ptr<Reader> reader_;
  Tsfn tsfn_;
  Sink* sink_ = nullptr;
  // Notification groups:
  std::unique_ptr<Poller> poller_;
  Napi::FunctionReference on_batch_;
  std::unique_ptr<Napi::AsyncContext> async_context_;

  bool closed_ = false;
  bool refed_ = true;           // ref()/unref() from JavaScript
  bool read_pending_ = false;   // a read() waits for its batch
  bool loop_held_ = false;      // the tsfn currently keeps the loop alive (permission groups)
  bool cleanup_hook_added_ = false;
  static void OnEnvCleanup(void* group);
};

}  // namespace fan
