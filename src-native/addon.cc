// Module entry: the Group class, the raw syscalls that need no thread
// (probe(), add(), remove() use them), the parser for tests, and the uapi
// constants as this build sees them.
#include <errno.h>
#include <fcntl.h>
#include <napi.h>
#include <unistd.h>

#include <string>

#include "datagram.h"
#include "errors.h"
#include "group.h"
#include "handles.h"
#include "mount_watch.h"
#include "mounts.h"
#include "xattr.h"
#include "parser.h"
#include "uapi.h"

namespace fan {
namespace {

// init(flags, eventFFlags) -> fd; for probe(), which only tries flags.
Napi::Value Init(const Napi::CallbackInfo& info) {
  unsigned flags = info[0].As<Napi::Number>().Uint32Value();
  unsigned event_f_flags = info[1].As<Napi::Number>().Uint32Value();
  int fd = fanotify_init(flags | FAN_CLOEXEC | FAN_NONBLOCK, event_f_flags);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "fanotify_init");
  return Napi::Number::New(info.Env(), fd);
}

// mark(fd, flags, mask, dirfd, path | null)
Napi::Value Mark(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  unsigned flags = info[1].As<Napi::Number>().Uint32Value();
  uint64_t mask = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  int dirfd = info[3].As<Napi::Number>().Int32Value();
  bool has_path = info[4].IsString();
  std::string path = has_path ? info[4].As<Napi::String>().Utf8Value() : std::string();
  if (fanotify_mark(fd, flags, mask, dirfd, has_path ? path.c_str() : nullptr) != 0)
    throw ErrnoError(info.Env(), errno, "fanotify_mark", path);
  return info.Env().Undefined();
}

// writeResponse(fd, eventFd, response, info?) -> 0 or the kernel's errno: for
// probe(), which asks whether the kernel takes a response shape (FAN_INFO,
// FAN_DENY_ERRNO) by writing one for no event (FAN_NOFD). Answers to real
// events go through the pending table, never through this.
Napi::Value WriteResponse(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  fanotify_response response{info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().Uint32Value()};
  std::string buf(reinterpret_cast<const char*>(&response), sizeof response);
  if (info.Length() > 3 && info[3].IsBuffer()) {
    auto extra = info[3].As<Napi::Buffer<char>>();
    buf.append(extra.Data(), extra.Length());
  }
  ssize_t n = write(fd, buf.data(), buf.size());
  return Napi::Number::New(info.Env(), n < 0 ? errno : 0);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// dup(fd) -> a new fd (close-on-exec) the caller owns.
Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "dup");
  return Napi::Number::New(info.Env(), fd);
}

// sendDatagram(socketPath, buffer) -> 0 or the errno: one datagram to a unix
// socket (the journal's native protocol; the CLI builds the entry).
Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  auto data = info[1].As<Napi::Buffer<uint8_t>>();
  return Napi::Number::New(info.Env(), SendUnixDatagram(path, data.Data(), data.Length()));
}

// parse(buffer) -> { events, records, truncated }: the reader's parser, for tests.
Napi::Value Parse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  ParsedBatch parsed;
  ParseEvents(buf.Data(), buf.Length(), &parsed);
  auto events = Napi::Int32Array::New(env, parsed.events.size());
  std::copy(parsed.events.begin(), parsed.events.end(), events.Data());
  auto records = Napi::Int32Array::New(env, parsed.records.size());
  std::copy(parsed.records.begin(), parsed.records.end(), records.Data());
  auto out = Napi::Object::New(env);
  out.Set("events", events);
  out.Set("records", records);
  out.Set("truncated", Napi::Boolean::New(env, parsed.truncated));
  return out;
}

