// sluice_mime_dump: runs pipeline/mime_parser over .eml files and prints one JSON line per file
// (parts, attachments with size and SHA-256, anomalies). A development and test tool.
//
//   sluice_mime_dump [--split SEED] [--hyperscan] FILE.eml... | -
//
// --split SEED feeds each message in random-sized pieces (1..64 bytes, some larger) chosen by SEED:
// the output must not change. --hyperscan skips bodies with the Hyperscan body scan
// (MimeParser::use_body_scan) instead of the SSE2 scan: the output must not change either.
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/mime_parser.h"

namespace {

using sluice::pipeline::MimeAnomaly;
using sluice::pipeline::MimeCallbacks;
using sluice::pipeline::MimeParser;
using sluice::pipeline::PartEnd;
using sluice::pipeline::PartInfo;
using sluice::pipeline::kMaxPartReadings;

std::string hex(const unsigned char* d, unsigned n) {
  static const char* x = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) { s += x[d[i] >> 4]; s += x[d[i] & 15]; }
  return s;
}

nlohmann::json names(std::string_view list) {
  nlohmann::json a = nlohmann::json::array();
  sluice::pipeline::for_each_name(list, [&](std::string_view n) { a.push_back(std::string(n)); });
  return a;
}

class Collector final : public MimeCallbacks {
 public:
  nlohmann::json parts = nlohmann::json::array();
  nlohmann::json anomalies = nlohmann::json::array();

  void on_part_begin(const PartInfo& p) noexcept override {
    Open o;
    o.j = {{"path", std::string(p.path)},
           {"content_type", std::string(p.content_type)},
           {"filename", std::string(p.filename)},
           {"alt_filename", std::string(p.alt_filename)},
           {"filenames", names(p.filenames)},
           {"disposition", std::string(p.disposition)},
           {"encoding", sluice::pipeline::transfer_encoding_name(p.encoding)},
           {"attachment", p.attachment},
           {"uuencoded", p.uuencoded}};
    o.attachment = p.attachment;
    if (o.attachment) {
      o.ctx = EVP_MD_CTX_new();
      EVP_DigestInit_ex(o.ctx, EVP_sha256(), nullptr);
    }
    o.index = parts.size();
    parts.push_back(nullptr);  // in begin order
    stack_.push_back(o);
  }
  void on_part_data(const uint8_t* d, std::size_t n) noexcept override {
    if (stack_.empty()) { std::fprintf(stderr, "data outside a part\n"); return; }
    Open& o = stack_.back();
    o.size += n;
    if (o.ctx) EVP_DigestUpdate(o.ctx, d, n);
  }
  void on_part_end(PartEnd how) noexcept override {
    if (stack_.empty()) { std::fprintf(stderr, "end outside a part\n"); return; }
    Open o = stack_.back();
    stack_.pop_back();
    o.j["status"] = how == PartEnd::complete ? "complete" : "truncated";
    if (o.ctx) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned len = 0;
      EVP_DigestFinal_ex(o.ctx, md, &len);
      EVP_MD_CTX_free(o.ctx);
      o.j["size"] = o.size;
      o.j["sha256"] = hex(md, len);
    }
    parts[o.index] = o.j;
  }
  void on_anomaly(MimeAnomaly a) noexcept override {
    anomalies.push_back(sluice::pipeline::mime_anomaly_name(a));
  }
  // Other readings of a part (pipeline/mime_readings.h): in "readings", apart from "parts" (the
  // primary reading, which the differential test compares with Python's email package).
  nlohmann::json readings = nlohmann::json::array();
  void on_reading_begin(unsigned slot, const PartInfo& p) noexcept override {
    if (slot >= kMaxPartReadings) return;
    Open& o = open_readings_[slot];
    o = Open{};
    o.j = {{"path", std::string(p.path)},
           {"reading", sluice::pipeline::mime_reading_name(p.reading)},
           {"filename", std::string(p.filename)},
           {"encoding", sluice::pipeline::transfer_encoding_name(p.encoding)}};
    o.ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(o.ctx, EVP_sha256(), nullptr);
  }
  void on_reading_data(unsigned slot, const uint8_t* d, std::size_t n) noexcept override {
    if (slot >= kMaxPartReadings || !open_readings_[slot].ctx) return;
    open_readings_[slot].size += n;
    EVP_DigestUpdate(open_readings_[slot].ctx, d, n);
  }
  void on_reading_end(unsigned slot, PartEnd how) noexcept override {
    if (slot >= kMaxPartReadings || !open_readings_[slot].ctx) return;
    Open& o = open_readings_[slot];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(o.ctx, md, &len);
    EVP_MD_CTX_free(o.ctx);
    o.ctx = nullptr;
    o.j["status"] = how == PartEnd::complete ? "complete" : "truncated";
    o.j["size"] = o.size;
    o.j["sha256"] = hex(md, len);
    readings.push_back(o.j);
  }
  bool balanced() const { return stack_.empty(); }

 private:
  struct Open {
    nlohmann::json j;
    bool attachment = false;
    EVP_MD_CTX* ctx = nullptr;
    uint64_t size = 0;
    std::size_t index = 0;
  };
  std::vector<Open> stack_;
  Open open_readings_[kMaxPartReadings];
};

