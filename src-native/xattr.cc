#include "xattr.h"

#include <errno.h>
#include <sys/xattr.h>

#include <string>
#include <vector>

#include "errors.h"

namespace fan {
namespace {

// An fd (number) or a path (string): the call goes to the f* or the plain form.
struct Target {
  bool is_fd;
  int fd;
  std::string path;
};

Target TargetOf(const Napi::Value& v) {
  if (v.IsNumber()) return {true, v.As<Napi::Number>().Int32Value(), ""};
  return {false, -1, v.As<Napi::String>().Utf8Value()};
}

}  // namespace

Napi::Value GetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Target t = TargetOf(info[0]);
  std::string name = info[1].As<Napi::String>();
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = t.is_fd ? fgetxattr(t.fd, name.c_str(), buf.data(), buf.size())
                        : getxattr(t.path.c_str(), name.c_str(), buf.data(), buf.size());
    if (n >= 0) return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(n));
    if (errno == ENODATA) return env.Null();
    if (errno == ERANGE && buf.size() < (1u << 16)) {
      buf.resize(buf.size() * 4);
      continue;
    }
    throw ErrnoError(env, errno, "getxattr", t.path);
  }
}

Napi::Value SetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Target t = TargetOf(info[0]);
  std::string name = info[1].As<Napi::String>();
  auto value = info[2].As<Napi::Buffer<char>>();
  int r = t.is_fd ? fsetxattr(t.fd, name.c_str(), value.Data(), value.Length(), 0)
                  : setxattr(t.path.c_str(), name.c_str(), value.Data(), value.Length(), 0);
  if (r != 0) throw ErrnoError(env, errno, "setxattr", t.path);
  return env.Undefined();
}

Napi::Value RemoveXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Target t = TargetOf(info[0]);
  std::string name = info[1].As<Napi::String>();
  int r = t.is_fd ? fremovexattr(t.fd, name.c_str()) : removexattr(t.path.c_str(), name.c_str());
  if (r == 0) return Napi::Boolean::New(env, true);
  if (errno == ENODATA) return Napi::Boolean::New(env, false);
  throw ErrnoError(env, errno, "removexattr", t.path);
}

}  // namespace fan
