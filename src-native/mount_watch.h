// MountTableWatch: calls JavaScript back whenever the mount table of a mount
// namespace changes. An open /proc/<pid>/mountinfo reports every change with
// POLLPRI (what libmount's monitor and systemd used before fanotify had mount
// events, Linux 6.15): the fallback for following mounts on older kernels.
//
// A thread of its own waits in poll(2), not the loop's epoll. The kernel
// reports a change once per open file, to whichever poll asks first, and an
// epoll registration asks while it is made (libuv makes it at the loop's next
// turn) and drops the answer: a change between open() and that turn would be
// lost. poll(2) returns what it is told, so no change after open() is missed.
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>
#include <thread>

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
  void Wait();  // the thread
  void OnChange();
  void CloseNow(bool teardown = false);
  static void OnEnvCleanup(void* self);

  Napi::Env env_;
  UniqueFd fd_;
  UniqueFd stop_;           // an eventfd: written to end the thread
  uv_async_t* async_ = nullptr;  // the thread's wake-up of the loop; libuv frees it
  std::thread thread_;      // joined before async_ and the fds go
  Napi::FunctionReference on_change_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  bool cleanup_hook_added_ = false;
};

}  // namespace fan
