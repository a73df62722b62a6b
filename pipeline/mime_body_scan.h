// Hyperscan body scanning for the MIME parser (an alternative to its SSE2 line skip, selected per
// parser by MimeParser::use_body_scan). The database finds, in the raw message, the only places
// where the parser's per-line loop has work to do inside a body:
// - a line start with '-', 'b' or 'e' (delimiter, uuencode "begin" / "end" candidates);
// - a bare LF (an LF not preceded by CR): the bare_lf anomaly;
// - the 999th byte of a line (CR counted): a line that may be over 998 octets, line_too_long.
// Between such places the parser hands bodies to the decoders without looking at lines.
// Compiled once (control plane); one scratch per lcore; one stream per parser, reset per message.
#pragma once

#include <memory>
#include <string>

struct hs_database;
struct hs_scratch;

namespace sluice::pipeline {

class MimeBodyScan {
 public:
  // Pattern ids, reported with the match's last byte; begin_start / end_start (exact_lines false)
  // end 5 / 2 bytes after their line start and are recorded as line_start.
  enum Event : unsigned { line_start = 0, bare_lf = 1, long_line = 2, begin_start = 4, end_start = 5 };

  // Control plane: nullptr with `error` set when Hyperscan refuses. `exact_lines` false: only the
  // line starts "--"... are looked for ("-", "begin ", "end"), and bare_lf / line_too_long are
  // given up inside skipped body lines (reported only on lines the parser reads: header lines,
  // candidate lines and their neighbours), for speed: the bounded repeat for 999 bytes costs
  // Hyperscan ~3.6 Gbit/s, the bare-LF pattern ~18 (one check per '\n').
  static std::unique_ptr<MimeBodyScan> compile(std::string& error, bool exact_lines = true);
  bool exact_lines() const noexcept { return exact_; }
  ~MimeBodyScan();

  struct Scratch {
    hs_scratch* s = nullptr;
    ~Scratch();
  };
  std::unique_ptr<Scratch> make_scratch() const;  // one per lcore
  const hs_database* db() const noexcept { return db_; }

 private:
  MimeBodyScan() = default;
  hs_database* db_ = nullptr;
  bool exact_ = true;
};

}  // namespace sluice::pipeline
