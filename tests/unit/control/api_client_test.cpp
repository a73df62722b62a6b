// control/api_client: the TLS policy sluicectl chooses for a URL and its options, fingerprints as
// typed, percent-encoding. (The requests themselves, against real TLS servers:
// tests/integration/sluicectl_test.py and tests/e2e/management_test.py.)
#include "control/api_client.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <string>

#include "control/management.h"

namespace sluice::control::api {
namespace {

using control::make_self_signed;

http::Url url(const std::string& text) {
  http::Url u;
  EXPECT_EQ(http::parse_url(text, u), "") << text;
  return u;
}

const std::string kFp =
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF";

TEST(ApiClient, LoopbackAcceptsAnyCertificateElsewhereTheSystemCasVerify) {
  for (const char* u : {"https://127.0.0.1:8443", "https://127.9.8.7", "https://[::1]:8443", "https://localhost:1",
                        "https://LOCALHOST:1"}) {
    TlsPolicy p;
    ASSERT_EQ(choose_tls(url(u), "", "", p), "") << u;
    EXPECT_EQ(p.trust, Trust::any_on_loopback) << u;
  }
  for (const char* u : {"https://10.0.0.1:8443", "https://appliance.example", "https://[2001:db8::1]",
                        "https://128.0.0.1", "https://localhost.example"}) {
    TlsPolicy p;
    ASSERT_EQ(choose_tls(url(u), "", "", p), "") << u;
    EXPECT_EQ(p.trust, Trust::system) << u;
  }
}

TEST(ApiClient, AFingerprintOrACaFileIsUsedWhereverTheApplianceIs) {
  // A certificate to trust, made as sluiced makes its own.
  const std::string dir = ::testing::TempDir() + "api_client_test_" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string ca = dir + "/a.crt", key = dir + "/a.key";
  ASSERT_EQ(make_self_signed(ca, key, {"127.0.0.1"}), "");
  for (const char* u : {"https://127.0.0.1:8443", "https://appliance.example"}) {
    TlsPolicy p;
    ASSERT_EQ(choose_tls(url(u), "", kFp, p), "");
    EXPECT_EQ((p.trust == Trust::fingerprint && p.fingerprint == kFp), true) << u;
    ASSERT_EQ(choose_tls(url(u), ca, "", p), "");
    EXPECT_EQ((p.trust == Trust::ca_file && p.ca_file == ca), true) << u;
  }
  TlsPolicy p;
  EXPECT_NE(choose_tls(url("http://127.0.0.1:8443"), "", "", p).find("HTTPS only"), std::string::npos);
  EXPECT_NE(choose_tls(url("https://x"), ca, kFp, p).find("alternatives"), std::string::npos);
  EXPECT_NE(choose_tls(url("https://x"), "/nonexistent/ca.pem", "", p).find("cannot be read"), std::string::npos);
  EXPECT_NE(choose_tls(url("https://x"), "", "AB:CD", p).find("is not a SHA-256"), std::string::npos);
  EXPECT_NE(choose_tls(url("https://x"), key, "", p).find("holds no PEM certificate"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ApiClient, AFingerprintIsTypedWithOrWithoutColonsInEitherCase) {
  std::string bare;
  for (char c : kFp)
    if (c != ':') bare += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(normal_fingerprint(kFp), kFp);
  EXPECT_EQ(normal_fingerprint(bare), kFp);
  std::string upper_bare = bare;
  for (char& c : upper_bare) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(normal_fingerprint(upper_bare), kFp);
  EXPECT_EQ(normal_fingerprint(bare.substr(2)), "");                // 31 bytes
  EXPECT_EQ(normal_fingerprint(bare + "00"), "");                   // 33
  EXPECT_EQ(normal_fingerprint("g" + bare.substr(1)), "");          // not hex
  EXPECT_EQ(normal_fingerprint(kFp.substr(0, 94) + "X"), "");
  std::string misplaced = kFp;
  std::swap(misplaced[2], misplaced[3]);  // "01:23" -> "012:3"
  EXPECT_EQ(normal_fingerprint(misplaced), "");
  EXPECT_EQ(normal_fingerprint(""), "");
  uint8_t bytes[32];
  for (int i = 0; i < 32; ++i) bytes[i] = static_cast<uint8_t>(i * 8);
  EXPECT_EQ(fingerprint_text(bytes).substr(0, 12), "00:08:10:18:");
}

TEST(ApiClient, QueryValuesAndPathSegmentsArePercentEncoded) {
  EXPECT_EQ(url_encode("a+b@x.example"), "a%2Bb%40x.example");
  EXPECT_EQ(url_encode("2026-11-28T00:00:00Z"), "2026-11-28T00%3A00%3A00Z");
  EXPECT_EQ(url_encode("my cloud/1?&=#"), "my%20cloud%2F1%3F%26%3D%23");
  EXPECT_EQ(url_encode("caf\xC3\xA9~_.-"), "caf%C3%A9~_.-");
  EXPECT_EQ(url_encode(""), "");
}

TEST(ApiClient, NothingListeningIsAFailureNotAnAnswer) {
  ClientOptions o;
  o.url = url("https://127.0.0.1:1");
  o.tls.trust = Trust::any_on_loopback;
  o.timeout = std::chrono::milliseconds(2000);
  const Response r = perform(o, Request{});
  EXPECT_EQ(r.status, 0u);
  EXPECT_NE(r.failure.find("cannot connect to 127.0.0.1:1"), std::string::npos) << r.failure;
}

}  // namespace
}  // namespace sluice::control::api
