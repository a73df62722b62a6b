// control/event_render: every record type rendered to the exact line the README documents.
#include "control/event_render.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "pipeline/archive.h"
#include "pipeline/file_type.h"
#include "pipeline/mime_parser.h"
#include "reassembly/smtp_session.h"

namespace sluice::control {
namespace {

using namespace sluice::records;

FlowIdentity v4_flow() {
  FlowIdentity f;
  f.flow_id = 281474976710657ull;
  f.ip_version = 4;
  const uint8_t c[4] = {198, 51, 100, 1}, s[4] = {192, 0, 2, 25};
  std::memcpy(f.client_ip, c, 4);
  std::memcpy(f.server_ip, s, 4);
  f.client_port = 40000;
  f.server_port = 25;
  return f;
}

constexpr int64_t kTime = 1700000000036000;  // 2023-11-14T22:13:20.036000Z
const char* kHead =
    R"({"timestamp":"2023-11-14T22:13:20.036000Z","event_type":"%s","flow_id":281474976710657,"src_ip":"198.51.100.1",)"
    R"("src_port":40000,"dest_ip":"192.0.2.25","dest_port":25,"proto":"TCP",)";

std::string head(const char* type) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), kHead, type);
  return buf;
}

void fill(uint8_t (&d)[32], uint8_t v) { std::memset(d, v, 32); }
const std::string kAA(64, 'a'), kBB(64, 'b'), kCC(64, 'c');

TEST(EventRenderTest, Rfc3339AndHex) {
  char ts[40];
  format_rfc3339(kTime, ts);
  EXPECT_STREQ(ts, "2023-11-14T22:13:20.036000Z");
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00.000000Z");
  const uint8_t b[3] = {0x00, 0xab, 0xff};
  char hex[7];
  hex_lower(b, 3, hex);
  EXPECT_STREQ(hex, "00abff");
}

TEST(EventRenderTest, Message) {
  MessageRecord m;
  m.timestamp_us = kTime;
  m.flow = v4_flow();
  m.transaction = 2;
  m.helo.set("client.example.org");
  m.mail_from.set("a@example.org");
  const char rcpts[] = "x@example.net\0y\"q@example.net";
  std::memcpy(m.rcpts, rcpts, sizeof(rcpts));
  m.rcpt_bytes = sizeof(rcpts);
  m.rcpt_kept = 2;
  m.rcpt_count = 70000;  // more than 2 KiB held: the count is exact
  m.bdat = true;
  fill(m.sha256, 0xaa);
  m.size = 27961;
  m.has_subject = true;
  m.subject.set("Invoice \xff");  // invalid UTF-8 becomes U+FFFD
  m.summary = {true, 3, (1u << static_cast<unsigned>(pipeline::MimeAnomaly::missing_mime_version)) |
                            (1u << static_cast<unsigned>(pipeline::MimeAnomaly::bare_lf))};
  m.server_reply = 250;
  EventRenderer r;
  EXPECT_EQ(std::string(r.message(m)),
            head("smtp") + R"("transaction":2,"smtp":{"helo":"client.example.org","mail_from":"a@example.org",)"
                           R"("rcpt_to":["x@example.net","y\"q@example.net"],"rcpt_count":70000,"method":"BDAT",)"
                           R"("starttls":false,"message_sha256":")" + kAA + R"(","message_size":27961,)"
                           R"("subject":"Invoice )" "\xef\xbf\xbd" R"(","attachments":3,)"
                           R"("mime_anomalies":["missing_mime_version","bare_lf"],"server_reply":250,"status":"complete"}})");
  // No reply, incomplete, no pipeline, no subject; rendered through render() as the ring hands it.
  m.rcpt_count = 2;
  m.bdat = false;
  m.has_subject = false;
  m.has_message_id = true;
  m.message_id.set("<id@x>");
  m.summary = {};
  m.server_reply = 0;
  m.complete = false;
  m.incomplete_reason = IncompleteReason::memcap;
  EXPECT_EQ(std::string(r.render(&m, sizeof(m))),
            head("smtp") + R"("transaction":2,"smtp":{"helo":"client.example.org","mail_from":"a@example.org",)"
                           R"("rcpt_to":["x@example.net","y\"q@example.net"],"method":"DATA",)"
                           R"("starttls":false,"message_sha256":")" + kAA + R"(","message_size":27961,)"
                           R"("message_id":"<id@x>","server_reply":null,"status":"incomplete","incomplete_reason":"memcap"}})");
  m.incomplete_reason = IncompleteReason::shutdown;  // sluiced stopped before the end of data
  EXPECT_NE(std::string(r.message(m)).find(R"("status":"incomplete","incomplete_reason":"shutdown"}})"), std::string::npos);
}

