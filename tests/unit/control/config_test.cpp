#include "control/config.h"
#include "dataplane/eal.h"
#include "pipeline/analysis_groups.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <unistd.h>
#include <fstream>
#include <tuple>

using namespace sluice;
using control::load_config_text;
using control::Overrides;

namespace {

const char* kInline = R"(
mode: inline
ports:
  - name: outside
    device: net_af_packet0,iface=veth-a
  - name: inside
    device: 0000:03:00.1
    rx_desc: 512
pairs:
  - [outside, inside]
lcores:
  main: 0
  rx: [1]
)";

std::string error_of(const std::string& yaml, const Overrides& o = {}) {
  auto r = load_config_text(yaml, "config test.yaml", o);
  EXPECT_FALSE(r.config) << yaml;
  return r.error;
}

}  // namespace

TEST(Config, InlineConfigurationLoadsWithDefaults) {
  auto r = load_config_text(kInline, "config test.yaml", {});
  ASSERT_TRUE(r.config) << r.error;
  const auto& d = r.config->dataplane;
  EXPECT_EQ(d.mode, dataplane::Mode::inline_);
  ASSERT_EQ(d.ports.size(), 2u);
  EXPECT_EQ(d.ports[0].rx_desc, 1024);  // default
  EXPECT_EQ(d.ports[1].rx_desc, 512);
  EXPECT_TRUE(d.ports[0].promiscuous);
  ASSERT_EQ(d.pairs.size(), 1u);
  EXPECT_EQ(d.pairs[0], std::make_pair(std::size_t{0}, std::size_t{1}));
  EXPECT_EQ(d.burst, 32u);
  EXPECT_EQ(d.eal.hugepages, dataplane::Hugepages::automatic);
  EXPECT_EQ(d.flow_hash, reassembly::FlowHashMode::ip_pair);
  EXPECT_EQ(r.config->events_path, "");
}

