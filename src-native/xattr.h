// Extended attributes (Node has no API for them): serveContent() keeps the
// state of a stub file (its size and filled ranges) in a user.* xattr, so it
// survives restarts and travels with the file.
#pragma once

#include <napi.h>

namespace fan {

// getXattr(pathOrFd, name) -> Buffer | null (null: no such attribute)
Napi::Value GetXattr(const Napi::CallbackInfo& info);
// setXattr(pathOrFd, name, value: Buffer)
Napi::Value SetXattr(const Napi::CallbackInfo& info);
// removeXattr(pathOrFd, name) -> whether it was there
Napi::Value RemoveXattr(const Napi::CallbackInfo& info);

}  // namespace fan