// The parts of the header_lenient parse (MimeParser::set_alternate): each attachment goes into
// the owner's "readings", as the other readings do.
class AltCollector final : public MimeCallbacks {
 public:
  nlohmann::json* readings = nullptr;
  void on_part_begin(const PartInfo& p) noexcept override {
    Open o;
    o.j = {{"path", std::string(p.path)},
           {"reading", sluice::pipeline::mime_reading_name(p.reading)},
           {"filename", std::string(p.filename)},
           {"encoding", sluice::pipeline::transfer_encoding_name(p.encoding)}};
    if (p.attachment) {
      o.ctx = EVP_MD_CTX_new();
      EVP_DigestInit_ex(o.ctx, EVP_sha256(), nullptr);
    }
    stack_.push_back(o);
  }
  void on_part_data(const uint8_t* d, std::size_t n) noexcept override {
    if (stack_.empty()) { std::fprintf(stderr, "alternate: data outside a part\n"); return; }
    stack_.back().size += n;
    if (stack_.back().ctx) EVP_DigestUpdate(stack_.back().ctx, d, n);
  }
  void on_part_end(PartEnd how) noexcept override {
    if (stack_.empty()) { std::fprintf(stderr, "alternate: end outside a part\n"); return; }
    Open o = stack_.back();
    stack_.pop_back();
    if (!o.ctx) return;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(o.ctx, md, &len);
    EVP_MD_CTX_free(o.ctx);
    o.j["status"] = how == PartEnd::complete ? "complete" : "truncated";
    o.j["size"] = o.size;
    o.j["sha256"] = hex(md, len);
    readings->push_back(o.j);
  }
  void on_anomaly(MimeAnomaly) noexcept override {}
  bool balanced() const { return stack_.empty(); }

 private:
  struct Open {
    nlohmann::json j;
    EVP_MD_CTX* ctx = nullptr;
    uint64_t size = 0;
  };
  std::vector<Open> stack_;
};

}  // namespace

int main(int argc, char** argv) {
  bool split = false;
  bool hyperscan = false;
  bool lite = false;  // --hyperscan-no-line-checks: MimeBodyScan::compile(exact_lines false)
  unsigned long seed = 0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--split" && i + 1 < argc) { split = true; seed = std::strtoul(argv[++i], nullptr, 10); }
    else if (a == "--hyperscan") hyperscan = true;
    else if (a == "--hyperscan-no-line-checks") hyperscan = lite = true;
    else if (a == "-h" || a == "--help") {
      std::puts("usage: sluice_mime_dump [--split SEED] [--hyperscan] FILE.eml... | -");
      return 0;
    } else files.push_back(a);
  }
  if (files.empty()) {
    std::fputs("usage: sluice_mime_dump [--split SEED] [--hyperscan] FILE.eml... | -\n", stderr);
    return 2;
  }
  auto parser = std::make_unique<MimeParser>();
  sluice::pipeline::SingleParserPool pool{sluice::pipeline::MimeLimits{}};
  AltCollector alt;
  parser->set_alternate(&pool, &alt);
  std::unique_ptr<sluice::pipeline::MimeBodyScan> scan;
  std::unique_ptr<sluice::pipeline::MimeBodyScan::Scratch> scratch;
  if (hyperscan) {
    std::string error;
    scan = sluice::pipeline::MimeBodyScan::compile(error, !lite);
    if (!scan) { std::fprintf(stderr, "%s\n", error.c_str()); return 1; }
    scratch = scan->make_scratch();
    if (!parser->use_body_scan(scan.get(), scratch.get())) { std::fputs("hs_open_stream failed\n", stderr); return 1; }
  }
  int rc = 0;
  for (const auto& f : files) {
    std::string data;
    if (f == "-") {
      data.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      std::ifstream in(f, std::ios::binary);
      if (!in) { std::fprintf(stderr, "%s: cannot open\n", f.c_str()); rc = 1; continue; }
      data.assign(std::istreambuf_iterator<char>(in), {});
    }
    Collector c;
    alt.readings = &c.readings;
    parser->reset(&c);
    const auto* p = reinterpret_cast<const uint8_t*>(data.data());
    if (!split) {
      parser->feed(p, data.size());
    } else {
      std::mt19937_64 rng(seed);
      std::size_t off = 0;
      while (off < data.size()) {
        std::size_t n = rng() % 8 == 0 ? 1 + rng() % 4096 : 1 + rng() % 64;
        if (n > data.size() - off) n = data.size() - off;
        parser->feed(p + off, n);
        off += n;
      }
    }
    parser->finish(true);
    if (!alt.balanced()) { std::fprintf(stderr, "%s: unbalanced header_lenient callbacks\n", f.c_str()); rc = 1; }
    if (!c.balanced()) { std::fprintf(stderr, "%s: unbalanced part callbacks\n", f.c_str()); rc = 1; }
    nlohmann::json out = {{"file", f}, {"parts", c.parts}, {"readings", c.readings}, {"anomalies", c.anomalies}};
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return rc;
}
