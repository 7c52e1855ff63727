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
  PathOfHandleWorker(Napi::Function callback, std::string mount_point, uint32_t fsid0,
                     uint32_t fsid1, int handle_type, const uint8_t* handle, size_t handle_len)
      : Napi::AsyncWorker(callback, "fanotify:resolve"),
        mount_point_(std::move(mount_point)),
        fsid_{fsid0, fsid1},
        handle_(sizeof(file_handle) + handle_len) {
    auto* fh = reinterpret_cast<file_handle*>(handle_.data());
    fh->handle_bytes = static_cast<unsigned>(handle_len);
    fh->handle_type = handle_type;
    std::memcpy(fh->f_handle, handle, handle_len);
  }

  void Execute() override {
    // Not O_PATH: open_by_handle_at refuses O_PATH mount fds (EBADF).
    UniqueFd mount_fd(open(mount_point_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct statfs st;
    uint32_t fsid[2];
    if (!mount_fd.valid() || fstatfs(mount_fd.get(), &st) != 0) {
      moved_ = true;
      return;
    }
    std::memcpy(fsid, &st.f_fsid, sizeof fsid);
    if (fsid[0] != fsid_[0] || fsid[1] != fsid_[1]) {
      moved_ = true;  // unmounted or replaced since the table was read
      return;
    }
    auto* fh = reinterpret_cast<file_handle*>(handle_.data());
    // O_PATH: no open permission events, works for any file type.
    UniqueFd fd(open_by_handle_at(mount_fd.get(), fh, O_PATH | O_CLOEXEC));
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
    if (moved_) {
      Callback().Call({env.Null(), env.Undefined()});
      return;
    }
    Callback().Call({env.Null(), found_ ? Napi::String::New(env, path_) : env.Null()});
  }

 private:
  std::string mount_point_;
  uint32_t fsid_[2];
  bool moved_ = false;
  std::vector<uint8_t> handle_;
  int err_ = 0;
  bool found_ = false;
  std::string path_;
};

}  // namespace

Napi::Value PathOfHandle(const Napi::CallbackInfo& info) {
  std::string mount_point = info[0].As<Napi::String>();
  uint32_t fsid0 = info[1].As<Napi::Number>().Uint32Value();
  uint32_t fsid1 = info[2].As<Napi::Number>().Uint32Value();
  int handle_type = info[3].As<Napi::Number>().Int32Value();
  auto handle = info[4].As<Napi::Buffer<uint8_t>>();
  auto* worker = new PathOfHandleWorker(info[5].As<Napi::Function>(), std::move(mount_point), fsid0,
                                        fsid1, handle_type, handle.Data(), handle.Length());
  worker->Queue();
  return info.Env().Undefined();
}

}  // namespace fan
