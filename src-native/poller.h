// A uv_poll_t on the group fd: the JS thread's own event loop waits for the
// kernel, so a batch costs one wake-up and no thread hand-off.
#pragma once

#include <uv.h>

#include <functional>

namespace fan {

class Poller {
 public:
  // on_ready runs on the loop's thread whenever the fd is readable while started.
  Poller(uv_loop_t* loop, int fd, std::function<void()> on_ready);  // throws std::system_error
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  void Start();
  void Stop();
  bool active() const { return active_; }
  void Ref(bool ref);
  // Stops and closes the handle; libuv frees it in its close callback, so this
  // must run before the fd is closed, and the Poller may go away at once.
  void Close();
  // The same while the env is torn down (a Worker terminated): Node may unload
  // the addon before libuv would run a close callback of ours, so there is
  // none, and the handle (a few dozen bytes) is left to the dying loop.
  void CloseForTeardown();

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);

  uv_poll_t* handle_;  // null once closed
  bool active_ = false;
  std::function<void()> on_ready_;
};

}  // namespace fan
