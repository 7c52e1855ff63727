// The fanotify read() buffer parser. Plain C++ over a byte span, no N-API, so it
// can be unit-tested and fuzzed on its own (test/parser.test.ts, test/fuzz/).
//
// The output is two flat int32 tables that JavaScript decodes lazily: building
// objects in C++ costs one N-API call per property, a table costs one per batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fan {

// One row per event.
enum EventField {
  kEvOffset,       // byte offset of the event in the buffer
  kEvLength,       // event_len as far as it lies inside the buffer
  kEvMaskLo,       // mask, low 32 bits
  kEvMaskHi,       // mask, high 32 bits
  kEvFd,           // metadata fd (FAN_NOFD, an fd, or -errno with FAN_REPORT_FD_ERROR)
  kEvPid,          // metadata pid
  kEvFirstRecord,  // index of the first row in the record table
  kEvRecordCount,  // rows in the record table
  kEvFlags,        // EventFlag bits
  kEvToken,        // filled by the reader: permission-event token minus the batch's base, 0 if none
  kEventStride
};

enum EventFlag : int32_t {
  kMalformed = 1,  // something did not fit; what could be parsed is still there
};

// One row per info record. Fields a..e depend on the type (see RecordKind).
enum RecordField {
  kRecType,    // info_type
  kRecOffset,  // byte offset of the record header in the buffer
  kRecLength,  // hdr.len
  kRecValid,   // 1 when the body matched its type's layout, 0 when kept raw
  kRecA, kRecB, kRecC, kRecD, kRecE,
  kRecordStride
};
// FID, DFID, DFID_NAME, OLD_DFID_NAME, NEW_DFID_NAME:
//   a = handle_type, b = offset of f_handle bytes, c = handle_bytes,
//   d = offset of the name (-1 if none), e = name length (without the NUL).
//   The fsid is the 8 bytes at kRecOffset + 4.
// PIDFD: a = pidfd.
// ERROR: a = error, b = error_count.
// RANGE: a, b = offset (lo, hi); c, d = count (lo, hi).
// MNT:   a, b = mnt_id (lo, hi).
// Unknown types and invalid bodies: the raw bytes are kRecOffset + 4 .. + kRecLength.

struct ParsedBatch {
  std::vector<int32_t> events;
  std::vector<int32_t> records;
  bool truncated = false;  // trailing bytes too short to hold an event header

  size_t size() const { return events.size() / kEventStride; }
  int32_t* event(size_t i) { return &events[i * kEventStride]; }
  const int32_t* event(size_t i) const { return &events[i * kEventStride]; }
  void clear() {
    events.clear();
    records.clear();
    truncated = false;
  }
};

// Parses every event in data[0, len). Never reads outside that span.
void ParseEvents(const uint8_t* data, size_t len, ParsedBatch* out);

// Every fd the batch hands to its receiver: event fds and pidfds.
void CollectFds(const ParsedBatch& batch, std::vector<int>* fds);

}  // namespace fan
