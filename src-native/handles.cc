#include "handles.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "unique_fd.h"

namespace fan {

Napi::Value FsidOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  struct statfs st;
  if (statfs(path.c_str(), &st) != 0) throw ErrnoError(env, errno, "statfs", path);
  int32_t halves[2];
  static_assert(sizeof st.f_fsid == sizeof halves, "fsid is two 32-bit values");
  std::memcpy(halves, &st.f_fsid, sizeof halves);
  auto out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<uint32_t>(halves[0])));
  out.Set(1u, Napi::Number::New(env, static_cast<uint32_t>(halves[1])));
  return out;
}

namespace {

class PathOfHandleWorker : public Napi::AsyncWorker {
 public:
  PathOfHandleWorker(Napi::Function callback, int mount_fd, int handle_type,
                     const uint8_t* handle, size_t handle_len)
      : Napi::AsyncWorker(callback, "fanotify:resolve"),
        mount_fd_(mount_fd),
        handle_(sizeof(file_handle) + handle_len) {
    auto* fh = reinterpret_cast<file_handle*>(handle_.data());
    fh->handle_bytes = static_cast<unsigned>(handle_len);
    fh->handle_type = handle_type;
    std::memcpy(fh->f_handle, handle, handle_len);
  }

  void Execute() override {
    auto* fh = reinterpret_cast<file_handle*>(handle_.data());
    // O_PATH: no open permission events, works for any file type.
    UniqueFd fd(open_by_handle_at(mount_fd_, fh, O_PATH | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno != ESTALE && errno != ENOENT) err_ = errno;
      return;  // gone: null
    }
    std::string link = "/proc/self/fd/" + std::to_string(fd.get());
    char buf[4096];
    ssize_t n = readlink(link.c_str(), buf, sizeof buf);
    if (n < 0) {
      err_ = errno;
      return;
    }
    path_.assign(buf, static_cast<size_t>(n));
    found_ = true;
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      Callback().Call({ErrnoError(env, err_, "open_by_handle_at").Value()});
      return;
    }
    Callback().Call({env.Null(), found_ ? Napi::String::New(env, path_) : env.Null()});
  }

 private:
  int mount_fd_;
  std::vector<uint8_t> handle_;
  int err_ = 0;
  bool found_ = false;
  std::string path_;
};

}  // namespace

Napi::Value PathOfHandle(const Napi::CallbackInfo& info) {
  int mount_fd = info[0].As<Napi::Number>().Int32Value();
  int handle_type = info[1].As<Napi::Number>().Int32Value();
  auto handle = info[2].As<Napi::Buffer<uint8_t>>();
  auto* worker = new PathOfHandleWorker(info[3].As<Napi::Function>(), mount_fd, handle_type,
                                        handle.Data(), handle.Length());
  worker->Queue();
  return info.Env().Undefined();
}

}  // namespace fan
