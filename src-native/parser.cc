#include "parser.h"

#include <cstring>

#include "uapi.h"

namespace fan {
namespace {

// Unaligned little-endian-agnostic loads: the buffer is in host order.
template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr size_t kMetadataLen = sizeof(fanotify_event_metadata);  // 24
constexpr size_t kHeaderLen = sizeof(InfoHeader);                 // 4
constexpr size_t kFidFixedLen = sizeof(InfoFid) + 8;  // header, fsid, handle_bytes, handle_type

bool IsFidType(int type) {
  return type == FAN_EVENT_INFO_TYPE_FID || type == FAN_EVENT_INFO_TYPE_DFID ||
         type == FAN_EVENT_INFO_TYPE_DFID_NAME || type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
         type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME;
}

bool HasName(int type) {
  return type == FAN_EVENT_INFO_TYPE_DFID_NAME || type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
         type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME;
}

// Fills row[kRecA..kRecE] from the record body rec[0, len). Returns false when the
// body does not match the type's layout (the record is then kept raw).
bool ParseRecordBody(int type, const uint8_t* rec, size_t len, size_t base, int32_t* row) {
  if (IsFidType(type)) {
    if (len < kFidFixedLen) return false;
    uint32_t handle_bytes = Load<uint32_t>(rec + sizeof(InfoFid));
    int32_t handle_type = Load<int32_t>(rec + sizeof(InfoFid) + 4);
    if (handle_bytes > len - kFidFixedLen) return false;
    row[kRecA] = handle_type;
    row[kRecB] = static_cast<int32_t>(base + kFidFixedLen);
    row[kRecC] = static_cast<int32_t>(handle_bytes);
    row[kRecD] = -1;
    row[kRecE] = 0;
    if (HasName(type)) {
      size_t name_at = kFidFixedLen + handle_bytes;
      const void* nul = std::memchr(rec + name_at, 0, len - name_at);
      if (nul == nullptr) return false;  // a name must end inside its record
      row[kRecD] = static_cast<int32_t>(base + name_at);
      row[kRecE] = static_cast<int32_t>(static_cast<const uint8_t*>(nul) - (rec + name_at));
    }
    return true;
  }
  switch (type) {
    case FAN_EVENT_INFO_TYPE_PIDFD:
      if (len < sizeof(InfoPidfd)) return false;
      row[kRecA] = Load<int32_t>(rec + offsetof(InfoPidfd, pidfd));
      return true;
    case FAN_EVENT_INFO_TYPE_ERROR:
      if (len < sizeof(InfoError)) return false;
      row[kRecA] = Load<int32_t>(rec + offsetof(InfoError, error));
      row[kRecB] = Load<int32_t>(rec + offsetof(InfoError, error_count));
      return true;
    case FAN_EVENT_INFO_TYPE_RANGE: {
      if (len < sizeof(InfoRange)) return false;
      uint64_t offset = Load<uint64_t>(rec + offsetof(InfoRange, offset));
      uint64_t count = Load<uint64_t>(rec + offsetof(InfoRange, count));
      row[kRecA] = static_cast<int32_t>(offset);
      row[kRecB] = static_cast<int32_t>(offset >> 32);
      row[kRecC] = static_cast<int32_t>(count);
      row[kRecD] = static_cast<int32_t>(count >> 32);
      return true;
    }
    case FAN_EVENT_INFO_TYPE_MNT: {
      if (len < sizeof(InfoMnt)) return false;
      uint64_t id = Load<uint64_t>(rec + offsetof(InfoMnt, mnt_id));
      row[kRecA] = static_cast<int32_t>(id);
      row[kRecB] = static_cast<int32_t>(id >> 32);
      return true;
    }
    default:
      return false;  // unknown: kept raw
  }
}

// Parses the info records in ev[start, end). Returns false if one did not fit.
bool ParseRecords(const uint8_t* data, size_t start, size_t end, ParsedBatch* out) {
  bool ok = true;
  size_t at = start;
  while (at < end) {
    if (end - at < kHeaderLen) return false;  // trailing bytes that are no header
    int type = data[at];
    size_t len = Load<uint16_t>(data + at + offsetof(InfoHeader, len));
    if (len < kHeaderLen || len > end - at) return false;  // cannot find the next one
    size_t row_at = out->records.size();
    out->records.resize(row_at + kRecordStride, 0);
    int32_t* row = &out->records[row_at];
    row[kRecType] = type;
    row[kRecOffset] = static_cast<int32_t>(at);
    row[kRecLength] = static_cast<int32_t>(len);
    bool valid = ParseRecordBody(type, data + at, len, at, row);
    row[kRecValid] = valid ? 1 : 0;
    // Unknown types are not malformed, only new; a known type with a bad body is.
    bool known = IsFidType(type) || type == FAN_EVENT_INFO_TYPE_PIDFD ||
                 type == FAN_EVENT_INFO_TYPE_ERROR || type == FAN_EVENT_INFO_TYPE_RANGE ||
                 type == FAN_EVENT_INFO_TYPE_MNT;
    if (known && !valid) ok = false;
    at += len;
  }
  return ok;
}

}  // namespace

void ParseEvents(const uint8_t* data, size_t len, ParsedBatch* out) {
  // Room for typical events (about 48 bytes each, one record) up front: growing
  // the tables a step at a time costs a malloc per step, per batch.
  out->events.reserve((len / 48 + 1) * kEventStride);
  out->records.reserve((len / 48 + 1) * kRecordStride);
  size_t at = 0;
  while (at < len) {
    size_t left = len - at;
    if (left < kMetadataLen) {
      out->truncated = true;
      return;
    }
    const uint8_t* ev = data + at;
    uint32_t event_len = Load<uint32_t>(ev + offsetof(fanotify_event_metadata, event_len));
    uint8_t vers = ev[offsetof(fanotify_event_metadata, vers)];
    uint16_t metadata_len = Load<uint16_t>(ev + offsetof(fanotify_event_metadata, metadata_len));
    uint64_t mask = Load<uint64_t>(ev + offsetof(fanotify_event_metadata, mask));

    size_t row_at = out->events.size();
    out->events.resize(row_at + kEventStride, 0);
    int32_t* row = &out->events[row_at];
    row[kEvOffset] = static_cast<int32_t>(at);
    row[kEvMaskLo] = static_cast<int32_t>(mask);
    row[kEvMaskHi] = static_cast<int32_t>(mask >> 32);
    row[kEvFd] = Load<int32_t>(ev + offsetof(fanotify_event_metadata, fd));
    row[kEvPid] = Load<int32_t>(ev + offsetof(fanotify_event_metadata, pid));
    row[kEvFirstRecord] = static_cast<int32_t>(out->records.size() / kRecordStride);

    if (event_len < kMetadataLen || event_len > left) {
      // The length cannot be trusted, so neither can anything after this header.
      row[kEvLength] = static_cast<int32_t>(kMetadataLen);
      row[kEvFlags] = kMalformed;
      out->truncated = true;
      return;
    }
    row[kEvLength] = static_cast<int32_t>(event_len);
    bool ok = vers == FANOTIFY_METADATA_VERSION && metadata_len >= kMetadataLen &&
              metadata_len <= event_len;
    if (ok) ok = ParseRecords(data, at + metadata_len, at + event_len, out);
    // records may have grown: re-fetch the row
    row = &out->events[row_at];
    row[kEvRecordCount] =
        static_cast<int32_t>(out->records.size() / kRecordStride) - row[kEvFirstRecord];
    if (!ok) row[kEvFlags] |= kMalformed;
    at += event_len;
  }
}

void CollectFds(const ParsedBatch& batch, std::vector<int>* fds) {
  for (size_t i = 0; i < batch.size(); i++) {
    const int32_t* ev = batch.event(i);
    if (ev[kEvFd] >= 0) fds->push_back(ev[kEvFd]);
    for (int32_t r = 0; r < ev[kEvRecordCount]; r++) {
      const int32_t* rec = &batch.records[(ev[kEvFirstRecord] + r) * kRecordStride];
      if (rec[kRecType] == FAN_EVENT_INFO_TYPE_PIDFD && rec[kRecValid] && rec[kRecA] >= 0)
        fds->push_back(rec[kRecA]);
    }
  }
}

}  // namespace fan
