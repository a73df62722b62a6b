// control/http_pool: URLs, pins, keep-alive reuse and the reconnection of a connection the server
// closed while it was idle (against the VirusTotal test double on loopback), multipart uploads (the
// CAPE test double).
#include "control/http_pool.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <optional>

#include "tests/unit/control/endpoint_lab.h"

namespace sluice::control::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(HttpUrl, ParsesWhatAnOperatorWrites) {
  Url u;
  EXPECT_EQ(parse_url("https://cloud.example/reputation/", u), "");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.host, "cloud.example");
  EXPECT_EQ(u.port, "443");
  EXPECT_EQ(u.prefix, "/reputation");
  EXPECT_EQ(parse_url("http://[::1]:8440", u), "");
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, "8440");
  EXPECT_EQ(u.prefix, "");
  EXPECT_EQ(parse_url("http://127.0.0.1:08440", u), "");
  EXPECT_EQ(u.port, "8440");
  EXPECT_EQ(parse_url("cloud.example", u), "must start with http:// or https://");
  EXPECT_EQ(parse_url("http://", u), "no host");
  EXPECT_EQ(parse_url("http://h:", u), "empty port");
  EXPECT_EQ(parse_url("http://h:0", u), "bad port '0'");
  EXPECT_EQ(parse_url("http://h/x?y=1", u), "no query or fragment allowed");
  EXPECT_EQ(parse_url("http://[::1", u), "unclosed '[' in the host");
  EXPECT_EQ(parse_url("http://h_x", u), "bad host name 'h_x'");
}

TEST(HttpUrl, Loopback) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.8.9.10"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("LocalHost"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("localhost.example"));
}

TEST(HttpPin, DecodesCurlsFormat) {
  std::array<uint8_t, 32> d{};
  for (unsigned i = 0; i < 32; ++i) d[i] = static_cast<uint8_t>(i * 7);
  std::string pin = encode_pin(d);
  EXPECT_EQ(pin.size(), 8u + 44u);
  EXPECT_EQ(decode_pin(pin), d);
  EXPECT_EQ(decode_pin(pin.substr(8)), d);  // without the prefix
  EXPECT_FALSE(decode_pin("sha256//" + std::string(44, 'A')));
  EXPECT_FALSE(decode_pin(pin.substr(0, pin.size() - 1)));
  EXPECT_FALSE(decode_pin("sha256//" + std::string(42, 'A') + "=="));  // 31 bytes
}

struct Loop {
  boost::asio::io_context io;
  std::optional<Response> send(Pool& pool, const std::string& target) {
    std::optional<Response> out;
    Request r;
    r.target = target;
    r.headers = {{"x-apikey", test::VtDouble::kKey}};
    r.deadline = Clock::now() + 3s;
    EXPECT_TRUE(pool.send(std::move(r), [&](Response resp) { out = std::move(resp); }));
    EXPECT_FALSE(out) << "done ran inside send()";
    auto end = Clock::now() + 5s;
    while (!out && Clock::now() < end) {
      if (io.stopped()) io.restart();
      io.run_one_for(10ms);
    }
    return out;
  }
};

TEST(HttpPool, KeepsTheConnectionAliveAndReconnectsWhenTheServerClosedIt) {
  test::VtDouble vt;
  Loop loop;
  PoolOptions o;
  ASSERT_EQ(parse_url(vt.url(), o.url), "");
  auto pool = Pool::create(loop.io, o);
  const std::string target = "/api/v3/files/" + std::string(64, 'a');
  for (int i = 0; i < 3; ++i) {
    auto r = loop.send(*pool, target);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->failure, Failure::none) << r->detail;
    EXPECT_EQ(r->status, 404u);
  }
  EXPECT_EQ(pool->connections_made(), 1u);
  EXPECT_EQ(pool->connections_open(), 1u);
  vt.restart();  // the kept connection is now dead; the request goes out again on a fresh one
  auto r = loop.send(*pool, target);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->failure, Failure::none) << r->detail;
  EXPECT_EQ(r->status, 404u);
  EXPECT_EQ(pool->connections_made(), 2u);
  EXPECT_EQ(vt.stats()["requests"], 1);
}

TEST(HttpPool, RefusedConnectionAndQueueBound) {
  Loop loop;
  PoolOptions o;
  ASSERT_EQ(parse_url("http://127.0.0.1:" + std::to_string(test::closed_port()), o.url), "");
  o.max_queued = 1;
  auto pool = Pool::create(loop.io, o);
  EXPECT_EQ(pool->room(), 1u);
  auto r = loop.send(*pool, "/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->failure, Failure::connect);
  EXPECT_EQ(r->detail, "connect: Connection refused");
  Request a, b;
  a.deadline = b.deadline = Clock::now() + 1s;
  int called = 0;
  EXPECT_TRUE(pool->send(std::move(a), [&](Response) { ++called; }));
  EXPECT_EQ(pool->room(), 0u);
  EXPECT_FALSE(pool->send(std::move(b), [&](Response) { ++called; }));
  pool->close();  // nothing is called after close
  loop.io.restart();
  loop.io.run_for(50ms);
  EXPECT_EQ(called, 0);
}

TEST(HttpPool, UploadsAFileAsMultipartFormDataWithoutCopyingIt) {
  test::CapeDouble cape;
  Loop loop;
  PoolOptions o;
  ASSERT_EQ(parse_url(cape.url(), o.url), "");
  auto pool = Pool::create(loop.io, o);
  // Every byte value, CR LF and dashes as a boundary line would have them, 2 MiB in all.
  auto bytes = std::make_shared<std::string>("--\r\n--sluice-\r\n\r\n");
  for (std::size_t i = 0; bytes->size() < (2u << 20); ++i) bytes->push_back(static_cast<char>(i * 7 % 256));
  std::shared_ptr<const std::string> shared = std::move(bytes);
  Request r;
  r.method = boost::beast::http::verb::post;
  r.target = "/apiv2/tasks/create/file/";
  r.headers = {{"Authorization", std::string("Token ") + test::CapeDouble::kKey}};
  r.upload = Upload{"file", "a\"b\\c\r\nd.doc", shared};
  r.deadline = Clock::now() + 5s;
  std::optional<Response> out;
  ASSERT_TRUE(pool->send(std::move(r), [&](Response resp) { out = std::move(resp); }));
  EXPECT_GE(shared.use_count(), 2);  // the pool holds the caller's buffer, no copy of it
  auto end = Clock::now() + 10s;
  while (!out && Clock::now() < end) loop.io.run_one_for(10ms);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->failure, Failure::none) << out->detail;
  EXPECT_EQ(out->status, 200u);
  EXPECT_TRUE(out->request_sent);
  EXPECT_EQ(shared.use_count(), 1);  // released once written
  unsigned char digest[32];
  EVP_Digest(shared->data(), shared->size(), digest, nullptr, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned char c : digest) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
  auto uploads = cape.stats()["uploads"];
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_EQ(uploads[0]["sha256"], hex);
  EXPECT_EQ(uploads[0]["size"], shared->size());
  EXPECT_EQ(uploads[0]["filename"], "a_b_c__d.doc");
}

}  // namespace
}  // namespace sluice::control::http
