#include "handles.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
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

// A struct file_handle holding the given bytes.
std::vector<uint8_t> MakeHandle(int handle_type, const uint8_t* bytes, size_t len) {
  std::vector<uint8_t> buf(sizeof(file_handle) + len);
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = static_cast<unsigned>(len);
  fh->handle_type = handle_type;
  std::memcpy(fh->f_handle, bytes, len);
  return buf;
}

// The mount point opened for open_by_handle_at (not O_PATH: it refuses O_PATH
// mount fds, EBADF), only while it still holds the filesystem with that fsid:
// else an invalid fd (unmounted or replaced since the table was read).
UniqueFd OpenMount(const std::string& mount_point, const uint32_t fsid[2]) {
  UniqueFd mount_fd(open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct statfs st;
  uint32_t now[2];
  if (!mount_fd.valid() || fstatfs(mount_fd.get(), &st) != 0) return UniqueFd();
  std::memcpy(now, &st.f_fsid, sizeof now);
  if (now[0] != fsid[0] || now[1] != fsid[1]) return UniqueFd();
  return mount_fd;
}

// What the threadpool workers share: their arguments (mountPoint, fsid0,
// fsid1, handleType, handle, callback), copied on the JS thread, and how they
// report a failure.
class HandleWorker : public Napi::AsyncWorker {
 protected:
  HandleWorker(const Napi::CallbackInfo& info, const char* name)
      : Napi::AsyncWorker(info[5].As<Napi::Function>(), name),
        mount_point_(info[0].As<Napi::String>()),
        fsid_{info[1].As<Napi::Number>().Uint32Value(), info[2].As<Napi::Number>().Uint32Value()},
        handle_(MakeHandle(info[3].As<Napi::Number>().Int32Value(), info[4].As<Napi::Buffer<uint8_t>>().Data(),
                           info[4].As<Napi::Buffer<uint8_t>>().Length())) {}

  file_handle* handle() { return reinterpret_cast<file_handle*>(handle_.data()); }

  // On the JS thread: calls back with the error, or with undefined when the
  // mount point no longer holds the filesystem. False when there was neither.
  bool CalledBackFailure() {
    Napi::Env env = Env();
    if (err_ != 0) {
      Callback().Call({ErrnoError(env, err_, "open_by_handle_at").Value()});
      return true;
    }
    if (moved_) {
      Callback().Call({env.Null(), env.Undefined()});
      return true;
    }
    return false;
  }

  std::string mount_point_;
  uint32_t fsid_[2];
  std::vector<uint8_t> handle_;
  bool moved_ = false;
  int err_ = 0;
};

template <class Worker>
Napi::Value QueueWorker(const Napi::CallbackInfo& info) {
  (new Worker(info))->Queue();  // deletes itself when done
  return info.Env().Undefined();
}

class PathOfHandleWorker : public HandleWorker {
 public:
  explicit PathOfHandleWorker(const Napi::CallbackInfo& info) : HandleWorker(info, "fanotify:resolve") {}

  void Execute() override {
    UniqueFd mount_fd = OpenMount(mount_point_, fsid_);
    if (!mount_fd.valid()) {
      moved_ = true;
      return;
    }
    // O_PATH: no open permission events, works for any file type.
    UniqueFd fd(open_by_handle_at(mount_fd.get(), handle(), O_PATH | O_CLOEXEC));
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
    if (CalledBackFailure()) return;
    Napi::Env env = Env();
    Callback().Call({env.Null(), found_ ? Napi::String::New(env, path_) : env.Null()});
  }

 private:
  bool found_ = false;
  std::string path_;
};

// AT_HANDLE_FID (6.5): the handle fanotify reports (exportfs_encode_fid),
// also for filesystems that cannot be exported over NFS.
#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200
#endif

// Which inode an fd is: statx, not fstat (glibc 2.33 made fstat a symbol of
// its own, which the release binaries must not need: glibc 2.28 is their floor).
struct InodeId {
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;
  bool operator==(const InodeId& o) const { return dev_major == o.dev_major && dev_minor == o.dev_minor && ino == o.ino; }
};

bool IdOf(int fd, InodeId* out) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_INO, &stx) != 0) return false;
  out->dev_major = stx.stx_dev_major;
  out->dev_minor = stx.stx_dev_minor;
  out->ino = stx.stx_ino;
  return true;
}

struct ChainEntry {
  int handle_type;
  std::vector<uint8_t> handle;
  std::string name;
};

// The handle of an open directory, as fanotify encodes it. False on failure.
bool HandleOf(int fd, ChainEntry* out) {
  std::vector<uint8_t> buf(sizeof(file_handle) + MAX_HANDLE_SZ);
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  int mount_id;
  for (int flags : {AT_EMPTY_PATH | AT_HANDLE_FID, AT_EMPTY_PATH}) {
    fh->handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(fd, "", fh, &mount_id, flags) == 0) {
      out->handle_type = fh->handle_type;
      out->handle.assign(fh->f_handle, fh->f_handle + fh->handle_bytes);
      return true;
    }
    if (errno != EINVAL) return false;  // EINVAL: a kernel without AT_HANDLE_FID
  }
  return false;
}

