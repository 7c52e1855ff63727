#include "errors.h"

#include <cstring>

namespace fan {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + ": " + std::strerror(err));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) error.Set("path", Napi::String::New(env, path));
  return error;
}

}  // namespace fan
