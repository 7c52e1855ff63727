// libFuzzer target for the read()-buffer parser (src-native/parser.cc).
//
// Built and run by scripts/fuzz.sh with
//   clang++ -fsanitize=fuzzer,address,undefined -O1 -g
// ASan catches any read outside the input (libFuzzer hands it over in a heap
// block of exactly its size); the checks below catch tables that point outside
// the buffer, or that disagree with the bytes they were parsed from. Every
// violation prints what was wrong and aborts, which libFuzzer reports as a
// crash and saves the input.
//
// The invariants (row layouts in src-native/parser.h):
//   events tile the buffer from offset 0, each with 24 <= length, inside it;
//   header fields (mask, fd, pid) are the bytes at the event's offset;
//   each event's record rows follow the previous event's, and lie inside it;
//   records tile their event from its metadata_len on, each with 4 <= length;
//   a valid FID record's handle lies inside the record, and its name (for the
//   *_NAME types) too, NUL-terminated, with no NUL before its end;
//   valid bodies are long enough for their type; unknown types are never valid;
//   an event not flagged malformed has only valid known records, filling it;
//   `truncated` is set exactly when the events stop short of the end;
//   CollectFds returns exactly the event fds and valid pidfds (>= 0) of the
//   rows, in row order: nothing else could ever be closed by the reader;
//   parsing is deterministic, also into a batch that was used and cleared.
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../../src-native/parser.h"

namespace {

using fan::ParsedBatch;

constexpr int64_t kMetadataLen = 24;

[[noreturn]] void Fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "parser invariant violated: ");
  std::vfprintf(stderr, fmt, ap);
  std::fprintf(stderr, "\n");
  va_end(ap);
  std::abort();
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

bool IsFid(int t) { return t == 1 || t == 2 || t == 3 || t == 10 || t == 12; }
bool HasName(int t) { return t == 2 || t == 10 || t == 12; }
// The shortest valid record of each known non-FID type; 0 for unknown types.
int64_t MinLen(int t) {
  switch (t) {
    case 4: return 8;    // PIDFD
    case 5: return 12;   // ERROR
    case 6: return 24;   // RANGE
    case 7: return 16;   // MNT
    default: return 0;
  }
}