TEST(Config, UnknownKeyNamesTheKeyAndWhatIsAccepted) {
  const std::string e = error_of("eal:\n  memroy_mb: 12\n");
  EXPECT_NE(e.find("config test.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("'eal.memroy_mb': unknown key (line 2)"), std::string::npos) << e;
  EXPECT_NE(e.find("accepted here: args, file_prefix, hugepages, memory_mb"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
}

TEST(Config, UnknownKeyInsideAPort) {
  const std::string e = error_of("mode: tap\nports:\n  - name: a\n    device: net_null0\n    speed: 10\n");
  EXPECT_NE(e.find("'ports[0].speed': unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("device, name, promiscuous, rx_desc, tx_desc"), std::string::npos) << e;
}

TEST(Config, BadValuesNameTheAcceptedValues) {
  EXPECT_NE(error_of("mode: bridge\n").find("'mode': expected one of inline, tap, replay, got 'bridge'"), std::string::npos);
  EXPECT_NE(error_of("dataplane:\n  burst: 0\n").find("'dataplane.burst': expected an integer 1..256, got '0'"), std::string::npos);
  EXPECT_NE(error_of("dataplane:\n  burst: many\n").find("got 'many'"), std::string::npos);
  EXPECT_NE(error_of("lcores:\n  rx: 1\n").find("'lcores.rx': expected a list"), std::string::npos);
  EXPECT_NE(error_of("ports: 3\n").find("'ports': expected a list of port mappings"), std::string::npos);
}

TEST(Config, BadPortDevice) {
  const std::string e = error_of("mode: tap\nports:\n  - name: a\n    device: eth0\n");
  EXPECT_NE(e.find("'ports[0].device': expected a PCI address"), std::string::npos) << e;
  EXPECT_NE(error_of("mode: tap\nports:\n  - name: a\n").find("'ports[0].device': required"), std::string::npos);
  EXPECT_NE(error_of("mode: tap\nports:\n  - name: a b\n    device: net_null0\n").find("'ports[0].name'"), std::string::npos);
  EXPECT_NE(error_of("mode: tap\nports:\n  - {name: a, device: net_null0}\n  - {name: a, device: net_null1}\n")
                .find("duplicate port name 'a'"), std::string::npos);
  EXPECT_NE(error_of("mode: tap\nports:\n  - {name: a, device: net_null0}\n  - {name: b, device: 'net_null0,size=64'}\n")
                .find("is used twice"), std::string::npos);
}

TEST(Config, PairsAreChecked) {
  const char* base = "mode: inline\nports:\n  - {name: a, device: net_ring0}\n  - {name: b, device: net_ring1}\n";
  EXPECT_NE(error_of(base).find("port 'a' is in no pair"), std::string::npos);
  EXPECT_NE(error_of(std::string(base) + "pairs: [[a, c]]\n").find("no port named 'c'; ports are: a, b"), std::string::npos);
  EXPECT_NE(error_of(std::string(base) + "pairs: [[a, a]]\n").find("cannot be paired with itself"), std::string::npos);
  EXPECT_NE(error_of("mode: tap\nports:\n  - {name: a, device: net_ring0}\n  - {name: b, device: net_ring1}\npairs: [[a, b]]\n")
                .find("only used in inline mode"), std::string::npos);
  EXPECT_NE(error_of("mode: inline\n").find("needs at least one port"), std::string::npos);
}

TEST(Config, LcoresAreChecked) {
  const char* tap = "mode: tap\nports:\n  - {name: a, device: net_null0}\n";
  EXPECT_NE(error_of(std::string(tap) + "lcores: {main: 1, rx: [1]}\n").find("'lcores.rx': lcore 1"), std::string::npos);
  EXPECT_NE(error_of(std::string(tap) + "lcores: {rx: []}\n").find("at least one RX lcore"), std::string::npos);
  EXPECT_NE(error_of(std::string(tap) + "lcores: {rx: [1], workers: [1]}\n").find("'lcores.workers'"), std::string::npos);
}

// `lcores.workers` left out is `auto`: resolved by the CPUs this process may use (dataplane::auto_workers,
// tested in eal_test.cpp); `[]` is none; anything else is a list of ids.
TEST(Config, WorkersAreAutoUnlessListed) {
  const std::string tap = "mode: tap\nports:\n  - {name: a, device: net_null0}\n";
  auto workers_of = [&](const std::string& extra) {
    auto r = load_config_text(tap + extra, "config test.yaml", {});
    EXPECT_TRUE(r.config) << r.error;
    return r.config ? r.config->dataplane.lcores.workers : std::vector<unsigned>{99};
  };
  dataplane::LcoreConfig lc{};
  lc.rx = {1};
  const auto automatic = dataplane::auto_workers(lc, {}, dataplane::usable_cpus());
  EXPECT_EQ(workers_of(""), automatic);
  EXPECT_EQ(workers_of("lcores: {workers: auto}\n"), automatic);
  EXPECT_EQ(workers_of("lcores: {workers: []}\n"), std::vector<unsigned>{});
  EXPECT_EQ(workers_of("lcores: {workers: [5, 3]}\n"), (std::vector<unsigned>{5, 3}));
  EXPECT_EQ(workers_of("lcores: {workers: auto}\neal: {args: [--lcores, '0@0,1@1']}\n"), std::vector<unsigned>{});
  auto r = load_config_text(tap + "lcores: {workers: two}\n", "config test.yaml", {});
  EXPECT_EQ(r.error, "config test.yaml: key 'lcores.workers': expected `auto` or a list of lcore ids, got 'two' (line 4)");
  // auto never takes an id already used: it starts after the highest of main and RX.
  if (dataplane::usable_cpus() >= 2) {
    EXPECT_EQ(workers_of("lcores: {main: 3, rx: [1, 2, 5]}\n"),
              dataplane::auto_workers(dataplane::LcoreConfig{3, {1, 2, 5}, {}}, {}, dataplane::usable_cpus()));
    EXPECT_EQ(workers_of("lcores: {main: 3, rx: [1, 2, 5]}\n").front(), 6u);
  }
}

TEST(Config, MbufPoolMustCoverTheRxRings) {
  const std::string e = error_of(
      "mode: tap\nports:\n  - {name: a, device: net_null0, rx_desc: 4096}\ndataplane: {mbufs: 2047}\n");
  EXPECT_NE(e.find("'dataplane.mbufs': 2047 mbufs cannot fill the RX rings"), std::string::npos) << e;
}

TEST(Config, HoldKeysHaveDefaultsAndLimits) {
  using dataplane::HoldAction;
  auto hold_of = [](const std::string& extra) {
    auto r = load_config_text(std::string(kInline) + extra, "config test.yaml", {});
    EXPECT_TRUE(r.config) << r.error;
    const auto& h = r.config ? r.config->dataplane.hold : dataplane::HoldConfig{};
    return std::tuple(h.limits.max_frames, h.limits.max_frames_per_message, h.limits.fallback, h.limits.on_deadline,
                      h.max_hold_ms);
  };
  EXPECT_EQ(hold_of(""), std::tuple(512u, 16u, HoldAction::forward, HoldAction::forward, 60000u));
  EXPECT_EQ(hold_of("hold: {max_frames: 64, max_frames_per_message: 4, fallback: drop, on_deadline: drop, "
                    "max_hold_ms: 5000}\n"),
            std::tuple(64u, 4u, HoldAction::drop, HoldAction::drop, 5000u));

  EXPECT_NE(error_of(std::string(kInline) + "hold: {max_hold_ms: 600000}\n").find("'hold.max_hold_ms'"), std::string::npos);
  EXPECT_NE(error_of(std::string(kInline) + "hold: {fallback: pass}\n").find("forward, drop"), std::string::npos);
  const std::string e = error_of(std::string(kInline) + "hold: {max_frames: 8, max_frames_per_message: 9}\n");
  EXPECT_NE(e.find("'hold.max_frames_per_message': must be at most hold.max_frames (8)"), std::string::npos) << e;
}

TEST(Config, EnforceKeys) {
  auto enforce_of = [](const std::string& yaml) {
    auto r = load_config_text(yaml, "config test.yaml", {});
    EXPECT_TRUE(r.config) << r.error;
    return r.config ? r.config->dataplane.enforce : dataplane::EnforceConfig{};
  };
  // Inline enforces; its defaults.
  const auto d = enforce_of(kInline);
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.max_hold_us, 60'000'000);
  EXPECT_EQ(d.on_deadline, records::Action::pass);
  EXPECT_EQ(d.reject_reply, "550 5.7.1 Message rejected: {reason} (reference {reference})");
  EXPECT_EQ(d.defer_reply, "451 4.7.1 Message deferred: {reason}, try again later (reference {reference})");
  EXPECT_EQ((std::pair{d.max_flows, d.aftermath_ms}), (std::pair{4096u, 60000u}));
  // Tap does not; the hold-path debug mode neither (nothing decides its holds).
  EXPECT_FALSE(enforce_of("mode: tap\nports:\n  - {name: a, device: net_null0}\n").enabled);
  EXPECT_FALSE(enforce_of(std::string(kInline) + "hold: {debug_hold_every_message: true}\n").enabled);
  const auto e = enforce_of(std::string(kInline) +
                            "hold: {on_deadline: reject}\nenforce: {reject_reply: '554 5.7.0 no ({reference})', "
                            "max_connections: 10, aftermath_s: 5}\n");
  EXPECT_EQ(e.on_deadline, records::Action::reject);
  EXPECT_EQ(e.reject_reply, "554 5.7.0 no ({reference})");
  EXPECT_EQ((std::pair{e.max_flows, e.aftermath_ms}), (std::pair{10u, 5000u}));
  EXPECT_EQ(enforce_of(std::string(kInline) + "hold: {on_deadline: defer}\n").on_deadline, records::Action::defer);

  std::string err = error_of(std::string(kInline) + "enforce: {reject_reply: '451 4.7.1 later'}\n");
  EXPECT_NE(err.find("'enforce.reject_reply': must start with a 5xx reply code"), std::string::npos) << err;
  err = error_of(std::string(kInline) + "enforce: {defer_reply: '550 no'}\n");
  EXPECT_NE(err.find("'enforce.defer_reply': must start with a 4xx reply code"), std::string::npos) << err;
  err = error_of(std::string(kInline) + "enforce: {defer_reply: \"451 a\\r\\nb\"}\n");
  EXPECT_NE(err.find("printable ASCII only"), std::string::npos) << err;
  // The hold must outlast what a verdict may take.
  err = error_of(std::string(kInline) +
                 "reputation: {endpoints: [{name: c, kind: sluice, url: 'http://127.0.0.1:1'}], budget_ms: 5000}\n"
                 "hold: {max_hold_ms: 5000}\n");
  EXPECT_NE(err.find("'hold.max_hold_ms': 5000 ms is not longer than a verdict may take (6000 ms"), std::string::npos)
      << err;
}

TEST(Config, ArchiveDictionaryBound) {
  auto bound_of = [](const std::string& extra) {
    auto r = load_config_text(std::string(kInline) + extra, "config test.yaml", {});
    EXPECT_TRUE(r.config) << r.error;
    return r.config ? r.config->dataplane.workers.limits.archive.max_decoder_bytes : 0;
  };
  EXPECT_EQ(bound_of(""), 128ull << 20);
  EXPECT_EQ(bound_of("archives: {max_dictionary_mb: 64}\n"), 64ull << 20);
  EXPECT_EQ(bound_of("archives: {max_dictionary_mb: 4096}\n"), 4096ull << 20);
  const std::string e = error_of(std::string(kInline) + "archives: {max_dictionary_mb: 0}\n");
  EXPECT_NE(e.find("'archives.max_dictionary_mb'"), std::string::npos) << e;
  EXPECT_NE(e.find("1..4096"), std::string::npos) << e;
}

// Held frames keep their mbufs where frames go on: 1024 + 512 RX descriptors, 2 x (256 + 32) in
// caches and bursts, and 512 held frames need 2624 mbufs; 64 held frames, 2176.
TEST(Config, MbufPoolMustCoverHeldFramesInline) {
  const std::string e = error_of(std::string(kInline) + "dataplane: {mbufs: 2200}\n");
  EXPECT_NE(e.find("'dataplane.mbufs': 2200 mbufs cannot fill the RX rings of this configuration: at least 2624 are "
                   "needed (or lower ports[].rx_desc, hold.max_frames)"),
            std::string::npos)
      << e;
  auto r = load_config_text(std::string(kInline) + "dataplane: {mbufs: 2200}\nhold: {max_frames: 64}\n", "t", {});
  EXPECT_TRUE(r.config) << r.error;
}

TEST(Config, ReplayFromTheCommandLine) {
  const std::string pcap = ::testing::TempDir() + "/in.pcap";
  std::ofstream(pcap) << "x";
  Overrides o;
  o.replay_input = pcap;
  o.replay_output = ::testing::TempDir() + "/out.pcap";
  o.events_path = "-";
  auto r = control::load_config("", o);
  ASSERT_TRUE(r.config) << r.error;
  const auto& d = r.config->dataplane;
  EXPECT_EQ(d.mode, dataplane::Mode::replay);
  ASSERT_EQ(d.ports.size(), 1u);
  EXPECT_EQ(d.ports[0].device, "net_pcap0,rx_pcap=" + pcap + ",tx_pcap=" + *o.replay_output);
  ASSERT_EQ(d.pairs.size(), 1u);  // frames leave by the port they came in on, into the output pcap
  EXPECT_EQ(r.config->events_path, "-");
}

TEST(Config, ReplayWithoutOutputForwardsNothing) {
  const std::string pcap = ::testing::TempDir() + "/in2.pcap";
  std::ofstream(pcap) << "x";
  Overrides o;
  o.replay_input = pcap;
  auto r = control::load_config("", o);
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.config->dataplane.pairs.empty());
}

TEST(Config, MissingPcapIsReported) {
  Overrides o;
  o.replay_input = "/nonexistent/in.pcap";
  auto r = control::load_config("", o);
  ASSERT_FALSE(r.config);
  EXPECT_EQ(r.error, "command line: key 'replay.input': cannot read '/nonexistent/in.pcap': No such file or directory");
}

TEST(Config, ReplayModeRejectsPorts) {
  const std::string pcap = ::testing::TempDir() + "/in3.pcap";
  std::ofstream(pcap) << "x";
  Overrides o;
  o.replay_input = pcap;
  EXPECT_NE(error_of("ports:\n  - {name: a, device: net_null0}\n", o).find("leave ports empty"), std::string::npos);
}

TEST(Config, InvalidYaml) {
  EXPECT_NE(error_of("mode: [inline\n").find("invalid YAML"), std::string::npos);
  auto r = control::load_config("/nonexistent.yaml", {});
  EXPECT_NE(r.error.find("config /nonexistent.yaml: cannot open"), std::string::npos);
}

TEST(Config, ADuplicatedKeyNamesTheKeyAndBothLines) {
  // Two sections of the same name: yaml-cpp keeps both, and one would be silently ignored.
  std::string e = error_of("mode: tap\nreassembly:\n  max_flows: 2048\nevents: {ring_kb: 64}\nreassembly:\n  max_sessions: 32\n");
  EXPECT_EQ(e, "config test.yaml: key 'reassembly': given twice (lines 2 and 5)");
  // A key twice inside a section, in block and in flow style.
  e = error_of("reassembly:\n  max_flows: 2048\n  idle_timeout_s: 5\n  max_flows: 4096\n");
  EXPECT_EQ(e, "config test.yaml: key 'reassembly.max_flows': given twice (lines 2 and 4)");
  e = error_of("stats: {interval_s: 1, interval_s: 2}\n");
  EXPECT_EQ(e, "config test.yaml: key 'stats.interval_s': given twice on line 1");
  // Inside a member of ports[], and at the top level.
  e = error_of("mode: tap\nports:\n  - name: a\n    device: net_null0\n  - name: b\n    device: net_null1\n    name: c\n");
  EXPECT_EQ(e, "config test.yaml: key 'ports[1].name': given twice (lines 5 and 7)");
  e = error_of("mode: tap\nmode: inline\n");
  EXPECT_EQ(e, "config test.yaml: key 'mode': given twice (lines 1 and 2)");
  // Unknown sections are walked too: the duplicate is reported before the unknown key.
  e = error_of("extra:\n  a: 1\n  a: 2\n");
  EXPECT_EQ(e, "config test.yaml: key 'extra.a': given twice (lines 2 and 3)");
  // The same name in different mappings is no duplicate.
  auto r = load_config_text("mode: tap\nports:\n  - {name: a, device: net_null0}\n  - {name: b, device: net_null1}\n"
                            "reassembly: {max_flows: 2048}\nhold: {max_frames: 64}\n", "config test.yaml", {});
  EXPECT_TRUE(r.config) << r.error;
}

TEST(Config, ReferenceListsEveryKeyWithItsDefault) {
  const std::string ref = control::config_reference_markdown();
  EXPECT_NE(ref.find("| `dataplane.burst` | integer 1..256 | `32` |"), std::string::npos);
  EXPECT_NE(ref.find("| `ports[].device` | string | required |"), std::string::npos);
  EXPECT_NE(ref.find("| `mode` | inline | tap | replay | `inline` |"), std::string::npos);
}

TEST(Config, StateDirDefaultsByMode) {
  auto inline_ = load_config_text(kInline, "config test.yaml", {});
  ASSERT_TRUE(inline_.config) << inline_.error;
  EXPECT_EQ(inline_.config->state_dir, "/var/lib/sluice");

  auto configured = load_config_text(std::string(kInline) + "state:\n  dir: /srv/sluice\n", "config test.yaml", {});
  ASSERT_TRUE(configured.config) << configured.error;
  EXPECT_EQ(configured.config->state_dir, "/srv/sluice");

  const std::string pcap = ::testing::TempDir() + "/in4.pcap";
  std::ofstream(pcap) << "x";
  Overrides o;
  o.replay_input = pcap;
  auto replay = control::load_config("", o);
  ASSERT_TRUE(replay.config) << replay.error;
  EXPECT_EQ(replay.config->state_dir, "");  // nothing persists, no lock
  auto replay_configured = load_config_text("state: {dir: /tmp/replay-state}\n", "config test.yaml", o);
  ASSERT_TRUE(replay_configured.config) << replay_configured.error;
  EXPECT_EQ(replay_configured.config->state_dir, "/tmp/replay-state");

  EXPECT_NE(error_of("state:\n  dir: [a]\n").find("'state.dir': expected a string, got a list (line 2)"), std::string::npos);
}

namespace {

// A configuration file the reload tests rewrite.
class ConfigReload : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/reload-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml";
  }
  void TearDown() override { std::remove(path_.c_str()); }

  void write(const std::string& yaml) { std::ofstream(path_, std::ios::trunc) << yaml; }
  control::Config start(const std::string& yaml, const Overrides& o = {}) {
    write(yaml);
    auto r = control::load_config(path_, o);
    EXPECT_TRUE(r.config) << r.error;
    return r.config ? *r.config : control::Config{};
  }
  control::ReloadResult reload(const control::Config& running, const std::string& yaml, const Overrides& o = {}) {
    write(yaml);
    return control::reload_config(running, path_, o);
  }
  std::string refused(const std::string& key) {
    return "config " + path_ + ": key '" + key + "' cannot change at run time (restart sluiced to apply it)";
  }

  std::string path_;
};

const std::string kTap = "mode: tap\nports:\n  - {name: a, device: net_null0}\n  - {name: b, device: net_null1, rx_desc: 512}\n";

}  // namespace

TEST_F(ConfigReload, AppliesReloadableKeysAndListsThem) {
  const auto running = start(kTap + "stats:\n  interval_s: 10\n");
  const std::string events = ::testing::TempDir() + "/reload-events.json";
  auto r = reload(running, kTap + "stats:\n  interval_s: 60\nevents:\n  path: " + events + "\n");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->stats_interval_s, 60u);
  EXPECT_EQ(r.config->events_path, events);
  EXPECT_EQ(r.changed, (std::vector<std::string>{"events.path", "stats.interval_s"}));

  auto same = reload(*r.config, kTap + "events: {path: " + events + "}\nstats: {interval_s: 60}\n");
  ASSERT_TRUE(same.config) << same.error;
  EXPECT_TRUE(same.changed.empty());
}

TEST_F(ConfigReload, ABadFileGivesTheStartUpError) {
  const auto running = start(kTap);
  auto r = reload(running, kTap + "stats:\n  interval_s: soon\n");
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.error, control::load_config(path_, {}).error);
  EXPECT_EQ(r.error, "config " + path_ + ": key 'stats.interval_s': expected an integer 0..86400, got 'soon' (line 6)");

  std::remove(path_.c_str());
  EXPECT_EQ(control::reload_config(running, path_, {}).error, "config " + path_ + ": cannot open: No such file or directory");
}

