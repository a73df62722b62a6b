#include "control/cloud/options.h"

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

using namespace sluice::cloud;

namespace {

ParsedCommandLine parse(std::vector<const char*> args) {
  args.insert(args.begin(), "sluice-cloud");
  return parse_command_line(static_cast<int>(args.size()), args.data(), "1.2.3");
}

}  // namespace

TEST(CloudOptions, Defaults) {
  const auto p = parse({"--listen", "127.0.0.1:8440", "--data", "/tmp/d"});
  ASSERT_TRUE(p.options) << p.text;
  const Options& o = *p.options;
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 8440);
  EXPECT_TRUE(o.loopback);
  EXPECT_EQ(o.data, "/tmp/d");
  EXPECT_TRUE(o.api_keys.empty());
  EXPECT_FALSE(o.admin_key);
  EXPECT_FALSE(o.tls_cert);
  EXPECT_EQ(o.quota_per_minute, 0u);
  EXPECT_EQ(o.ttl.clean, 14400u);
  EXPECT_EQ(o.ttl.malicious, 3600u);
  EXPECT_EQ(o.ttl.unknown, 900u);
  EXPECT_EQ(o.max_connections, 256u);
  EXPECT_EQ(o.max_body_bytes, 1u << 20);
  EXPECT_EQ(o.idle_timeout_s, 30u);
  EXPECT_EQ(o.read_timeout_s, 10u);
}

TEST(CloudOptions, Everything) {
  const auto p = parse({"--listen", "[::1]:0", "--data", "d", "--api-key", "a", "--api-key", "b", "--admin-key", "z",
                        "--tls-cert", "c.pem", "--tls-key", "k.pem", "--quota-per-minute", "60", "--ttl-clean", "1",
                        "--ttl-malicious", "2", "--ttl-unknown", "3", "--max-connections", "9", "--max-body-kb", "4",
                        "--idle-timeout", "5", "--read-timeout", "6"});
  ASSERT_TRUE(p.options) << p.text;
  const Options& o = *p.options;
  EXPECT_EQ(o.host, "::1");
  EXPECT_TRUE(o.loopback);
  EXPECT_EQ(o.api_keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o.admin_key, "z");
  EXPECT_EQ(o.tls_cert->string(), "c.pem");
  EXPECT_EQ(o.quota_per_minute, 60u);
  EXPECT_EQ(o.ttl.unknown, 3u);
  EXPECT_EQ(o.max_body_bytes, 4096u);
  EXPECT_EQ(o.read_timeout_s, 6u);
}

TEST(CloudOptions, LocalhostAndOtherAddresses) {
  auto p = parse({"--listen", "localhost:1", "--data", "d"});
  ASSERT_TRUE(p.options);
  EXPECT_EQ(p.options->host, "127.0.0.1");
  p = parse({"--listen", "127.8.9.1:1", "--data", "d"});
  ASSERT_TRUE(p.options);
  EXPECT_TRUE(p.options->loopback);
  p = parse({"--listen", "10.0.0.1:1", "--data", "d", "--insecure-listen"});
  ASSERT_TRUE(p.options);
  EXPECT_FALSE(p.options->loopback);
  p = parse({"--listen", "10.0.0.1:1", "--data", "d", "--tls-cert", "c", "--tls-key", "k"});
  ASSERT_TRUE(p.options);
}

TEST(CloudOptions, HelpAndVersionExitZero) {
  auto p = parse({"--help"});
  EXPECT_FALSE(p.options);
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_NE(p.text.find("--quota-per-minute"), std::string::npos);
  p = parse({"--version"});
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_EQ(p.text, "sluice-cloud 1.2.3\n");
}

