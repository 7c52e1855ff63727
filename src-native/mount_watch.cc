#include "mount_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <cstdint>
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
  int stop = eventfd(0, EFD_CLOEXEC);
  if (stop < 0) throw ErrnoError(env, errno, "eventfd");
  stop_.reset(stop);
  on_change_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "fanotify:mounts");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
  auto* async = new uv_async_t;
  int err = uv_async_init(loop, async, [](uv_async_t* h) {
    if (h->data != nullptr) static_cast<MountTableWatch*>(h->data)->OnChange();
  });
  if (err != 0) {
    delete async;  // never initialised: must not be uv_close()d
    throw ErrnoError(env, -err, "uv_async_init");
  }
  async->data = this;
  async_ = async;
  thread_ = std::thread([this] { Wait(); });
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

// Each POLLPRI is one or more changes since the last one (the kernel keeps
// the table's event count per open file); uv_async_send() coalesces what
// comes before JavaScript runs, which reads the whole table anyway.
void MountTableWatch::Wait() {
  pollfd fds[2] = {{fd_.get(), POLLPRI, 0}, {stop_.get(), POLLIN, 0}};
  for (;;) {
    int n = poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents != 0) return;
    if (fds[0].revents & (POLLPRI | POLLERR)) uv_async_send(async_);
    if (fds[0].revents & (POLLNVAL | POLLHUP)) return;
  }
}

void MountTableWatch::CloseNow(bool teardown) {
  if (async_ == nullptr) return;
  uint64_t one = 1;
  if (thread_.joinable()) {
    ssize_t r;
    do r = write(stop_.get(), &one, sizeof one); while (r < 0 && errno == EINTR);
    thread_.join();
  }
  async_->data = nullptr;
  // While the env is torn down (a Worker terminated), Node may unload the
  // addon before libuv would run a close callback of ours: none then, and the
  // handle (a few dozen bytes) is left to the dying loop.
  if (teardown) uv_close(reinterpret_cast<uv_handle_t*>(async_), nullptr);
  else uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
  stop_.reset();
  fd_.reset();
}

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
  if (async_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
  return info.Env().Undefined();
}

Napi::Value MountTableWatch::Unref(const Napi::CallbackInfo& info) {
  if (async_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  return info.Env().Undefined();
}

}  // namespace fan