void Check(const uint8_t* data, size_t size, const ParsedBatch& b) {
  const int64_t n = static_cast<int64_t>(size);
  if (b.events.size() % fan::kEventStride != 0) Fail("events table size %zu", b.events.size());
  if (b.records.size() % fan::kRecordStride != 0) Fail("records table size %zu", b.records.size());
  const int64_t rows = static_cast<int64_t>(b.records.size() / fan::kRecordStride);
  const size_t events = b.size();

  int64_t expect_at = 0;  // where the next event must start
  int64_t next_record = 0;
  bool stopped_early = false;  // an event whose event_len could not be trusted
  for (size_t i = 0; i < events; i++) {
    const int32_t* ev = b.event(i);
    const int64_t off = ev[fan::kEvOffset], len = ev[fan::kEvLength];
    if (stopped_early) Fail("event %zu after an event with a bad length", i);
    if (off != expect_at) Fail("event %zu at %lld, expected %lld", i, (long long)off, (long long)expect_at);
    if (len < kMetadataLen || off < 0 || off + len > n)
      Fail("event %zu: %lld+%lld outside %lld bytes", i, (long long)off, (long long)len, (long long)n);
    const uint8_t* p = data + off;
    const uint64_t mask = Load<uint64_t>(p + 8);
    if (ev[fan::kEvMaskLo] != static_cast<int32_t>(mask) ||
        ev[fan::kEvMaskHi] != static_cast<int32_t>(mask >> 32))
      Fail("event %zu: mask does not match its bytes", i);
    if (ev[fan::kEvFd] != Load<int32_t>(p + 16)) Fail("event %zu: fd does not match its bytes", i);
    if (ev[fan::kEvPid] != Load<int32_t>(p + 20)) Fail("event %zu: pid does not match its bytes", i);
    if (ev[fan::kEvToken] != 0) Fail("event %zu: the parser set a token", i);
    if ((ev[fan::kEvFlags] & ~fan::kMalformed) != 0) Fail("event %zu: unknown flags %d", i, ev[fan::kEvFlags]);
    const bool malformed = ev[fan::kEvFlags] & fan::kMalformed;

    const uint32_t event_len = Load<uint32_t>(p);
    const bool bad_length = event_len < kMetadataLen || event_len > static_cast<uint64_t>(n - off);
    if (bad_length) {
      // Only the header is kept, and nothing after it can be parsed.
      if (len != kMetadataLen || !malformed || !b.truncated)
        Fail("event %zu: bad event_len %u not flagged (length %lld)", i, event_len, (long long)len);
      stopped_early = true;
    } else if (len != event_len) {
      Fail("event %zu: length %lld but event_len %u", i, (long long)len, event_len);
    }

    const int64_t first = ev[fan::kEvFirstRecord], count = ev[fan::kEvRecordCount];
    if (first != next_record || count < 0 || first + count > rows)
      Fail("event %zu: records %lld+%lld of %lld (expected first %lld)", i, (long long)first,
           (long long)count, (long long)rows, (long long)next_record);
    next_record = first + count;
    if (bad_length && count != 0) Fail("event %zu: records parsed past a bad event_len", i);

    const int64_t metadata_len = Load<uint16_t>(p + 6);
    const bool header_ok = p[4] == 3 && metadata_len >= kMetadataLen && metadata_len <= len;
    if (!bad_length && !header_ok && !malformed) Fail("event %zu: bad header not flagged", i);
    if (!header_ok && count != 0) Fail("event %zu: records parsed under a bad header", i);

    int64_t rec_at = off + metadata_len;  // where the next record must start
    bool all_valid = true;
    for (int64_t r = first; r < first + count; r++) {
      const int32_t* row = &b.records[r * fan::kRecordStride];
      const int64_t at = row[fan::kRecOffset], rlen = row[fan::kRecLength];
      const int type = row[fan::kRecType];
      const int64_t end = at + rlen;
      if (at != rec_at) Fail("record %lld at %lld, expected %lld", (long long)r, (long long)at, (long long)rec_at);
      if (rlen < 4 || at < off + kMetadataLen || end > off + len || end > n)
        Fail("record %lld: %lld+%lld outside event %lld+%lld", (long long)r, (long long)at,
             (long long)rlen, (long long)off, (long long)len);
      rec_at = end;
      if (type != data[at]) Fail("record %lld: type %d but byte %d", (long long)r, type, data[at]);
      if (rlen != Load<uint16_t>(data + at + 2)) Fail("record %lld: length does not match hdr.len", (long long)r);
      const int valid = row[fan::kRecValid];
      if (valid != 0 && valid != 1) Fail("record %lld: valid = %d", (long long)r, valid);
      const bool known = IsFid(type) || MinLen(type) > 0;
      if (known && !valid) all_valid = false;
      if (!valid) continue;
      if (IsFid(type)) {
        const int64_t h = row[fan::kRecB], hb = row[fan::kRecC];
        const int64_t name_at = row[fan::kRecD], name_len = row[fan::kRecE];
        if (rlen < 20 || h != at + 20 || hb < 0 || h + hb > end)
          Fail("record %lld: handle %lld+%lld outside %lld+%lld", (long long)r, (long long)h,
               (long long)hb, (long long)at, (long long)rlen);
        if (row[fan::kRecA] != Load<int32_t>(data + at + 16)) Fail("record %lld: handle_type mismatch", (long long)r);
        if (hb != Load<uint32_t>(data + at + 12)) Fail("record %lld: handle_bytes mismatch", (long long)r);
        if (HasName(type)) {
          if (name_at != h + hb || name_len < 0 || name_at + name_len >= end)
            Fail("record %lld: name %lld+%lld outside %lld+%lld", (long long)r, (long long)name_at,
                 (long long)name_len, (long long)at, (long long)rlen);
          if (data[name_at + name_len] != 0) Fail("record %lld: name not NUL-terminated", (long long)r);
          if (std::memchr(data + name_at, 0, name_len) != nullptr)
            Fail("record %lld: NUL inside the name", (long long)r);
        } else if (name_at != -1 || name_len != 0) {
          Fail("record %lld: type %d has a name %lld+%lld", (long long)r, type, (long long)name_at,
               (long long)name_len);
        }
      } else {
        const int64_t min = MinLen(type);
        if (min == 0) Fail("record %lld: unknown type %d marked valid", (long long)r, type);
        if (rlen < min) Fail("record %lld: type %d valid with %lld bytes", (long long)r, type, (long long)rlen);
        if (type == 4 && row[fan::kRecA] != Load<int32_t>(data + at + 4))
          Fail("record %lld: pidfd does not match its bytes", (long long)r);
      }
    }
    if (!malformed && (!header_ok || !all_valid || rec_at != off + len))
      Fail("event %zu not flagged malformed: header %d, records valid %d, end %lld of %lld", i, header_ok,
           all_valid, (long long)rec_at, (long long)(off + len));
    if (!stopped_early) expect_at = off + len;
  }
  if (next_record != rows) Fail("%lld record rows belong to no event", (long long)(rows - next_record));
  // truncated: exactly when the events did not reach the end of the buffer.
  const bool short_tail = !stopped_early && expect_at < n;
  if (short_tail && n - expect_at >= kMetadataLen) Fail("stopped at %lld of %lld with a whole header left", (long long)expect_at, (long long)n);
  if (b.truncated != (short_tail || stopped_early))
    Fail("truncated = %d, events end at %lld of %lld", b.truncated, (long long)expect_at, (long long)n);

  // CollectFds: exactly the event fds and valid pidfds, in row order.
  std::vector<int> want;
  for (size_t i = 0; i < events; i++) {
    const int32_t* ev = b.event(i);
    if (ev[fan::kEvFd] >= 0) want.push_back(ev[fan::kEvFd]);
    for (int32_t r = 0; r < ev[fan::kEvRecordCount]; r++) {
      const int32_t* row = &b.records[(ev[fan::kEvFirstRecord] + r) * fan::kRecordStride];
      if (row[fan::kRecType] == 4 && row[fan::kRecValid] && row[fan::kRecA] >= 0) want.push_back(row[fan::kRecA]);
    }
  }
  std::vector<int> got = {-12345};  // CollectFds appends: what was there stays
  fan::CollectFds(b, &got);
  if (got.size() != want.size() + 1 || got[0] != -12345 ||
      !std::equal(want.begin(), want.end(), got.begin() + 1))
    Fail("CollectFds returned %zu fds, the rows hold %zu", got.size() - 1, want.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ParsedBatch batch;
  fan::ParseEvents(data, size, &batch);
  Check(data, size, batch);

  // Deterministic, and a cleared batch parses as a new one.
  static ParsedBatch reused;
  reused.clear();
  fan::ParseEvents(data, size, &reused);
  if (reused.events != batch.events || reused.records != batch.records || reused.truncated != batch.truncated)
    Fail("a second parse (into a cleared batch) differs from the first");
  return 0;
}