TEST_F(ConfigReload, RefusesAKeyThatCannotChangeAtRunTime) {
  const auto running = start(kTap);
  auto r = reload(running, kTap + "reassembly:\n  max_flows: 131072\nstats:\n  interval_s: 5\n");
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.error, refused("reassembly.max_flows"));
  EXPECT_TRUE(r.changed.empty());

  auto two = reload(running, kTap + "reassembly: {max_flows: 131072}\nlcores: {rx: [2]}\n");
  EXPECT_EQ(two.error, "config " + path_ + ": keys 'lcores.rx', 'reassembly.max_flows' cannot change at run time "
                       "(restart sluiced to apply them)");

  // lcores.workers: `auto` (the default) is compared as given, not as resolved, so a change to what
  // it derives from names only that key; `auto` written out is no change, `[]` is one.
  EXPECT_EQ(reload(running, kTap + "lcores: {rx: [3]}\n").error, refused("lcores.rx"));
  EXPECT_EQ(reload(running, kTap + "lcores: {workers: []}\n").error, refused("lcores.workers"));
  auto written = reload(running, kTap + "lcores: {workers: auto}\n");
  ASSERT_TRUE(written.config) << written.error;
  EXPECT_TRUE(written.changed.empty());

  // The same value written another way, or a default written out, is no change.
  auto spelled = reload(running, "mode: 'tap'" + kTap.substr(kTap.find('\n')) + "reassembly: {max_flows: 065536}\nlcores: {rx: [1]}\n");
  ASSERT_TRUE(spelled.config) << spelled.error;
  EXPECT_TRUE(spelled.changed.empty());
}

