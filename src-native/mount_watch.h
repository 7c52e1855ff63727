// MountTableWatch: calls JavaScript back whenever the mount table of a mount
// namespace changes. An open /proc/<pid>/mountinfo reports every change with
// POLLPRI (what libmount's monitor and systemd used before fanotify had mount
// events, Linux 6.15): the fallback for following mounts on older kernels.
#pragma once

#include <napi.h>

#include <memory>

#include "poller.h"
#include "unique_fd.h"

namespace fan {

class MountTableWatch : public Napi::ObjectWrap<MountTableWatch> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new MountTableWatch(mountinfoPath, onChange)
  explicit MountTableWatch(const Napi::CallbackInfo& info);
  ~MountTableWatch() override;

 private:
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  void OnChange();
  void CloseNow(bool teardown = false);
  static void OnEnvCleanup(void* self);

  Napi::Env env_;
  UniqueFd fd_;
  std::unique_ptr<Poller> poller_;  // goes before fd_ (the handle watches it)
  Napi::FunctionReference on_change_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  bool cleanup_hook_added_ = false;
};

}  // namespace fan