TEST(CloudOptions, ErrorsAreOneLineExitTwo) {
  const std::vector<std::pair<std::vector<const char*>, std::string>> cases = {
      {{"--data", "d"}, "sluice-cloud: --listen HOST:PORT is required (see --help)"},
      {{"--listen", "127.0.0.1:1"}, "sluice-cloud: --data DIR is required (see --help)"},
      {{"--listen", "10.0.0.1:1", "--data", "d"},
       "sluice-cloud: --listen 10.0.0.1:1: plain HTTP is served only on a loopback address; give --tls-cert and "
       "--tls-key, or --insecure-listen to serve plain HTTP there anyway (see --help)"},
      {{"--listen", "[::1]1", "--data", "d"}, "sluice-cloud: --listen [::1]1: expected HOST:PORT or [IPv6]:PORT (see --help)"},
      {{"--listen", "::1:5", "--data", "d"}, "sluice-cloud: --listen ::1:5: expected HOST:PORT or [IPv6]:PORT (see --help)"},
      {{"--listen", "127.0.0.1:x", "--data", "d"},
       "sluice-cloud: --listen 127.0.0.1:x: the port must be a number from 0 to 65535 (see --help)"},
      {{"--listen", "127.0.0.1:1", "--data", "d", "--tls-key", "k"},
       "sluice-cloud: --tls-cert and --tls-key go together (see --help)"},
      {{"--listen", "127.0.0.1:1", "--data", "d", "--admin-key", ""}, "sluice-cloud: --admin-key: the key cannot be empty (see --help)"},
      {{"--listen", "127.0.0.1:1", "--data", "d", "--read-timeout", "0"},
       "sluice-cloud: --read-timeout 0: accepted 1 to 3600 (see --help)"},
      {{"--listen", "127.0.0.1:1", "--data", "d", "--max-body-kb", "65537"},
       "sluice-cloud: --max-body-kb 65537: accepted 1 to 65536 (see --help)"},
      {{"--listen", "127.0.0.1:1", "--data", "d", "x"}, "sluice-cloud: unexpected argument 'x' (see --help)"},
  };
  for (const auto& [args, line] : cases) {
    const auto p = parse(args);
    EXPECT_FALSE(p.options);
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_EQ(p.text, line);
  }
}

TEST(CloudOptions, AnalysisOptions) {
  auto p = parse({"--listen", "127.0.0.1:1", "--data", "d"});
  ASSERT_TRUE(p.options);
  EXPECT_EQ(p.options->analysis_seconds, 10u);
  EXPECT_EQ(p.options->daily_samples, 0u);
  EXPECT_EQ(p.options->max_sample_mb, 32u);
  EXPECT_EQ(p.options->malicious_score, 70);
  EXPECT_EQ(p.options->analysis_threads, 2u);
  EXPECT_EQ(p.options->signatures, std::string(SLUICE_BUILD_DIR) + "/cloud-signatures");
  p = parse({"--listen", "127.0.0.1:1", "--data", "d", "--analysis-seconds", "0", "--daily-samples", "7",
             "--max-sample-mb", "128", "--malicious-score", "85", "--analysis-threads", "4", "--signatures", "/s"});
  ASSERT_TRUE(p.options) << p.text;
  EXPECT_EQ(p.options->analysis_seconds, 0u);
  EXPECT_EQ(p.options->daily_samples, 7u);
  EXPECT_EQ(p.options->max_sample_mb, 128u);
  EXPECT_EQ(p.options->malicious_score, 85);
  EXPECT_EQ(p.options->analysis_threads, 4u);
  EXPECT_EQ(p.options->signatures, "/s");
  for (auto [opt, value, line] : std::vector<std::tuple<const char*, const char*, std::string>>{
           {"--analysis-seconds", "86401", "--analysis-seconds 86401: accepted 0 to 86400"},
           {"--daily-samples", "0", "--daily-samples 0: accepted 1 to 1000000"},
           {"--max-sample-mb", "0", "--max-sample-mb 0: accepted 1 to 128"},
           {"--malicious-score", "101", "--malicious-score 101: accepted 1 to 100"},
           {"--analysis-threads", "0", "--analysis-threads 0: accepted 1 to 64"},
           {"--signatures", "", "--signatures DIR is required (this build has no default)"}}) {
    p = parse({"--listen", "127.0.0.1:1", "--data", "d", opt, value});
    EXPECT_FALSE(p.options);
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_EQ(p.text, "sluice-cloud: " + line + " (see --help)");
  }
}