TEST_F(ConfigReload, ComparesListsAndMappings) {
  const auto running = start(kTap + "smtp:\n  ports: [25, 587]\n");
  EXPECT_EQ(reload(running, kTap + "smtp:\n  ports: [25]\n").error, refused("smtp.ports"));
  EXPECT_EQ(reload(running, kTap + "smtp:\n  ports: [587, 25]\n").error, refused("smtp.ports"));
  EXPECT_EQ(reload(running, kTap).error, refused("smtp.ports"));  // back to the default [25, 587, 2525]
  auto block = reload(running, kTap + "smtp:\n  ports:\n    - 25\n    - 587\n");
  EXPECT_TRUE(block.config) << block.error;

  const std::string smtp = "smtp:\n  ports: [25, 587]\n";
  EXPECT_EQ(reload(running, "mode: tap\nports:\n  - {name: a, device: net_null0}\n  - {name: b, device: net_null1}\n" + smtp).error,
            refused("ports"));  // rx_desc 512 -> default 1024
  EXPECT_EQ(reload(running, "mode: tap\nports:\n  - {name: b, device: net_null1, rx_desc: 512}\n  - {name: a, device: net_null0}\n" + smtp).error,
            refused("ports"));  // order is port index
  auto spelled = reload(running, "mode: tap\nports:\n  - device: net_null0\n    name: a\n    promiscuous: true\n"
                                 "  - {rx_desc: 512, name: b, device: net_null1, tx_desc: 1024}\n" + smtp);
  ASSERT_TRUE(spelled.config) << spelled.error;  // member order and defaults written out change nothing
  EXPECT_TRUE(spelled.changed.empty());

  const char* pairs = "mode: inline\nports:\n  - {name: a, device: net_ring0}\n  - {name: b, device: net_ring1}\n";
  const auto inline_ = start(std::string(pairs) + "pairs: [[a, b]]\n");
  EXPECT_EQ(reload(inline_, std::string(pairs) + "pairs: [[b, a]]\n").error, refused("pairs"));
  EXPECT_TRUE(reload(inline_, std::string(pairs) + "pairs:\n  - [a, b]\n").config);
}

