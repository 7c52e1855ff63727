// The JavaScript handle of one fanotify group: owns the group fd, its reader
// thread and its table of pending permission events, and hands batches of
// events to JavaScript through a thread-safe function.
#pragma once

#include <napi.h>

#include <memory>

#include "pending.h"
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
  void CloseGroup();
  void Delivered();
  void UpdateRef();

  Napi::Env env_;
  UniqueFd fd_;
  std::unique_ptr<PendingPermissions> pending_;
  std::unique_ptr<Reader> reader_;
  Tsfn tsfn_;
  Sink* sink_ = nullptr;
  bool closed_ = false;
  bool refed_ = true;           // ref()/unref() from JavaScript
  bool read_pending_ = false;   // a read() waits for its batch
  bool loop_held_ = false;      // the tsfn currently keeps the loop alive
  bool cleanup_hook_added_ = false;
  static void OnEnvCleanup(void* group);
};

}  // namespace fan
