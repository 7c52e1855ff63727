// Native failures become JS errors carrying errno (positive, as the kernel
// returns it) and syscall; lib/errors.ts turns them into the public error shape
// with a code and a message that says what to do.
#pragma once

#include <napi.h>

#include <string>

namespace fan {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path = "");

}  // namespace fan
