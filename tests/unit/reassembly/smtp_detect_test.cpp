// SMTP by content (issue 17): the judges and the probe (reassembly/smtp_detect), and the
// reassembler with `detect_content` (flows off the SMTP ports taken for SMTP from their greeting or
// EHLO, the session the same as on an SMTP port; HTTP and TLS bypassed; no session slot while
// judged; `ports` mode leaves them alone).
#include "reassembly/smtp_detect.h"

#include "control/event_render.h"
#include "reassembly/flow_table.h"
#include "reassembly/reassembler.h"
#include "tests/fuzz/tcp_frames.h"
#include "tests/unit/reassembly/test_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace sluice::reassembly;

namespace {

Detection greeting(std::string_view s) { return judge_greeting(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
Detection helo(std::string_view s) { return judge_helo(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

TEST(SmtpDetect, Greeting) {
  EXPECT_EQ(greeting("220 mx.example.org ESMTP Postfix\r\n"), Detection::smtp);
  EXPECT_EQ(greeting("220-mx.example.org first line\r\n220 second\r\n"), Detection::smtp);
  EXPECT_EQ(greeting("220 mx\n"), Detection::smtp);  // a bare LF ends a line too
  EXPECT_EQ(greeting("220 mx\tESMTP\r\n"), Detection::smtp);
  EXPECT_EQ(greeting(""), Detection::undecided);
  EXPECT_EQ(greeting("2"), Detection::undecided);
  EXPECT_EQ(greeting("220"), Detection::undecided);
  EXPECT_EQ(greeting("220 mx.example.org ESM"), Detection::undecided);
  EXPECT_EQ(greeting("220 mx\r"), Detection::undecided);  // LF next, maybe
  EXPECT_EQ(greeting("221 bye\r\n"), Detection::not_smtp);
  EXPECT_EQ(greeting("554 no service\r\n"), Detection::not_smtp);
  EXPECT_EQ(greeting("2200 x\r\n"), Detection::not_smtp);
  EXPECT_EQ(greeting("220\r\n"), Detection::not_smtp);
  EXPECT_EQ(greeting("220 a\x01" "b\r\n"), Detection::not_smtp);
  EXPECT_EQ(greeting("220 a\rb\r\n"), Detection::not_smtp);
  EXPECT_EQ(greeting("HTTP/1.1 200 OK\r\n"), Detection::not_smtp);
  EXPECT_EQ(greeting("\x16\x03\x01\x02\x00"), Detection::not_smtp);
  // The line end must come within 512 octets: the judge stays undecided, the probe gives up.
  EXPECT_EQ(greeting("220 " + std::string(600, 'x') + "\r\n"), Detection::undecided);
  EXPECT_EQ(greeting("220 " + std::string(400, 'x') + "\r\n"), Detection::smtp);
}

TEST(SmtpDetect, Helo) {
  EXPECT_EQ(helo("EHLO client.example.org\r\n"), Detection::smtp);
  EXPECT_EQ(helo("HELO client\r\n"), Detection::smtp);
  EXPECT_EQ(helo("eHlO client\n"), Detection::smtp);
  EXPECT_EQ(helo("helo c\r\nMAIL FROM:<a@x>\r\n"), Detection::smtp);
  EXPECT_EQ(helo("E"), Detection::undecided);
  EXPECT_EQ(helo("EHLO"), Detection::undecided);
  EXPECT_EQ(helo("EHLO client"), Detection::undecided);
  EXPECT_EQ(helo("EHLOX\r\n"), Detection::not_smtp);
  EXPECT_EQ(helo("EHLO\r\n"), Detection::not_smtp);
  EXPECT_EQ(helo("ELHO c\r\n"), Detection::not_smtp);
  EXPECT_EQ(helo("HEAD / HTTP/1.1\r\n"), Detection::not_smtp);
  EXPECT_EQ(helo("GET / HTTP/1.1\r\n"), Detection::not_smtp);
  EXPECT_EQ(helo("MAIL FROM:<a@x>\r\n"), Detection::not_smtp);
  EXPECT_EQ(helo("\x16\x03\x01"), Detection::not_smtp);
  EXPECT_EQ(helo(std::string("EHLO c\0\r\n", 9)), Detection::not_smtp);
}

struct Probe {
  SmtpProbe p;
  Probe() { p.reset(); }
  ProbeVerdict add(int dir, uint32_t seq, std::string_view s, bool roles_known = true) {
    return p.add(dir, seq, reinterpret_cast<const uint8_t*>(s.data()), s.size(), roles_known);
  }
};

TEST(SmtpDetect, ProbeGreetingSplitAcrossSegments) {
  Probe pr;
  EXPECT_EQ(pr.add(1, 5000, "22"), ProbeVerdict::pending);
  EXPECT_EQ(pr.add(1, 5002, "0 mx ESMTP\r"), ProbeVerdict::pending);
  EXPECT_EQ(pr.add(1, 5013, "\n"), ProbeVerdict::smtp);
  EXPECT_EQ(pr.p.server_dir, 1);
  // Replayed into the session: what came before the deciding segment, which takes the usual path.
  EXPECT_EQ(pr.p.replay_len(1), 13);
  EXPECT_EQ(pr.p.replay_len(0), 0);
  EXPECT_EQ(pr.p.seq[1], 5000u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(pr.p.data[1]), 13), "220 mx ESMTP\r");
}

TEST(SmtpDetect, ProbeRetransmissionAddsOnlyNewBytes) {
  Probe pr;
  EXPECT_EQ(pr.add(0, 100, "EHL"), ProbeVerdict::pending);
  EXPECT_EQ(pr.add(0, 100, "EHLO c"), ProbeVerdict::pending);  // a retransmission with more
  EXPECT_EQ(pr.p.len[0], 6);
  EXPECT_EQ(pr.add(0, 106, "\r\n"), ProbeVerdict::smtp);
  EXPECT_EQ(pr.p.replay_len(0), 6);
}

TEST(SmtpDetect, ProbeNotSmtpAtOnce) {
  Probe http, tls, bin, reply;
  EXPECT_EQ(http.add(0, 1, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"), ProbeVerdict::not_smtp);
  EXPECT_EQ(tls.add(0, 1, std::string_view("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11)), ProbeVerdict::not_smtp);
  EXPECT_EQ(bin.add(1, 1, std::string_view("\x00\x01\x02\x03", 4), false), ProbeVerdict::not_smtp);
  // With the handshake seen, a greeting from the client's side is not SMTP.
  EXPECT_EQ(reply.add(0, 1, "220 mx\r\n"), ProbeVerdict::not_smtp);
}

TEST(SmtpDetect, ProbeWithoutHandshakeFindsTheServer) {
  Probe ehlo, greet;
  // Roles unknown: the side taken for the server (1) sent EHLO: it is the client.
  EXPECT_EQ(ehlo.add(1, 7, "EHLO c\r\n", false), ProbeVerdict::smtp);
  EXPECT_EQ(ehlo.p.server_dir, 0);
  EXPECT_EQ(greet.add(0, 7, "220 mx\r\n", false), ProbeVerdict::smtp);
  EXPECT_EQ(greet.p.server_dir, 0);
}

TEST(SmtpDetect, ProbeGivesUp) {
  Probe hole, packets, line;
  EXPECT_EQ(hole.add(1, 10, "22"), ProbeVerdict::pending);
  EXPECT_EQ(hole.add(1, 20, "0 mx\r\n"), ProbeVerdict::gave_up);  // bytes 12..19 missing
  EXPECT_EQ(packets.add(1, 0, "220 "), ProbeVerdict::pending);
  for (uint32_t i = 1; i < kDetectPackets - 1; ++i) EXPECT_EQ(packets.add(1, 3 + i, "x"), ProbeVerdict::pending);
  EXPECT_EQ(packets.add(1, 3 + kDetectPackets - 1, "x"), ProbeVerdict::gave_up);
  EXPECT_EQ(line.add(1, 0, "220 " + std::string(300, 'x')), ProbeVerdict::pending);
  EXPECT_EQ(line.add(1, 304, std::string(300, 'x')), ProbeVerdict::gave_up);  // no line end in 512
}

TEST(SmtpDetect, ProbePoolTakesBackInOrder) {
  ProbePool pool(2);
  Flow a{}, b{}, c{};
  SmtpProbe* pa = pool.take(&a);
  SmtpProbe* pb = pool.take(&b);
  ASSERT_TRUE(pa && pb);
  EXPECT_EQ(pool.take(&c), nullptr);
  EXPECT_EQ(pool.oldest(), pa);
  pool.release(pa);
  EXPECT_EQ(pool.oldest(), pb);
  SmtpProbe* pc = pool.take(&c);
  EXPECT_EQ(pc, pa);  // the slot comes back
  EXPECT_EQ(pc->owner, &c);
  EXPECT_EQ(pool.in_use(), 2u);
  pool.release(pb);
  EXPECT_EQ(pool.oldest(), pc);
}

// ---------------------------------------------------------------------------------------------
// Through the reassembler

struct Collect final : sluice::records::RecordSink {
  std::vector<std::string> lines;
  sluice::control::EventRenderer renderer;
  void emit(const void* record, std::size_t size) noexcept override { lines.emplace_back(renderer.render(record, size)); }
  std::vector<nlohmann::json> of(const std::string& type) const {
    std::vector<nlohmann::json> v;
    for (const std::string& line : lines) {
      auto j = nlohmann::json::parse(line);
      if (j.value("event_type", "") == type) v.push_back(std::move(j));
    }
    return v;
  }
};

ReassemblyConfig config(bool content) {
  ReassemblyConfig c = test::small_config(64);
  c.implicit_tls_ports = {465};
  c.detect_content = content;
  return c;
}

// One TCP connection 10.0.0.H:CPORT -> 10.0.1.1:SPORT over Ethernet/IPv4, both directions in order.
// Frames the reassembler does not want are counted, not given to it.
class Tcp {
 public:
  Tcp(Reassembler& r, uint16_t server_port, uint16_t client_port = 40000, uint8_t host = 1)
      : r_(r), flow_{4, host, client_port, server_port, {1000, 90000}} {}
  void client(uint8_t flags, std::string_view payload = {}) { send(true, flags, payload); }
  void server(uint8_t flags, std::string_view payload = {}) { send(false, flags, payload); }
  void handshake() {
    client(tcp_flags::syn);
    server(tcp_flags::syn | tcp_flags::ack);
    client(tcp_flags::ack);
  }
  void client_data(std::string_view s) { client(tcp_flags::ack | tcp_flags::psh, s); }
  void server_data(std::string_view s) { server(tcp_flags::ack | tcp_flags::psh, s); }
  unsigned unwanted = 0;
  int64_t now = 1000000;

 private:
  void send(bool to_server, uint8_t flags, std::string_view payload) {
    const int dir = to_server ? 0 : 1;
    const uint32_t seq = flow_.next[dir];
    const auto f = sluice::fuzz::tcp_frame(flow_, to_server, seq, flow_.next[1 - dir], flags,
                                           reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    sluice::fuzz::advance(flow_, dir, seq, payload.size(), flags);
    PacketInfo info;
    ASSERT_EQ(decode_packet(f.data(), f.size(), info), DecodeStatus::ok);
    if (!r_.wants(info)) {
      ++unwanted;
      return;
    }
    r_.on_packet(info, f.data(), now += 1000);
  }

  Reassembler& r_;
  sluice::fuzz::FlowState flow_;
};

constexpr std::string_view kMessage =
    "From: a@x\r\nTo: b@y\r\nSubject: off port\r\n\r\nhello on another port\r\n";

// A whole session after the handshake: greeting (or not), EHLO, one message, QUIT, FINs.
void mail(Tcp& t, bool greeting = true) {
  if (greeting) t.server_data("220 mx.example.org ESMTP\r\n");
  t.client_data("EHLO client.example.org\r\n");
  t.server_data("250-mx.example.org\r\n250 PIPELINING\r\n");
  t.client_data("MAIL FROM:<a@x>\r\n");
  t.server_data("250 ok\r\n");
  t.client_data("RCPT TO:<b@y>\r\n");
  t.server_data("250 ok\r\n");
  t.client_data("DATA\r\n");
  t.server_data("354 go\r\n");
  t.client_data(std::string(kMessage) + ".\r\n");
  t.server_data("250 queued\r\n");
  t.client_data("QUIT\r\n");
  t.server_data("221 bye\r\n");
  t.client(tcp_flags::ack | tcp_flags::fin);
  t.server(tcp_flags::ack | tcp_flags::fin);
  t.client(tcp_flags::ack);
}

// The events without what may differ between a detected session and the same on an SMTP port.
nlohmann::json comparable(nlohmann::json e) {
  e.erase("flow_id");
  e.erase("dest_port");
  if (e.contains("smtp")) e["smtp"].erase("detected");
  if (e.contains("flow")) e["flow"].erase("detected");
  return e;
}

TEST(DetectReassembler, GreetingOnAnotherPortMakesTheSessionOfAnSmtpPort) {
  Collect detected_out, port_out;
  Reassembler detected(config(true), detected_out, 0);
  ReassemblyConfig pc = config(false);
  pc.smtp_ports = {25, 2526};
  Reassembler on_port(pc, port_out, 0);
  for (Reassembler* r : {&detected, &on_port}) {
    Tcp t(*r, 2526);
    t.handshake();
    mail(t);
    EXPECT_EQ(t.unwanted, 0u);
  }
  const auto smtp = detected_out.of("smtp"), flows = detected_out.of("flow");
  ASSERT_EQ(smtp.size(), 1u);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(smtp[0]["smtp"]["detected"], "content");
  EXPECT_EQ(smtp[0]["dest_port"], 2526);
  EXPECT_EQ(smtp[0]["src_port"], 40000);
  EXPECT_EQ(smtp[0]["smtp"]["status"], "complete");
  EXPECT_EQ(smtp[0]["smtp"]["helo"], "client.example.org");
  EXPECT_EQ(smtp[0]["smtp"]["message_size"], kMessage.size());
  EXPECT_EQ(flows[0]["flow"]["detected"], "content");
  EXPECT_EQ(flows[0]["app_proto"], "smtp");
  EXPECT_EQ(flows[0]["flow"]["inspected"], true);
  // The same events as on an SMTP port, to the TCP counters.
  ASSERT_EQ(port_out.of("smtp").size(), 1u);
  EXPECT_FALSE(port_out.of("smtp")[0]["smtp"].contains("detected"));
  EXPECT_EQ(comparable(smtp[0]), comparable(port_out.of("smtp")[0]));
  EXPECT_EQ(comparable(flows[0]), comparable(port_out.of("flow")[0]));
  const ReassemblyStats& st = detected.stats();
  EXPECT_EQ(st.detect_probed, 1u);
  EXPECT_EQ(st.detect_smtp, 1u);
  EXPECT_EQ(st.detect_not_smtp + st.detect_undecided + st.detect_evicted, 0u);
}

TEST(DetectReassembler, EhloWhenTheGreetingWasMissed) {
  // Picked up mid-stream: no handshake, no greeting; the first frame seen is the client's EHLO
  // (taken at first for the server's: the EHLO says who the client is).
  Collect out;
  Reassembler r(config(true), out, 0);
  Tcp t(r, 8080, 41000, 2);
  mail(t, false);
  const auto smtp = out.of("smtp");
  ASSERT_EQ(smtp.size(), 1u);
  EXPECT_EQ(smtp[0]["src_ip"], "10.0.0.2");
  EXPECT_EQ(smtp[0]["src_port"], 41000);
  EXPECT_EQ(smtp[0]["dest_port"], 8080);
  EXPECT_EQ(smtp[0]["smtp"]["detected"], "content");
  EXPECT_EQ(smtp[0]["smtp"]["mail_from"], "a@x");
  EXPECT_EQ(smtp[0]["smtp"]["message_size"], kMessage.size());
  EXPECT_EQ(smtp[0]["smtp"]["server_reply"], 250);
  const auto flows = out.of("flow");
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["flow"]["pkts_toserver"], 7);  // EHLO ... QUIT, FIN (reported at the second FIN)
  EXPECT_EQ(r.stats().detect_smtp, 1u);
}

TEST(DetectReassembler, EhloAfterALostGreeting) {
  // The handshake was seen, the greeting was not: the client's EHLO decides.
  Collect out;
  Reassembler r(config(true), out, 0);
  Tcp t(r, 2526);
  t.handshake();
  t.server(tcp_flags::ack);  // (a greeting the capture lost would leave a gap; none here)
  mail(t, false);
  ASSERT_EQ(out.of("smtp").size(), 1u);
  EXPECT_EQ(out.of("smtp")[0]["smtp"]["detected"], "content");
  EXPECT_EQ(out.of("smtp")[0]["smtp"]["message_size"], kMessage.size());
}

TEST(DetectReassembler, GreetingSplitAcrossSegments) {
  Collect out;
  Reassembler r(config(true), out, 0);
  Tcp t(r, 2526);
  t.handshake();
  t.server_data("22");
  t.server_data("0 mx.example.org ES");
  t.server_data("MTP\r\n");
  mail(t, false);
  const auto smtp = out.of("smtp");
  ASSERT_EQ(smtp.size(), 1u);
  EXPECT_EQ(smtp[0]["smtp"]["status"], "complete");
  EXPECT_EQ(smtp[0]["smtp"]["message_size"], kMessage.size());
  const auto flows = out.of("flow");
  ASSERT_EQ(flows.size(), 1u);
  // Every server byte reached the session once: replayed, not counted as retransmitted.
  EXPECT_EQ(flows[0]["flow"]["tcp"]["toclient"]["retransmitted_bytes"], 0);
  EXPECT_EQ(flows[0]["flow"]["tcp"]["toclient"]["gaps"], 0);
  EXPECT_EQ(flows[0]["flow"]["tcp"]["toserver"]["gaps"], 0);
  EXPECT_TRUE(out.of("anomaly").empty());
}

TEST(DetectReassembler, HttpAndTlsAreNotSmtp) {
  Collect out;
  Reassembler r(config(true), out, 0);
  Tcp http(r, 80, 40001), tls(r, 443, 40002), http_alt(r, 2526, 40003);
  for (Tcp* t : {&http, &tls, &http_alt}) t->handshake();
  http.client_data("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n");
  http.server_data("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  tls.client_data(std::string("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 10));
  tls.server_data(std::string("\x16\x03\x03\x00\x02\x02\x00", 7));
  // HTTP whose body says EHLO and 220: only the first bytes count.
  http_alt.client_data("POST /x HTTP/1.1\r\nContent-Length: 14\r\n\r\n");
  http_alt.client_data("EHLO c\r\n220 x\r\n");
  http_alt.server_data("220 mx ESMTP\r\n");
  for (Tcp* t : {&http, &tls, &http_alt}) {
    t->client(tcp_flags::ack | tcp_flags::fin);
    t->server(tcp_flags::ack | tcp_flags::fin);
  }
  r.flush_all(10'000'000);
  EXPECT_TRUE(out.lines.empty()) << out.lines.front();
  const ReassemblyStats& st = r.stats();
  EXPECT_EQ(st.detect_probed, 3u);
  EXPECT_EQ(st.detect_not_smtp, 3u);
  EXPECT_EQ(st.detect_smtp, 0u);
  EXPECT_EQ(st.sessions_active, 0u);
}

TEST(DetectReassembler, PortsModeLeavesOtherPortsAlone) {
  Collect out;
  Reassembler r(config(false), out, 0);
  Tcp t(r, 2526);
  t.handshake();
  mail(t);
  EXPECT_EQ(t.unwanted, 19u);  // every frame
  EXPECT_TRUE(out.lines.empty());
  EXPECT_EQ(r.stats().detect_probed, 0u);
  EXPECT_EQ(r.stats().flows_created, 0u);
}

TEST(DetectReassembler, ImplicitTlsPortsAreNotProbed) {
  Collect out;
  Reassembler r(config(true), out, 0);
  Tcp t(r, 465);
  t.handshake();
  t.server_data("220 mx ESMTP\r\n");  // (not what port 465 carries; never judged there)
  t.client(tcp_flags::ack | tcp_flags::fin);
  t.server(tcp_flags::ack | tcp_flags::fin);
  EXPECT_EQ(r.stats().detect_probed, 0u);
  r.flush_all(10'000'000);  // (a flow without a session is reported at its closed timeout)
  const auto flows = out.of("flow");
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["app_proto"], "smtps");
  EXPECT_FALSE(flows[0]["flow"].contains("detected"));
}

TEST(DetectReassembler, ProbedFlowsTakeNoSessionSlot) {
  // Four session slots; eight flows off the SMTP ports stuck half-way into a greeting hold none of
  // them: four mails on port 25 are all inspected.
  Collect out;
  Reassembler r(config(true), out, 0);
  std::vector<Tcp> stuck;
  stuck.reserve(8);
  for (uint16_t i = 0; i < 8; ++i) stuck.emplace_back(r, 2526, static_cast<uint16_t>(42000 + i), 3);
  for (Tcp& t : stuck) {
    t.handshake();
    t.server_data("220 mx");
  }
  EXPECT_EQ(r.stats().sessions_active, 0u);
  for (uint16_t i = 0; i < 4; ++i) {
    Tcp t(r, 25, static_cast<uint16_t>(43000 + i), 4);
    t.handshake();
    t.server_data("220 mx ESMTP\r\n");
    t.client_data("EHLO c\r\n");
  }
  EXPECT_EQ(r.stats().sessions_active, 4u);
  EXPECT_EQ(r.stats().sessions_pool_full, 0u);
  // Probe slots are max_sessions too: the four oldest stuck probes gave way to the newer ones.
  EXPECT_EQ(r.stats().detect_probed, 8u);
  EXPECT_EQ(r.stats().detect_evicted, 4u);
  // The flows still being judged end undecided, unreported.
  r.flush_all(100'000'000);
  EXPECT_EQ(r.stats().detect_undecided, 4u);
  for (const auto& f : out.of("flow")) EXPECT_EQ(f["dest_port"], 25);
}

TEST(DetectReassembler, BypassedFlowCostsOneLookup) {
  Collect out;
  Reassembler r(config(true), out, 0);
  Tcp t(r, 8000);
  t.handshake();
  t.client_data("GET / HTTP/1.1\r\n\r\n");
  for (int i = 0; i < 100; ++i) t.server_data("220 not a greeting here\r\n");
  EXPECT_EQ(r.stats().detect_probed, 1u);
  EXPECT_EQ(r.stats().detect_not_smtp, 1u);
  EXPECT_EQ(r.stats().flows_created, 1u);
  EXPECT_TRUE(out.lines.empty());
}

}  // namespace
