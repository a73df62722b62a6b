// MIME parsing + decoding per core, from memory, next to GMime 3 on the same messages in the same
// run; and the candidate-line prefilter, Hyperscan against scalar memchr.
//
//   bench_mime ROUNDS FILE.eml...
// Prints one JSON object per measurement: name, bytes (message bytes per round), seconds (best
// round), gbit_per_s, attachments and decoded bytes found.
#include <gmime/gmime.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "pipeline/mime_body_scan.h"
#include "pipeline/mime_parser.h"
#include "tests/bench/mime_prefilter.h"

using namespace sluice::pipeline;

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  uint64_t attachments = 0, decoded = 0;
};

void report(const char* name, uint64_t bytes, double secs, const Result& r) {
  std::printf("{\"name\": \"%s\", \"bytes\": %llu, \"seconds\": %.4f, \"gbit_per_s\": %.2f, \"attachments\": %llu, "
              "\"decoded_bytes\": %llu}\n",
              name, static_cast<unsigned long long>(bytes), secs, bytes * 8 / secs / 1e9,
              static_cast<unsigned long long>(r.attachments), static_cast<unsigned long long>(r.decoded));
}

struct Counting final : MimeCallbacks {
  Result r;
  bool in = false;
  EVP_MD_CTX* sha = nullptr;  // set: hash attachments too
  void on_part_begin(const PartInfo& p) noexcept override {
    in = p.attachment;
    if (in) {
      ++r.attachments;
      if (sha) EVP_DigestInit_ex(sha, EVP_sha256(), nullptr);
    }
  }
  void on_part_data(const uint8_t*, std::size_t n) noexcept override { r.decoded += n; }
  void on_part_end(PartEnd) noexcept override {}
  void on_anomaly(MimeAnomaly) noexcept override {}
};

struct Hashing final : MimeCallbacks {
  Result r;
  bool in = false;
  EVP_MD_CTX* sha = EVP_MD_CTX_new();
  ~Hashing() override { EVP_MD_CTX_free(sha); }
  void on_part_begin(const PartInfo& p) noexcept override {
    in = p.attachment;
    if (in) {
      ++r.attachments;
      EVP_DigestInit_ex(sha, EVP_sha256(), nullptr);
    }
  }
  void on_part_data(const uint8_t* d, std::size_t n) noexcept override {
    if (!in) return;
    r.decoded += n;
    EVP_DigestUpdate(sha, d, n);
  }
  void on_part_end(PartEnd) noexcept override {
    if (!in) return;
    uint8_t out[32];
    unsigned len;
    EVP_DigestFinal_ex(sha, out, &len);
  }
  void on_anomaly(MimeAnomaly) noexcept override {}
};

// Feeds each message in 1460-byte pieces, as the SMTP stage hands over TCP segments.
template <typename Callbacks>
Result run_sluice(MimeParser& p, const std::vector<std::string>& msgs) {
  Callbacks cb;
  for (const std::string& m : msgs) {
    p.reset(&cb);
    const auto* d = reinterpret_cast<const uint8_t*>(m.data());
    for (std::size_t off = 0; off < m.size(); off += 1460) p.feed(d + off, std::min<std::size_t>(1460, m.size() - off));
    p.finish(true);
  }
  return cb.r;
}

// GMime: parse the message, walk its parts, decode every attachment to a null stream.
Result run_gmime(const std::vector<std::string>& msgs) {
  Result r;
  for (const std::string& m : msgs) {
    GMimeStream* stream = g_mime_stream_mem_new_with_buffer(m.data(), m.size());
    GMimeParser* parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage* message = g_mime_parser_construct_message(parser, nullptr);
    if (message) {
      GMimePartIter* iter = g_mime_part_iter_new(GMIME_OBJECT(message));
      do {
        GMimeObject* cur = g_mime_part_iter_get_current(iter);
        if (cur && GMIME_IS_PART(cur) && !GMIME_IS_MULTIPART(cur)) {
          GMimePart* part = GMIME_PART(cur);
          GMimeContentType* ct = g_mime_object_get_content_type(cur);
          const bool text = ct && g_mime_content_type_is_type(ct, "text", "*");
          if (g_mime_part_is_attachment(part) || g_mime_part_get_filename(part) || !text) {
            ++r.attachments;
            GMimeStream* null = g_mime_stream_null_new();
            if (GMimeDataWrapper* content = g_mime_part_get_content(part))
              g_mime_data_wrapper_write_to_stream(content, null);
            r.decoded += GMIME_STREAM_NULL(null)->written;
            g_object_unref(null);
          }
        }
      } while (g_mime_part_iter_next(iter));
      g_mime_part_iter_free(iter);
      g_object_unref(message);
    }
    g_object_unref(parser);
    g_object_unref(stream);
  }
  return r;
}