TEST_F(ConfigReload, CommandLineOverridesStillWin) {
  Overrides o;
  o.events_path = "-";
  const auto running = start(kTap + "events: {path: " + ::testing::TempDir() + "/a.json}\n", o);
  EXPECT_EQ(running.events_path, "-");
  auto r = reload(running, kTap + "events: {path: " + ::testing::TempDir() + "/b.json}\nstats: {interval_s: 30}\n", o);
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->events_path, "-");
  EXPECT_EQ(r.changed, std::vector<std::string>{"stats.interval_s"});

  // Without the override the file's value is a change.
  auto without = reload(running, kTap + "events: {path: " + ::testing::TempDir() + "/b.json}\n");
  ASSERT_TRUE(without.config) << without.error;
  EXPECT_EQ(without.changed, std::vector<std::string>{"events.path"});
}

TEST(Config, ReloadableKeysAreListedAndMarkedInTheReference) {
  EXPECT_EQ(control::reloadable_keys(),
            (std::vector<std::string>{"events.path", "stats.interval_s", "actions.clean", "actions.malicious", "actions.pending", "actions.smuggling",
                                      "actions.unscannable.encrypted", "actions.unscannable.extraction_failed",
                                      "actions.unscannable.limit_exceeded", "actions.unscannable.overload",
                                      "actions.lookup_error.service_unavailable", "actions.lookup_error.rate_limited",
                                      "actions.lookup_error.budget_exhausted", "actions.lookup_error.queue_full"}));
  const std::string ref = control::config_reference_markdown();
  for (const auto& key : control::reloadable_keys()) {
    const auto row = ref.find("| `" + key + "` |");
    ASSERT_NE(row, std::string::npos) << key;
    EXPECT_NE(ref.substr(row, ref.find('\n', row) - row).find("Reloadable"), std::string::npos) << key;
  }
  const auto flows = ref.find("| `reassembly.max_flows` |");
  EXPECT_EQ(ref.substr(flows, ref.find('\n', flows) - flows).find("Reloadable"), std::string::npos);
}

