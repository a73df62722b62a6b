// libFuzzer target: the MIME parser on arbitrary message content, fed in input-derived pieces.
// Aborts on a broken contract (data outside a part, data for a part that is not an attachment,
// an unterminated part, an empty or over-long path, a file name that is not valid UTF-8) and when
// a second run with other piece sizes gives a different callback log (streaming invariance), and
// when the Hyperscan body scan (mime_body_scan.h) differs from the SSE2 scan: the exact database
// must give the same log, anomalies included; the candidates-only one (mime.body_scan: hyperscan)
// the same parts and bytes. Other readings of a part (mime_readings.h) must begin and end inside
// their attachment part, in a free slot, with valid names; their bytes are in the log (at their
// end: where a lazy reading starts depends on the split, what it gives and the order the readings
// start in must not). A Hyperscan run that differs is run again with the SSE2 scan under its
// split, to tell a scan difference from a split dependence. SLUICE_FUZZ_PRINT=1 prints the two
// logs that differ. The
// header_lenient parse (MimeParser::set_alternate) is checked with the same contract, its parts
// marked header_lenient, and its log is part of the run's.
#include <openssl/evp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "pipeline/mime_parser.h"

using namespace sluice::pipeline;

namespace {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

// A uuencoded block is reported as a part of its own while its text part is open: depth 2 at most.
struct Checker final : MimeCallbacks {
  MimeReading expect = MimeReading::primary;  // header_lenient for the parts of the second parse
  std::string log;
  int open = 0;
  bool attachment[2] = {false, false};
  void on_part_begin(const PartInfo& p) noexcept override {
    if (p.path.empty() || p.path.size() > 4096 || !valid_utf8(p.filename)) std::abort();
    if (open == 2 || (open == 1 && (!p.uuencoded || attachment[0]))) std::abort();
    if (p.reading != expect || readings_open) std::abort();
    for_each_name(p.filenames, [&](std::string_view n) {
      if (n.empty() || !valid_utf8(n)) std::abort();
      log += n;
      log += '|';
    });
    attachment[open++] = p.attachment;
    log += "begin ";
    log += p.path;
    log += ' ';
    log += p.content_type;
    log += ' ';
    log += p.filename;
    log += '\n';
  }
  void on_part_data(const uint8_t* d, std::size_t n) noexcept override {
    if (!open || !attachment[open - 1] || n == 0) std::abort();
    log.append(reinterpret_cast<const char*>(d), n);
  }
  void on_part_end(PartEnd how) noexcept override {
    if (!open || readings_open) std::abort();  // a part's readings end before it
    --open;
    log += how == PartEnd::complete ? "\nend\n" : "\ntruncated\n";
  }
  void on_anomaly(MimeAnomaly a) noexcept override {
    if (static_cast<unsigned>(a) >= static_cast<unsigned>(MimeAnomaly::count_)) std::abort();
  }
  unsigned readings_open = 0;  // a bit per slot
  std::string reading_bytes[kMaxPartReadings];
  MimeReading reading_kind[kMaxPartReadings] = {};
  void on_reading_begin(unsigned slot, const PartInfo& p) noexcept override {
    if (slot >= kMaxPartReadings || (readings_open >> slot) & 1u || open != 1 || !attachment[0]) std::abort();
    if (p.reading == MimeReading::primary || p.reading >= MimeReading::count_ || !valid_utf8(p.filename)) std::abort();
    readings_open |= 1u << slot;
    reading_bytes[slot].clear();
    reading_kind[slot] = p.reading;
  }
  void on_reading_data(unsigned slot, const uint8_t* d, std::size_t n) noexcept override {
    if (slot >= kMaxPartReadings || !((readings_open >> slot) & 1u) || n == 0) std::abort();
    reading_bytes[slot].append(reinterpret_cast<const char*>(d), n);
  }
  void on_reading_end(unsigned slot, PartEnd) noexcept override {
    if (slot >= kMaxPartReadings || !((readings_open >> slot) & 1u)) std::abort();
    readings_open &= ~(1u << slot);
    log += "reading ";
    log += mime_reading_name(reading_kind[slot]);
    log += ' ';
    log += reading_bytes[slot];
    log += '\n';
  }
};

enum class Scan { sse2, hs_exact, hs_candidates };

Checker& alt_checker() {
  static Checker alt;
  return alt;
}

MimeParser& parser_for(Scan scan) {
  static MimeParser sse2;  // ~175 KiB each: built once
  static MimeParser exact, candidates;
  static SingleParserPool pool{MimeLimits{}};
  static bool ready = false;
  if (!ready) {
    alt_checker().expect = MimeReading::header_lenient;
    for (MimeParser* p : {&sse2, &exact, &candidates}) p->set_alternate(&pool, &alt_checker());
    std::string error;
    static auto db_exact = MimeBodyScan::compile(error, true);
    static auto db_candidates = MimeBodyScan::compile(error, false);
    if (!db_exact || !db_candidates) std::abort();
    static auto s1 = db_exact->make_scratch();
    static auto s2 = db_candidates->make_scratch();
    if (!exact.use_body_scan(db_exact.get(), s1.get()) || !candidates.use_body_scan(db_candidates.get(), s2.get()))
      std::abort();
    ready = true;
  }
  return scan == Scan::sse2 ? sse2 : scan == Scan::hs_exact ? exact : candidates;
}

std::string run(const uint8_t* data, std::size_t size, unsigned seed, Scan scan = Scan::sse2,
                bool with_anomalies = true) {
  MimeParser& parser = parser_for(scan);
  Checker c;
  Checker& alt = alt_checker();
  alt.log.clear();
  parser.reset(&c);
  std::size_t off = 0;
  unsigned x = seed;
  while (off < size) {
    x = x * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>(size - off, 1 + (x >> 16) % 97);
    parser.feed(data + off, n);
    off += n;
  }
  parser.finish(seed & 1);
  if (c.open || alt.open) std::abort();  // finish() ends every part, the second parse's too
  c.log += "header_lenient:\n" + alt.log;
  if (with_anomalies) c.log += std::to_string(parser.anomalies());
  return c.log;
}

// The log with bytes other than printable ASCII and LF as \xNN.
std::string printable(const std::string& log) {
  std::string o;
  char hex[8];
  for (char c : log) {
    if ((c >= ' ' && c < 127) || c == '\n') {
      o += c;
    } else {
      std::snprintf(hex, sizeof hex, "\\x%02x", unsigned(static_cast<unsigned char>(c)));
      o += hex;
    }
  }
  return o;
}

// Aborts with `what`; SLUICE_FUZZ_PRINT=1 prints the two logs first.
void differ(const char* what, const std::string& a, const std::string& b) {
  if (std::getenv("SLUICE_FUZZ_PRINT"))
    std::fprintf(stderr, "--- SSE2 scan, first split:\n%s\n--- the other run:\n%s\n---\n", printable(a).c_str(), printable(b).c_str());
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string a = run(data, size, 2);  // even seeds: the transfer ended normally
  const std::string b = run(data, size, 40);
  if (a != b) differ("split invariance broken", a, b);
  // The Hyperscan runs take other splits too: when the SSE2 scan under the same split differs as
  // well, the split is what broke the log, not the scan.
  if (const std::string x = run(data, size, 7 * 2, Scan::hs_exact); x != a) {
    if (run(data, size, 7 * 2) != a) differ("split invariance broken (the exact scan's split)", a, x);
    differ("Hyperscan exact body scan differs from the SSE2 scan", a, x);
  }
  const std::string s = run(data, size, 2, Scan::sse2, false);
  if (const std::string c = run(data, size, 9 * 2, Scan::hs_candidates, false); c != s) {
    if (run(data, size, 9 * 2, Scan::sse2, false) != s) differ("split invariance broken (the candidates scan's split)", s, c);
    differ("Hyperscan candidates-only body scan reports other parts than the SSE2 scan", s, c);
  }
  return 0;
}