struct CountCandidates final : CandidateSink {
  uint64_t n = 0;
  void on_candidate(LineKind, uint64_t) noexcept override { ++n; }
};

template <typename Fn>
double best_of(int rounds, Fn&& fn) {
  double best = 1e9;
  for (int i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_mime ROUNDS FILE.eml...\n");
    return 2;
  }
  const int rounds = std::atoi(argv[1]);
  std::vector<std::string> msgs;
  uint64_t bytes = 0;
  for (int i = 2; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    msgs.emplace_back((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    bytes += msgs.back().size();
  }
  g_mime_init();
  static MimeParser parser;     // large: not on the stack
  static MimeParser hs_parser;  // the same, skipping bodies with Hyperscan (use_body_scan)
  static MimeParser lite_parser;  // Hyperscan without line accounting (exact_lines false)
  std::string scan_error;
  auto body_scan = MimeBodyScan::compile(scan_error);
  if (!body_scan) {
    std::fprintf(stderr, "%s\n", scan_error.c_str());
    return 1;
  }
  auto body_scratch = body_scan->make_scratch();
  if (!hs_parser.use_body_scan(body_scan.get(), body_scratch.get())) return 1;
  auto lite_scan = MimeBodyScan::compile(scan_error, false);
  if (!lite_scan) return 1;
  auto lite_scratch = lite_scan->make_scratch();
  if (!lite_parser.use_body_scan(lite_scan.get(), lite_scratch.get())) return 1;

  // SSE2 and Hyperscan body skipping, interleaved round by round (a shared, noisy machine).
  Result r, rh, rl;
  double t = 1e9, th = 1e9, tl = 1e9;
  for (int i = 0; i < rounds; ++i) {
    t = std::min(t, best_of(1, [&] { r = run_sluice<Counting>(parser, msgs); }));
    th = std::min(th, best_of(1, [&] { rh = run_sluice<Counting>(hs_parser, msgs); }));
    tl = std::min(tl, best_of(1, [&] { rl = run_sluice<Counting>(lite_parser, msgs); }));
  }
  report("sluice_parse_decode", bytes, t, r);
  report("sluice_parse_decode_hyperscan_skip", bytes, th, rh);
  report("sluice_parse_decode_hyperscan_skip_no_line_checks", bytes, tl, rl);
  if (std::getenv("BENCH_MIME_SKIP_ONLY")) return 0;
  t = best_of(rounds, [&] { r = run_sluice<Hashing>(parser, msgs); });
  report("sluice_parse_decode_sha256", bytes, t, r);
  t = best_of(rounds, [&] { r = run_gmime(msgs); });
  report("gmime_parse_decode", bytes, t, r);

  std::string error;
  auto hs = HyperscanPrefilter::compile(error);
  if (!hs) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  auto scratch = hs->make_scratch();
  auto stream = hs->make_stream();
  CountCandidates a, b;
  t = best_of(rounds, [&] {
    a.n = 0;
    for (const std::string& m : msgs) {
      hs->reset(*stream, *scratch);
      const auto* d = reinterpret_cast<const uint8_t*>(m.data());
      for (std::size_t off = 0; off < m.size(); off += 1460)
        hs->scan(*stream, *scratch, d + off, std::min<std::size_t>(1460, m.size() - off), a);
    }
  });
  report("prefilter_hyperscan", bytes, t, Result{a.n, 0});
  ScalarPrefilter sp;
  t = best_of(rounds, [&] {
    b.n = 0;
    for (const std::string& m : msgs) {
      sp.reset();
      const auto* d = reinterpret_cast<const uint8_t*>(m.data());
      for (std::size_t off = 0; off < m.size(); off += 1460) sp.scan(d + off, std::min<std::size_t>(1460, m.size() - off), b);
      sp.finish(b);
    }
  });
  report("prefilter_scalar", bytes, t, Result{b.n, 0});
  return 0;
}
