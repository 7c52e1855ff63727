#include "mount_watch.h"

#include <errno.h>
#include <fcntl.h>

#include <string>

#include "errors.h"

namespace fan {

Napi::Function MountTableWatch::Define(Napi::Env env) {
  return DefineClass(env, "MountTableWatch",
                     {
                         InstanceMethod<&MountTableWatch::Close>("close"),
                         InstanceMethod<&MountTableWatch::Ref>("ref"),
                         InstanceMethod<&MountTableWatch::Unref>("unref"),
                     });
}

MountTableWatch::MountTableWatch(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<MountTableWatch>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ErrnoError(env, errno, "open", path);
  fd_.reset(fd);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
  // POLLPRI only: the file is always readable (POLLIN), which would spin.
  poller_ = std::make_unique<Poller>(loop, fd, [this] { OnChange(); }, UV_PRIORITIZED);
  on_change_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "fanotify:mounts");
  poller_->Start();
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanup_hook_added_ = true;
}

MountTableWatch::~MountTableWatch() {
  CloseNow();
  if (cleanup_hook_added_) napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
}

void MountTableWatch::OnEnvCleanup(void* data) {
  auto* self = static_cast<MountTableWatch*>(data);
  self->cleanup_hook_added_ = false;
  self->CloseNow(true);
}

void MountTableWatch::CloseNow(bool teardown) {
  if (!poller_) return;
  if (teardown) poller_->CloseForTeardown();
  poller_.reset();
  fd_.reset();
}

// The kernel's poll of mountinfo reports a change once per open file (it
// remembers the table's event count per open file), so each wake-up is news;
// JavaScript reads the table again and compares.
void MountTableWatch::OnChange() {
  Napi::HandleScope scope(env_);
  try {
    on_change_.MakeCallback(Value(), {}, *async_context_);
  } catch (const Napi::Error&) {
    // JavaScript cannot run any more (a Worker being terminated).
  }
}

Napi::Value MountTableWatch::Close(const Napi::CallbackInfo& info) {
  CloseNow();
  return info.Env().Undefined();
}

Napi::Value MountTableWatch::Ref(const Napi::CallbackInfo& info) {
  if (poller_) poller_->Ref(true);
  return info.Env().Undefined();
}

Napi::Value MountTableWatch::Unref(const Napi::CallbackInfo& info) {
  if (poller_) poller_->Ref(false);
  return info.Env().Undefined();
}

}  // namespace fan
