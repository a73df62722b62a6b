// Fills a state directory's quarantine for the management API benchmark (scripts/bench-api): COUNT
// held entries in STATE/quarantine, put() through control::QuarantineStore as sluiced would, so a
// sluiced started on STATE loads them. Each message is a few KiB of RFC 5322 mail (headers, a text
// part of its own, and the attachment ATTACHMENT base64-encoded); its message_sha256 is that of its
// bytes, its metadata what a message held for analysis carries (flow, envelope, subject, the file
// with `analysis_submitted`, the reason `analysis_pending`).
//
// Every entry waits on the same file (a campaign), so that sluiced keeps them held: with ENDPOINT
// and SAMPLE_ID, one pending submission of the attachment's SHA-256 to that analysis endpoint is
// added to STATE/submissions.sqlite (the sample must exist on the service and stay unfinished;
// without a submission a resumed entry's analysis counts as expired and sluiced releases it).
//
//   bench_quarantine_fill STATE COUNT ATTACHMENT [ENDPOINT SAMPLE_ID]
//
// put() fsyncs three times per entry: give a STATE on a tmpfs, or expect about 60 puts a second.
#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "control/quarantine_store.h"
#include "control/submission_store.h"

using namespace sluice::control;

namespace {

std::string sha256_hex(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += hex[d[i] >> 4];
    s += hex[d[i] & 15];
  }
  return s;
}

// Base64 in lines of 76 characters, CRLF-terminated, as a mail client writes an attachment.
std::string base64_lines(const std::string& bytes) {
  std::string flat(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(flat.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  flat.resize(static_cast<std::size_t>(n));
  std::string out;
  for (std::size_t i = 0; i < flat.size(); i += 76) out += flat.substr(i, 76) + "\r\n";
  return out;
}

const char* const kWords[] = {"invoice", "payment", "overdue", "please", "review", "the", "attached", "document",
                              "urgent", "account", "statement", "quarter", "shipping", "order", "confirm", "details"};

std::string words(std::mt19937_64& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kWords[rng() % std::size(kWords)];
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 6) {
    std::fprintf(stderr, "usage: bench_quarantine_fill STATE COUNT ATTACHMENT [ENDPOINT SAMPLE_ID]\n");
    return 2;
  }
  const std::string state = argv[1];
  const long count = std::strtol(argv[2], nullptr, 10);
  std::ifstream in(argv[3], std::ios::binary);
  const std::string attachment((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (count <= 0 || attachment.empty()) {
    std::fprintf(stderr, "bench_quarantine_fill: need COUNT > 0 and a non-empty ATTACHMENT\n");
    return 2;
  }
  const std::string file_sha = sha256_hex(attachment);
  const std::string encoded = base64_lines(attachment);

  std::filesystem::create_directories(state);
  QuarantineLimits limits;
  limits.max_messages = static_cast<uint64_t>(count) > limits.max_messages ? static_cast<uint64_t>(count)
                                                                           : limits.max_messages;
  QuarantineOpen o = QuarantineStore::open(state + "/quarantine", limits);
  if (!o.store) {
    std::fprintf(stderr, "bench_quarantine_fill: %s\n", o.error.c_str());
    return 1;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  std::mt19937_64 rng(15);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t bytes = 0;
  for (long i = 0; i < count; ++i) {
    QuarantineEntry e;
    const std::string sender = "billing" + std::to_string(i % 97) + "@supplier" + std::to_string(i % 13) + ".example";
    const std::string rcpt = "user" + std::to_string(i % 500) + "@corp.example";
    e.received_ms = now - (count - i) * 1000;
    e.flow_id = 0x5100000000ULL + static_cast<uint64_t>(i);
    e.transaction = static_cast<uint64_t>(i % 3);
    e.client_ip = "198.51.100." + std::to_string(1 + i % 250);
    e.client_port = static_cast<uint16_t>(20000 + i % 40000);
    e.server_ip = "192.0.2.25";
    e.server_port = 25;
    e.helo = "mx" + std::to_string(i % 13) + ".supplier.example";
    e.mail_from = sender;
    e.rcpt_to = {rcpt};
    if (i % 4 == 0) e.rcpt_to.push_back("finance@corp.example");
    e.subject = "Invoice " + std::to_string(100000 + i) + ": " + words(rng, 4);
    e.message_id = "<" + std::to_string(i) + "." + std::to_string(rng() % 1000000) + "@supplier.example>";
    e.files.push_back({"invoice-" + std::to_string(100000 + i) + ".docm", file_sha, "unknown", "analysis_submitted"});
    e.reasons = {"analysis_pending"};

    std::string msg;
    msg += "Received: from " + e.helo + " (" + e.helo + " [" + e.client_ip + "])\r\n\tby mx.corp.example; " +
           std::to_string(e.received_ms / 1000) + "\r\n";
    msg += "From: Billing <" + sender + ">\r\nTo: <" + rcpt + ">\r\nSubject: " + e.subject + "\r\n";
    msg += "Message-ID: " + e.message_id + "\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n";
    msg += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\r\n\r\n";
    msg += "--b" + std::to_string(i) + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    for (int l = 0; l < 24; ++l) msg += words(rng, 10) + "\r\n";
    msg += "\r\n--b" + std::to_string(i) + "\r\nContent-Type: application/vnd.ms-word.document.macroEnabled.12\r\n";
    msg += "Content-Disposition: attachment; filename=\"" + e.files[0].filename + "\"\r\n";
    msg += "Content-Transfer-Encoding: base64\r\n\r\n" + encoded;
    msg += "\r\n--b" + std::to_string(i) + "--\r\n";
    e.message_sha256 = sha256_hex(msg);
    const QuarantinePut r = o.store->put(e, msg, now - (count - i));
    if (!r.ok()) {
      std::fprintf(stderr, "bench_quarantine_fill: put %ld: %s: %s\n", i, quarantine_error_name(r.error),
                   r.message.c_str());
      return 1;
    }
    bytes += msg.size();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (argc == 6) {
    SubmissionOpen so = SubmissionStore::open(state + "/submissions.sqlite");
    if (!so.store) {
      std::fprintf(stderr, "bench_quarantine_fill: %s\n", so.error.c_str());
      return 1;
    }
    Submission s;
    s.sha256 = file_sha;
    s.endpoint = argv[4];
    s.sample_id = argv[5];
    s.submitted_ms = now;
    s.next_poll_ms = now;
    s.updated_ms = now;
    if (const auto r = so.store->add(s); !r.ok()) {
      std::fprintf(stderr, "bench_quarantine_fill: submission: %s\n", r.message.c_str());
      return 1;
    }
  }
  std::printf("quarantine_fill: %ld entries (%.1f MiB of messages, %.0f bytes each) in %.1f s, file %s\n", count,
              static_cast<double>(bytes) / 1048576, static_cast<double>(bytes) / static_cast<double>(count), secs,
              file_sha.c_str());
  return 0;
}