// ---- reputation (issue 11) ----

TEST(Config, ReputationEndpointsAndTheirDefaults) {
  auto r = load_config_text(std::string(kInline) + R"(
reputation:
  endpoints:
    - {name: lab, kind: sluice, url: "http://127.0.0.1:8440", api_key: K}
    - name: vt
      kind: virustotal
      url: https://www.virustotal.com
      api_key: VT
      vt_malicious_threshold: 5
  budget_ms: 1500
  cache: {max_entries: 1000, ttl_clean_s: 60, persist: true}
state: {dir: /tmp/sluice-config-test}
)", "config test.yaml", {});
  ASSERT_TRUE(r.config) << r.error;
  const auto& rep = r.config->reputation;
  ASSERT_EQ(rep.endpoints.size(), 2u);
  EXPECT_EQ(rep.endpoints[0].name, "lab");
  EXPECT_EQ(rep.endpoints[0].api_key, "K");
  EXPECT_EQ(rep.endpoints[0].request_timeout_ms, control::EndpointConfig{}.request_timeout_ms);
  EXPECT_EQ(rep.endpoints[1].kind, "virustotal");
  EXPECT_EQ(rep.endpoints[1].vt_malicious_threshold, 5u);
  EXPECT_EQ(rep.limits.budget_ms, 1500u);
  EXPECT_EQ(rep.limits.ttl_clean_s, 60u);
  EXPECT_EQ(rep.cache_entries, 1000u);
  EXPECT_EQ(rep.cache_path, "/tmp/sluice-config-test/verdict-cache.sqlite");
  EXPECT_TRUE(r.config->dataplane.verdicts.lookups);
  EXPECT_EQ(r.config->dataplane.verdicts.deadline_ms, 2500u);
  // Without endpoints: no look-ups; without a state directory (replay): the cache is not kept.
  auto none = load_config_text(kInline, "config test.yaml", {});
  ASSERT_TRUE(none.config) << none.error;
  EXPECT_FALSE(none.config->dataplane.verdicts.lookups);
  EXPECT_EQ(none.config->reputation.cache_path, "/var/lib/sluice/verdict-cache.sqlite");
  auto off = load_config_text(std::string(kInline) + "reputation: {cache: {persist: false}}\n", "config test.yaml", {});
  ASSERT_TRUE(off.config) << off.error;
  EXPECT_EQ(off.config->reputation.cache_path, "");
}