Napi::Object Constants(Napi::Env env) {
  auto c = Napi::Object::New(env);
#define SET(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(name)))
  SET(FAN_ACCESS); SET(FAN_MODIFY); SET(FAN_ATTRIB); SET(FAN_CLOSE_WRITE);
  SET(FAN_CLOSE_NOWRITE); SET(FAN_OPEN); SET(FAN_MOVED_FROM); SET(FAN_MOVED_TO);
  SET(FAN_CREATE); SET(FAN_DELETE); SET(FAN_DELETE_SELF); SET(FAN_MOVE_SELF);
  SET(FAN_OPEN_EXEC); SET(FAN_Q_OVERFLOW); SET(FAN_FS_ERROR); SET(FAN_OPEN_PERM);
  SET(FAN_ACCESS_PERM); SET(FAN_OPEN_EXEC_PERM); SET(FAN_PRE_ACCESS);
  SET(FAN_MNT_ATTACH); SET(FAN_MNT_DETACH); SET(FAN_EVENT_ON_CHILD); SET(FAN_RENAME);
  SET(FAN_ONDIR); SET(FAN_CLOSE); SET(FAN_MOVE);
  SET(FAN_CLASS_NOTIF); SET(FAN_CLASS_CONTENT); SET(FAN_CLASS_PRE_CONTENT);
  SET(FAN_UNLIMITED_QUEUE); SET(FAN_UNLIMITED_MARKS); SET(FAN_ENABLE_AUDIT);
  SET(FAN_REPORT_PIDFD); SET(FAN_REPORT_TID); SET(FAN_REPORT_FID); SET(FAN_REPORT_DIR_FID);
  SET(FAN_REPORT_NAME); SET(FAN_REPORT_TARGET_FID); SET(FAN_REPORT_FD_ERROR);
  SET(FAN_REPORT_MNT);
  SET(FAN_MARK_ADD); SET(FAN_MARK_REMOVE); SET(FAN_MARK_DONT_FOLLOW); SET(FAN_MARK_ONLYDIR);
  SET(FAN_MARK_IGNORED_MASK); SET(FAN_MARK_IGNORED_SURV_MODIFY); SET(FAN_MARK_FLUSH);
  SET(FAN_MARK_EVICTABLE); SET(FAN_MARK_IGNORE); SET(FAN_MARK_INODE); SET(FAN_MARK_MOUNT);
  SET(FAN_MARK_FILESYSTEM); SET(FAN_MARK_MNTNS);
  SET(FAN_EVENT_INFO_TYPE_FID); SET(FAN_EVENT_INFO_TYPE_DFID_NAME); SET(FAN_EVENT_INFO_TYPE_DFID);
  SET(FAN_EVENT_INFO_TYPE_PIDFD); SET(FAN_EVENT_INFO_TYPE_ERROR); SET(FAN_EVENT_INFO_TYPE_RANGE);
  SET(FAN_EVENT_INFO_TYPE_MNT); SET(FAN_EVENT_INFO_TYPE_OLD_DFID_NAME);
  SET(FAN_EVENT_INFO_TYPE_NEW_DFID_NAME);
  SET(FAN_RESPONSE_INFO_NONE); SET(FAN_RESPONSE_INFO_AUDIT_RULE);
  SET(FAN_ALLOW); SET(FAN_DENY); SET(FAN_AUDIT); SET(FAN_INFO); SET(FAN_NOFD);
  SET(FANOTIFY_METADATA_VERSION); SET(FAN_EVENT_METADATA_LEN);
#undef SET
  return c;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("Group", Group::Define(env));
  exports.Set("init", Napi::Function::New<Init>(env, "init"));
  exports.Set("mark", Napi::Function::New<Mark>(env, "mark"));
  exports.Set("MountTableWatch", MountTableWatch::Define(env));
  exports.Set("writeResponse", Napi::Function::New<WriteResponse>(env, "writeResponse"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("dup", Napi::Function::New<Dup>(env, "dup"));
  exports.Set("sendDatagram", Napi::Function::New<SendDatagram>(env, "sendDatagram"));
  exports.Set("parse", Napi::Function::New<Parse>(env, "parse"));
  exports.Set("fsidOf", Napi::Function::New<FsidOf>(env, "fsidOf"));
  exports.Set("pathOfHandle", Napi::Function::New<PathOfHandle>(env, "pathOfHandle"));
  exports.Set("dirChain", Napi::Function::New<DirChain>(env, "dirChain"));
  exports.Set("openDirByHandle", Napi::Function::New<OpenDirByHandle>(env, "openDirByHandle"));
  exports.Set("statMount", Napi::Function::New<StatMount>(env, "statMount"));
  exports.Set("listMounts", Napi::Function::New<ListMounts>(env, "listMounts"));
  exports.Set("getXattr", Napi::Function::New<GetXattr>(env, "getXattr"));
  exports.Set("setXattr", Napi::Function::New<SetXattr>(env, "setXattr"));
  exports.Set("removeXattr", Napi::Function::New<RemoveXattr>(env, "removeXattr"));
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace
}  // namespace fan

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return fan::InitModule(env, exports);
}
NODE_API_MODULE(fanotify, InitModule)
