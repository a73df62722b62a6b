// control/notifier: the RFC 5424 line and the email of an alert, byte for byte; the address parser;
// a UDP syslog collector and an HTTP webhook receiver on loopback sockets of this process.
#include "control/notifier.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <openssl/evp.h>

#include <future>
#include <istream>
#include <thread>

namespace sluice::control {
namespace {

constexpr int64_t kTime = 1'796'000'000'123'456;  // 2026-11-30T00:53:20.123456Z

Alert retro_alert() {
  Alert a{"retrospective_verdict", Severity::critical, "file 'x.exe' is now malicious", std::nullopt, "lab"};
  a.details = {{"sha256", "ab"}, {"new", "malicious"}, {"messages", 2}, {"odd", "a\"b]c\\"}, {"list", {1, 2}}};
  return a;
}

TEST(Notifier, TheSyslogLineIsRfc5424WithStructuredDataEscaped) {
  const std::string line = syslog_line(retro_alert(), 16, "gw 1", kTime, 4242);
  // PRI 16*8+2; version 1; the time; the host without its space; APP-NAME; PROCID; MSGID; SD; BOM; MSG.
  EXPECT_EQ(line,
            "<130>1 2026-11-30T00:53:20.123456Z gw1 sluiced 4242 retrospective_verdict [sluice@32473 "
            "severity=\"critical\" endpoint=\"lab\" sha256=\"ab\" new=\"malicious\" messages=\"2\" "
            "odd=\"a\\\"b\\]c\\\\\"] \xEF\xBB\xBF" "file 'x.exe' is now malicious");
  Alert info{"endpoint_recovered", Severity::info, "back", std::nullopt, ""};
  EXPECT_EQ(syslog_line(info, 23, "", kTime, 1),
            "<190>1 2026-11-30T00:53:20.123456Z - sluiced 1 endpoint_recovered [sluice@32473 severity=\"info\"] "
            "\xEF\xBB\xBF" "back");
}

TEST(Notifier, TheEmailIsPlainUtf8TextInBase64) {
  Alert a = retro_alert();
  a.message = "Datei 'Rechnung.exe' ist bösartig";
  const std::string m = alert_email(a, "sluice@gw", {"soc@example.net", "cert@example.net"}, "gw", kTime);
  EXPECT_NE(m.find("Date: Mon, 30 Nov 2026 00:53:20 +0000\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("From: sluice@gw\r\nTo: soc@example.net, cert@example.net\r\n"), std::string::npos);
  EXPECT_NE(m.find("Subject: [Sluice gw] critical: retrospective_verdict: a file is now malicious\r\n (ab...)\r\n"),
            std::string::npos) << m;
  EXPECT_NE(m.find("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"),
            std::string::npos);
  const std::size_t body = m.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  std::string b64;
  for (std::size_t i = body + 4; i < m.size(); ++i)
    if (m[i] != '\r' && m[i] != '\n') b64 += m[i];
  std::string text(b64.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  ASSERT_GT(n, 0);
  EXPECT_EQ(text.rfind("Datei 'Rechnung.exe' ist bösartig\r\n", 0), 0u) << text;
  EXPECT_NE(text.find("\"sha256\": \"ab\""), std::string::npos);
  // No line of the message is longer than 78 octets (RFC 5322 2.1.1).
  std::size_t start = 0;
  for (std::size_t at; (at = m.find("\r\n", start)) != std::string::npos; start = at + 2) EXPECT_LE(at - start, 78u);
  // A subject that is not ASCII is an RFC 2047 encoded word.
  Alert u{"x", Severity::critical, "m", std::nullopt, ""};
  const std::string e = alert_email(u, "a@b", {"c@d"}, "gw-ö-" + std::string(60, 'x'), kTime);
  EXPECT_NE(e.find("Subject: =?UTF-8?B?"), std::string::npos) << e;
  // Invalid UTF-8 (a run of continuation octets) still ends, in words of whole octets.
  const std::string bad = alert_email(u, "a@b", {"c@d"}, std::string(100, '\x80'), kTime);
  for (const std::string* mail : {&e, &bad}) {
    const std::size_t end = mail->find("\r\n\r\n");
    std::size_t from = 0;
    for (std::size_t at; (at = mail->find("\r\n", from)) != std::string::npos && at <= end; from = at + 2)
      EXPECT_LE(at - from, 78u) << mail->substr(from, at - from);
  }
}

TEST(Notifier, AddressesAreHostColonPort) {
  std::string h, p;
  EXPECT_TRUE(split_host_port("127.0.0.1:514", h, p));
  EXPECT_EQ(h + "|" + p, "127.0.0.1|514");
  EXPECT_TRUE(split_host_port("[::1]:6514", h, p));
  EXPECT_EQ(h + "|" + p, "::1|6514");
  EXPECT_TRUE(split_host_port("syslog.example.net:514", h, p));
  for (const char* bad : {"", "host", ":514", "host:", "host:x", "[::1]514", "host:123456"})
    EXPECT_FALSE(split_host_port(bad, h, p)) << bad;
}

TEST(Notifier, SeveritiesFilterEachChannelAndUdpSyslogDelivers) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  ServiceLoop loop(1, 8);
  NotifyConfig c;
  c.syslog_address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  c.syslog_min_severity = "warning";
  Notifier n(loop, c, "gw");
  EXPECT_EQ(n.start(), "");
  n.send({"below", Severity::info, "not sent", std::nullopt, ""}, "{}");
  n.send({"above", Severity::warning, "sent", std::nullopt, ""}, "{}");
  std::thread t([&] { loop.run(); });
  char buf[2048];
  const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
  ASSERT_GT(got, 0);
  const std::string line(buf, static_cast<std::size_t>(got));
  EXPECT_NE(line.find(" above [sluice@32473 severity=\"warning\"] "), std::string::npos) << line;
  EXPECT_EQ(line.rfind("<132>1 ", 0), 0u);  // local0.warning
  EXPECT_LT(::recv(fd, buf, sizeof buf, MSG_DONTWAIT), 0);  // the info alert never came
  loop.post([&] {
    EXPECT_TRUE(n.idle());
    EXPECT_EQ(n.stats()["syslog"]["sent"], 1);
    loop.stop();
  });
  t.join();
  ::close(fd);
}

// A TCP collector that is not there yet: the alerts wait (the oldest waiting dropped beyond the
// bound, never the one being sent), the connection is retried with back-off, and once the collector
// listens they arrive in order, framed by octet counting.
TEST(Notifier, TcpSyslogRetriesUntilTheCollectorListensAndKeepsTheOrder) {
  namespace net = boost::asio;
  net::io_context io;
  net::ip::tcp::acceptor probe(io, net::ip::tcp::endpoint(net::ip::address_v4::loopback(), 0));
  const unsigned short port = probe.local_endpoint().port();
  probe.close();  // the port is free: connections are refused until the collector below binds it

  ServiceLoop loop(1, 8);
  NotifyConfig c;
  c.syslog_address = "127.0.0.1:" + std::to_string(port);
  c.syslog_tcp = true;
  c.syslog_max_queued = 2;
  Notifier n(loop, c, "gw");
  ASSERT_EQ(n.start(), "");
  for (int i = 0; i < 4; ++i) n.send({"t" + std::to_string(i), Severity::warning, "m", std::nullopt, ""}, "{}");
  std::thread t([&] { loop.run(); });

  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a refused attempt or two
  net::ip::tcp::acceptor collector(io, net::ip::tcp::endpoint(net::ip::address_v4::loopback(), port));
  net::ip::tcp::socket s(io);
  collector.accept(s);
  std::vector<std::string> got;
  net::streambuf buf;
  while (got.size() < 3) {
    net::read_until(s, buf, ' ');
    std::istream in(&buf);
    std::size_t len = 0;
    in >> len;
    in.get();  // the space
    if (buf.size() < len) net::read(s, buf, net::transfer_exactly(len - buf.size()));
    std::string line(len, '\0');
    in.read(line.data(), static_cast<std::streamsize>(len));
    const auto at = line.find(" t");
    got.push_back(line.substr(at + 1, 2));
  }
  // t0 was being sent when t3 came: t1 (the oldest waiting) was dropped.
  EXPECT_EQ(got, (std::vector<std::string>{"t0", "t2", "t3"}));
  // The collector can read t3 before the service loop has run its write's completion, which counts
  // it sent: ask until it has (or 5 s went by).
  Json st;
  for (int tries = 0; tries < 500; ++tries) {
    std::promise<Json> stats;
    loop.post([&] { stats.set_value(n.stats()["syslog"]); });
    st = stats.get_future().get();
    if (st["sent"] == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  loop.post([&] { loop.stop(); });
  t.join();
  EXPECT_EQ(st["sent"], 3);
  EXPECT_EQ(st["dropped"], 1);
  EXPECT_GE(st["retries"].get<int>(), 1);
  EXPECT_EQ(st["failed"], 0);
}

}  // namespace
}  // namespace sluice::control