TEST(Config, BadEndpointsAreNamed) {
  auto with = [](const std::string& endpoints) {
    return error_of(std::string(kInline) + "reputation:\n  endpoints:\n" + endpoints);
  };
  EXPECT_NE(with("    - {kind: sluice, url: 'http://127.0.0.1:1'}\n").find("'reputation.endpoints[0].name': required"),
            std::string::npos);
  EXPECT_NE(with("    - {name: a, url: 'http://127.0.0.1:1'}\n    - {name: a, url: 'http://127.0.0.1:2'}\n")
                .find("'reputation.endpoints[1].name': duplicate endpoint name 'a'"),
            std::string::npos);
  EXPECT_NE(with("    - {name: a, kind: misp, url: 'http://127.0.0.1:1'}\n").find("expected one of sluice, virustotal"),
            std::string::npos);
  EXPECT_NE(with("    - {name: a, url: 'http://127.0.0.1:1', colour: red}\n").find("'reputation.endpoints[0].colour': unknown key"),
            std::string::npos);
  EXPECT_NE(with("    - {name: a, url: 'ftp://127.0.0.1'}\n").find("'reputation.endpoints[0]'"), std::string::npos);
  EXPECT_NE(error_of(std::string(kInline) + "reputation: {endpoints: 3}\n").find("expected a list of endpoint mappings"),
            std::string::npos);
}