class DirChainWorker : public HandleWorker {
 public:
  explicit DirChainWorker(const Napi::CallbackInfo& info) : HandleWorker(info, "fanotify:dirChain") {}

  void Execute() override {
    UniqueFd mount_fd = OpenMount(mount_point_, fsid_);
    InodeId root;
    if (!mount_fd.valid() || !IdOf(mount_fd.get(), &root)) {
      moved_ = true;
      return;
    }
    ChainEntry top;
    if (!HandleOf(mount_fd.get(), &top)) {
      err_ = errno;
      return;
    }
    root_ = std::move(top);
    file_handle* fh = handle();
    UniqueFd fd(open_by_handle_at(mount_fd.get(), fh, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno != ESTALE && errno != ENOENT && errno != ENOTDIR) err_ = errno;
      return;  // gone: null
    }
    // Up through "..", inode by inode (no lookup by name that a rename could
    // redirect), to the mount's root; the name of each from its dentry.
    for (int depth = 0; depth < 4096; depth++) {
      InodeId st;
      if (!IdOf(fd.get(), &st)) {
        err_ = errno;
        return;
      }
      if (st == root) {
        found_ = true;
        return;
      }
      ChainEntry entry;
      if (depth == 0) {
        entry.handle_type = fh->handle_type;
        entry.handle.assign(fh->f_handle, fh->f_handle + fh->handle_bytes);
      } else if (!HandleOf(fd.get(), &entry)) {
        err_ = errno;
        return;
      }
      std::string link = "/proc/self/fd/" + std::to_string(fd.get());
      char buf[4096];
      ssize_t n = readlink(link.c_str(), buf, sizeof buf);
      if (n < 0) {
        err_ = errno;
        return;
      }
      std::string path(buf, static_cast<size_t>(n));
      static const std::string kDeleted = " (deleted)";
      if (path.size() > kDeleted.size() && path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0)
        return;  // removed while we walked: gone
      size_t slash = path.rfind('/');
      entry.name = slash == std::string::npos ? path : path.substr(slash + 1);
      UniqueFd parent(openat(fd.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!parent.valid()) {
        err_ = errno;
        return;
      }
      InodeId pst;
      if (!IdOf(parent.get(), &pst)) {
        err_ = errno;
        return;
      }
      if (pst == st) {
        outside_ = true;  // the filesystem's root, and the mount shows only part of it
        return;
      }
      chain_.push_back(std::move(entry));
      fd = std::move(parent);
    }
    err_ = ELOOP;
  }

  void OnOK() override {
    if (CalledBackFailure()) return;
    Napi::Env env = Env();
    if (!found_) {
      Callback().Call({env.Null(), outside_ ? Napi::String::New(env, "outside") : env.Null()});
      return;
    }
    // [rootHandleType, rootHandle, [handleType, handle, name]...], the directory first.
    auto out = Napi::Array::New(env, 2 + chain_.size() * 3);
    out.Set(0u, Napi::Number::New(env, root_.handle_type));
    out.Set(1u, Napi::Buffer<uint8_t>::Copy(env, root_.handle.data(), root_.handle.size()));
    uint32_t i = 2;
    for (const ChainEntry& e : chain_) {
      out.Set(i++, Napi::Number::New(env, e.handle_type));
      out.Set(i++, Napi::Buffer<uint8_t>::Copy(env, e.handle.data(), e.handle.size()));
      out.Set(i++, Napi::String::New(env, e.name));
    }
    Callback().Call({env.Null(), out});
  }

 private:
  bool found_ = false;
  bool outside_ = false;
  ChainEntry root_;
  std::vector<ChainEntry> chain_;
};

}  // namespace

Napi::Value PathOfHandle(const Napi::CallbackInfo& info) { return QueueWorker<PathOfHandleWorker>(info); }

Napi::Value OpenDirByHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string mount_point = info[0].As<Napi::String>();
  int handle_type = info[1].As<Napi::Number>().Int32Value();
  auto handle = info[2].As<Napi::Buffer<uint8_t>>();
  UniqueFd mount_fd(open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mount_fd.valid()) throw ErrnoError(env, errno, "open", mount_point);
  std::vector<uint8_t> buf = MakeHandle(handle_type, handle.Data(), handle.Length());
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  // Not O_PATH: fanotify_mark(dirfd, NULL) takes no O_PATH fd.
  int fd = open_by_handle_at(mount_fd.get(), fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw ErrnoError(env, errno, "open_by_handle_at", mount_point);
  return Napi::Number::New(env, fd);
}

Napi::Value DirChain(const Napi::CallbackInfo& info) { return QueueWorker<DirChainWorker>(info); }

}  // namespace fan
