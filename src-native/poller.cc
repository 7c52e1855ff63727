#include "poller.h"

#include <system_error>

namespace fan {

Poller::Poller(uv_loop_t* loop, int fd, std::function<void()> on_ready)
    : handle_(new uv_poll_t), on_ready_(std::move(on_ready)) {
  int err = uv_poll_init(loop, handle_, fd);
  if (err != 0) {
    delete handle_;  // never initialised: must not be uv_close()d
    throw std::system_error(-err, std::generic_category(), "uv_poll_init");
  }
  handle_->data = this;
}

Poller::~Poller() { Close(); }

void Poller::Start() {
  if (handle_ == nullptr || active_) return;
  active_ = uv_poll_start(handle_, UV_READABLE, OnPoll) == 0;
}

void Poller::Stop() {
  if (handle_ == nullptr || !active_) return;
  uv_poll_stop(handle_);
  active_ = false;
}

void Poller::Ref(bool ref) {
  if (handle_ == nullptr) return;
  if (ref) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
  else uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
}

void Poller::Close() {
  if (handle_ == nullptr) return;
  uv_poll_stop(handle_);
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  handle_ = nullptr;
  active_ = false;
}

void Poller::CloseForTeardown() {
  if (handle_ == nullptr) return;
  uv_poll_stop(handle_);
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), nullptr);
  handle_ = nullptr;
  active_ = false;
}

void Poller::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<Poller*>(handle->data);
  // On an error status the read reports it; either way the owner reads now.
  if (self != nullptr && self->on_ready_) self->on_ready_();
}

}  // namespace fan