TEST(EventRenderTest, FileAndMember) {
  FileRecord f;
  f.timestamp_us = kTime;
  f.flow = v4_flow();
  f.transaction = 0;
  f.filename.set_keep_end(std::string(2000, 'n') + ".exe");
  f.filename_alt.set("b.pdf");
  f.content_type.set("application/pdf");
  f.disposition.set("attachment");
  f.encoding = static_cast<uint8_t>(pipeline::TransferEncoding::base64);
  f.size = 10;
  f.hashed = true;
  fill(f.sha256, 0xbb);
  f.has_message_sha256 = true;
  fill(f.message_sha256, 0xaa);
  f.mime_path.set("2");
  f.file_type = static_cast<uint8_t>(pipeline::FileType::zip);
  f.mismatch = pipeline::kMismatchExtension | pipeline::kMismatchContentType;
  f.members = 1;
  f.unscannable = static_cast<uint8_t>(pipeline::Unscannable::encrypted);
  f.unscannable_detail.set("zip: encrypted entry");
  EventRenderer r;
  const std::string name = std::string(1024 - 64 - 3, 'n') + "\xe2\x80\xa6" + std::string(60, 'n') + ".exe";
  EXPECT_EQ(std::string(r.render(&f, sizeof(f))),
            head("file") + R"("transaction":0,"file":{"filename":")" + name + R"(","filename_alt":"b.pdf",)"
                           R"("content_type":"application/pdf","disposition":"attachment","encoding":"base64","size":10,)"
                           R"("sha256":")" + kBB + R"(","message_sha256":")" + kAA + R"(","mime_path":"2",)"
                           R"("status":"complete","file_type":"zip","type_mismatch":["extension","content_type"],)"
                           R"("members":1,"unscannable":"encrypted","unscannable_detail":"zip: encrypted entry"}})");

  MemberRecord m;
  m.timestamp_us = kTime;
  m.flow = v4_flow();
  m.filename.set("dir/a.txt");
  m.size = 5;
  m.hashed = true;
  fill(m.sha256, 0xcc);
  fill(m.parent_sha256, 0xbb);
  m.depth = 1;
  m.mime_path.set("2");
  m.archive_filename.set("x.zip");
  m.file_type = static_cast<uint8_t>(pipeline::FileType::text);
  EXPECT_EQ(std::string(r.render(&m, sizeof(m))),
            head("file") + R"("transaction":0,"file":{"filename":"dir/a.txt","size":5,"sha256":")" + kCC +
                R"(","parent_sha256":")" + kBB + R"(","depth":1,"mime_path":"2","archive_filename":"x.zip",)"
                R"("file_type":"text"}})");
}

TEST(EventRenderTest, FlowAndAnomaly) {
  FlowRecord f;
  f.timestamp_us = kTime;
  f.flow = v4_flow();
  f.flow.ip_version = 6;
  std::memset(f.flow.client_ip, 0, 16);
  f.flow.client_ip[0] = 0x20, f.flow.client_ip[1] = 0x01, f.flow.client_ip[2] = 0x0d, f.flow.client_ip[3] = 0xb8;
  f.flow.client_ip[15] = 1;
  std::memcpy(f.flow.server_ip, f.flow.client_ip, 16);
  f.flow.server_ip[15] = 2;
  f.app = AppProto::smtp;
  f.packets[0] = 10, f.packets[1] = 8, f.bytes[0] = 1000, f.bytes[1] = 800;
  f.start_us = kTime - 1000000, f.end_us = kTime;
  f.reason = FlowEndReason::end_of_input;
  f.inspected = true;
  f.messages = 5000000000;  // counts are 64-bit: none wraps
  f.tcp[0] = {900, 1, 2, 3, 4, 5, 6};
  f.smtp_anomalies[static_cast<unsigned>(reassembly::SmtpAnomaly::bare_lf)] = 70000;
  EventRenderer r;
  const std::string head6 =
      R"({"timestamp":"2023-11-14T22:13:20.036000Z","event_type":"flow","flow_id":281474976710657,"src_ip":"2001:db8::1",)"
      R"("src_port":40000,"dest_ip":"2001:db8::2","dest_port":25,"proto":"TCP",)";
  EXPECT_EQ(std::string(r.render(&f, sizeof(f))),
            head6 + R"("app_proto":"smtp","flow":{"pkts_toserver":10,"pkts_toclient":8,"bytes_toserver":1000,)"
                    R"("bytes_toclient":800,"start":"2023-11-14T22:13:19.036000Z","end":"2023-11-14T22:13:20.036000Z",)"
                    R"("reason":"end_of_input","inspected":true,"starttls":false,"messages":5000000000,"tcp":{"toserver":)"
                    R"({"bytes":900,"retransmitted_bytes":1,"out_of_order_segments":2,"overlap_conflicts":3,"gaps":4,)"
                    R"("gap_bytes":5,"memcap_flushes":6},"toclient":{"bytes":0,"retransmitted_bytes":0,)"
                    R"("out_of_order_segments":0,"overlap_conflicts":0,"gaps":0,"gap_bytes":0,"memcap_flushes":0}},)"
                    R"("smtp_anomalies":{"bare_lf":70000}}})");
  f.reason = FlowEndReason::shutdown;  // open when sluiced stopped
  EXPECT_NE(std::string(r.render(&f, sizeof(f))).find(R"("reason":"shutdown",)"), std::string::npos);
  // Implicit TLS, not inspected.
  FlowRecord t;
  t.timestamp_us = kTime;
  t.flow = v4_flow();
  t.app = AppProto::smtps;
  t.start_us = t.end_us = kTime;
  t.reason = FlowEndReason::rst;
  EXPECT_EQ(std::string(r.flow(t)),
            head("flow") + R"("app_proto":"smtps","flow":{"pkts_toserver":0,"pkts_toclient":0,"bytes_toserver":0,)"
                           R"("bytes_toclient":0,"start":"2023-11-14T22:13:20.036000Z","end":"2023-11-14T22:13:20.036000Z",)"
                           R"("reason":"rst","inspected":false,"encrypted":true}})");

  AnomalyRecord a;
  a.timestamp_us = kTime;
  a.flow = v4_flow();
  a.layer = AnomalyLayer::tcp;
  a.code = 0;
  a.direction = 1;
  EXPECT_EQ(std::string(r.render(&a, sizeof(a))),
            head("anomaly") + R"("anomaly":{"layer":"tcp","type":"overlap_conflict","direction":"toclient"}})");
  a.layer = AnomalyLayer::flow;
  a.code = static_cast<uint8_t>(FlowAnomaly::session_pool_full);
  a.direction = -1;
  EXPECT_EQ(std::string(r.anomaly(a)), head("anomaly") + R"("anomaly":{"layer":"flow","type":"session_pool_full"}})");
}