TEST(Config, AnalysisKeysAndWhatTheyNeed) {
  const std::string rep = "reputation:\n  endpoints:\n    - {name: lab, url: 'http://127.0.0.1:8440'}\n";
  auto r = load_config_text(std::string(kInline) + rep + R"(
state: {dir: /tmp/sluice-config-test}
analysis:
  endpoints:
    - {name: lab, kind: sluice, url: 'http://127.0.0.1:8440', max_sample_mb: 8}
    - {name: cape, kind: cape, url: 'https://cape.lab', api_key: T}
  poll_interval_s: 5
  groups: [pdf, web]
  sample_memory_mb: 2
quarantine: {spool_mb: 4, overflow: refuse}
actions: {pending: reject}
)", "config test.yaml", {});
  ASSERT_TRUE(r.config) << r.error;
  const auto& a = r.config->analysis;
  ASSERT_EQ(a.endpoints.size(), 2u);
  EXPECT_EQ(a.endpoints[0].max_sample_mb, 8u);
  EXPECT_EQ(a.endpoints[1].kind, "cape");
  EXPECT_EQ(a.settings.poll_interval_s, 5u);
  EXPECT_EQ(a.settings.max_age_h, 12u);         // the default
  EXPECT_EQ(a.settings.malicious_score, 70);
  EXPECT_EQ(a.submissions_path, "/tmp/sluice-config-test/submissions.sqlite");
  EXPECT_EQ(a.quarantine_dir, "/tmp/sluice-config-test/quarantine");
  EXPECT_EQ(a.quarantine.overflow, control::QuarantineOverflow::refuse);
  const auto& d = r.config->dataplane;
  EXPECT_TRUE(d.verdicts.analysis);
  EXPECT_EQ(d.verdicts.spool_blocks, 64u);       // 4 MiB of 64 KiB blocks
  EXPECT_EQ(d.workers.sample_blocks, 32u);
  EXPECT_EQ(d.workers.limits.analysis_groups, (1u << static_cast<unsigned>(pipeline::AnalysisGroup::pdf)) |
                                                  (1u << static_cast<unsigned>(pipeline::AnalysisGroup::web)));
  EXPECT_EQ(d.verdicts.policy.pending, records::Action::reject);
  // Without analysis endpoints nothing is kept.
  auto none = load_config_text(std::string(kInline) + rep, "config test.yaml", {});
  ASSERT_TRUE(none.config) << none.error;
  EXPECT_FALSE(none.config->dataplane.verdicts.analysis);
  EXPECT_EQ(none.config->dataplane.workers.sample_blocks, 0u);
  EXPECT_EQ(none.config->dataplane.verdicts.spool_blocks, 0u);

  const std::string ep = "analysis:\n  endpoints:\n    - {name: s, url: 'http://127.0.0.1:8440'}\n";
  EXPECT_NE(error_of(std::string(kInline) + ep).find("configure reputation.endpoints too"), std::string::npos);
  EXPECT_NE(error_of(std::string(kInline) + rep + ep + "  groups: [images]\n").find("no analysis group 'images'"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kInline) + rep + ep + "  poll_interval_s: 0\n").find("1..3600"), std::string::npos);
  EXPECT_NE(error_of(std::string(kInline) + rep + "analysis:\n  endpoints:\n    - {name: c, kind: cape, url: 'https://c'}\n")
                .find("'analysis.endpoints[0]'"),
            std::string::npos);  // cape needs an api_key
  EXPECT_NE(error_of(std::string(kInline) + rep + ep + "  sample_memory_mb: 600\n").find("over the total of 512 MiB"),
            std::string::npos);
}

TEST(Config, ActionsAreParsedAndReloadable) {
  auto r = load_config_text(std::string(kInline) + R"(
actions:
  malicious: defer
  unscannable: {encrypted: reject}
  lookup_error: {service_unavailable: monitor}
)", "config test.yaml", {});
  ASSERT_TRUE(r.config) << r.error;
  const auto& p = r.config->dataplane.verdicts.policy;
  EXPECT_EQ(p.clean, records::Action::pass);
  EXPECT_EQ(p.malicious, records::Action::defer);
  EXPECT_EQ(p.unscannable[static_cast<unsigned>(pipeline::Unscannable::encrypted)], records::Action::reject);
  EXPECT_EQ(p.unscannable[static_cast<unsigned>(pipeline::Unscannable::overload)], records::Action::pass);
  EXPECT_EQ(p.lookup_error[static_cast<unsigned>(records::LookupError::service_unavailable)], records::Action::monitor);
  EXPECT_NE(error_of(std::string(kInline) + "actions: {malicious: drop}\n").find("expected one of pass, monitor, defer, reject"),
            std::string::npos);
}

TEST(Config, TheManagementApiNeedsAGoodTokenFileAndACertificateToKeep) {
  const std::string tap = "mode: tap\nports:\n  - name: a\n    device: net_null0\nstate: {dir: /tmp/sluice-config-test}\n";
  EXPECT_NE(error_of(tap + "management: {listen: 'localhost'}\n").find("'management.listen'"), std::string::npos);
  EXPECT_NE(error_of(tap + "management: {listen: '127.0.0.1:8443'}\n").find("needs a token file"), std::string::npos);
  char tmpl[] = "/tmp/config_test_tokens.XXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  const std::string tokens = tmpl;
  ::write(fd, "root sha256:x\n", 14);
  ::close(fd);  // mkstemp makes it 0600
  const std::string e = error_of(tap + "management: {listen: '127.0.0.1:8443', token_file: " + tokens + "}\n");
  EXPECT_NE(e.find("'management.token_file'"), std::string::npos) << e;
  EXPECT_NE(e.find("line 1: role 'root' is not admin or read"), std::string::npos) << e;
  std::ofstream(tokens) << "read sha256:" << std::string(64, 'a') << "\n";
  const std::string ok = tap + "management: {listen: '127.0.0.1:8443', token_file: " + tokens + "}\n";
  auto r = load_config_text(ok, "config test.yaml", {});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->management.listen, "127.0.0.1:8443");
  EXPECT_EQ(r.config->management.rate_per_s, 50u);
  EXPECT_NE(error_of(ok.substr(0, ok.size() - 2) + ", cert_file: /x.pem}\n").find("or neither"), std::string::npos);
  // A replay keeps nothing: a certificate must be given.
  EXPECT_NE(error_of("management: {listen: '127.0.0.1:8443', token_file: " + tokens + "}\n", [] {
              Overrides o;
              o.replay_input = "/dev/null";
              return o;
            }()).find("a state.dir to keep"),
            std::string::npos);
  std::remove(tokens.c_str());
}