TEST(EventRenderTest, BadRecordsAreNotRendered) {
  EventRenderer r;
  AnomalyRecord a;
  EXPECT_TRUE(r.render(&a, sizeof(a) - 1).empty());  // wrong size for its type
  uint8_t junk[64] = {0x7f};
  EXPECT_TRUE(r.render(junk, sizeof(junk)).empty());  // unknown type
  EXPECT_TRUE(r.render(junk, 0).empty());
}

TEST(EventRenderTest, ControlEventHasTheSameHeader) {
  EventRenderer r;
  const FlowIdentity f = v4_flow();
  EXPECT_EQ(r.control_event("alert", Json{{"type", "x"}, {"severity", "high"}}, kTime, &f),
            head("alert") + R"("alert":{"type":"x","severity":"high"}})");
  EXPECT_EQ(r.control_event("stats", Json{{"n", 1}}, kTime),
            R"({"timestamp":"2023-11-14T22:13:20.036000Z","event_type":"stats","stats":{"n":1}})");
}

TEST(EventRenderTest, OverlongLineIsCutAndMarked) {
  MessageRecord m;
  m.timestamp_us = kTime;
  m.flow = v4_flow();
  // 2 KiB of control characters, each escaped to 6 bytes, plus two 998-byte values of the same.
  std::memset(m.rcpts, 1, sizeof(m.rcpts) - 1);
  m.rcpts[sizeof(m.rcpts) - 1] = 0;
  m.rcpt_bytes = sizeof(m.rcpts);
  m.rcpt_kept = m.rcpt_count = 1;
  m.has_subject = m.has_message_id = true;
  m.subject.set(std::string(998, '\x01'));
  m.message_id.set(std::string(998, '\x01'));
  EventRenderer r;
  const std::string line(r.message(m));
  const auto j = nlohmann::json::parse(line);  // still one valid object
  EXPECT_EQ(j["truncated"], true);
  EXPECT_LE(line.size(), 16u * 1024);
}

}  // namespace
}  // namespace sluice::control

#include "control/alert.h"

namespace sluice::control {
namespace {

TEST(AlertTest, RenderedAsAnAlertEvent) {
  EventRenderer r;
  Alert a{"events_lost", Severity::warning, "3 event records lost", std::nullopt, ""};
  EXPECT_EQ(r.control_event("alert", alert_body(a), kTime),
            R"({"timestamp":"2023-11-14T22:13:20.036000Z","event_type":"alert","alert":{"type":"events_lost",)"
            R"("severity":"warning","message":"3 event records lost"}})");
  Alert b{"endpoint_down", Severity::critical, "no answer", std::nullopt, "cloud-eu"};
  const FlowIdentity f = v4_flow();
  EXPECT_EQ(r.control_event("alert", alert_body(b), kTime, &f),
            head("alert") + R"("alert":{"type":"endpoint_down","severity":"critical","message":"no answer",)"
                            R"("endpoint":"cloud-eu"}})");
}

}  // namespace
}  // namespace sluice::control
