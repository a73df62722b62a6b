// Real services on loopback for the endpoint client tests: sluice-cloud (the binary built with the
// tests), the VirusTotal and CAPEv2 test doubles (tests/lib/vt_double.py, cape_double.py), TLS material made once per test
// process with the openssl CLI, and a small synchronous HTTP client for their admin APIs.
// Binaries are found through SLUICE_BUILD (as the Python tests find sluiced), else the build
// directory the tests were configured in (SLUICE_BUILD_DIR, a compile definition).
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::test {

inline std::string build_dir() {
  const char* e = std::getenv("SLUICE_BUILD");
  return e && *e ? e : SLUICE_BUILD_DIR;
}
inline std::string source_dir() { return SLUICE_SOURCE_DIR; }
inline std::string cloud_binary() { return build_dir() + "/control/cloud/sluice-cloud"; }
inline std::string vt_double_script() { return source_dir() + "/tests/lib/vt_double.py"; }
inline std::string cape_double_script() { return source_dir() + "/tests/lib/cape_double.py"; }

inline std::string temp_dir(const char* what) {
  std::string t = std::filesystem::temp_directory_path() / (std::string("sluice-") + what + "-XXXXXX");
  if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
  return t;
}

// A child process whose first standard output line is "NAME: listening on SCHEME://HOST:PORT".
class Process {
 public:
  explicit Process(std::vector<std::string> argv) : argv_(std::move(argv)) {}
  ~Process() { stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts it and waits up to 10 s for the listening line; the URL and port are read from it.
  void start() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(fds[1], 1);
      std::vector<char*> args;
      for (auto& a : argv_) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
    std::string line;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < end) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = read(out_, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    std::smatch m;
    static const std::regex listening(R"(^[a-z-]+: listening on ((https?)://[0-9.]+:([0-9]+))\n)");
    if (!std::regex_search(line, m, listening)) {
      stop();
      throw std::runtime_error("did not start: " + argv_[0] + " printed '" + line + "'");
    }
    url = m[1];
    port = static_cast<unsigned>(std::stoul(m[3]));
  }

  // SIGTERM and wait: the port refuses connections afterwards.
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
      pid_ = -1;
    }
    if (out_ >= 0) close(out_), out_ = -1;
  }

  std::vector<std::string> argv_;
  std::string url;
  unsigned port = 0;

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

struct Reply {
  unsigned status = 0;
  std::string body;
};

// One request on a new plain-HTTP connection to 127.0.0.1:port.
inline Reply http_call(unsigned port, boost::beast::http::verb method, const std::string& target,
                       const std::string& body = "", const std::string& api_key = "") {
  namespace bhttp = boost::beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  bhttp::request<bhttp::string_body> req(method, target, 11);
  req.set(bhttp::field::host, "127.0.0.1");
  if (!api_key.empty()) req.set("x-apikey", api_key);
  if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  bhttp::write(s, req);
  boost::beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buf, res);
  return Reply{res.result_int(), res.body()};
}

// A loopback port nothing listens on (bound, then closed).
inline unsigned closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  unsigned p = a.local_endpoint().port();
  a.close();
  return p;
}

inline std::string run_shell(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) throw std::runtime_error("popen failed: " + cmd);
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  if (pclose(f) != 0) throw std::runtime_error("failed: " + cmd + ": " + out);
  return out;
}

// Test PKI, made once: a CA; a server certificate it signed for 127.0.0.1 and localhost; one it
// signed for another host only; a self-signed one for 127.0.0.1 (trusted by nobody); a client
// certificate it signed. `server_pin` is curl's sha256//... of the server key, computed by the CLI.
struct TlsFiles {
  std::string dir, ca, server_cert, server_key, other_cert, other_key, self_cert, self_key, client_cert, client_key,
      server_pin;
};

// Removes its directory when the test process ends.
struct TempDir {
  std::string path;
  explicit TempDir(const char* what) : path(temp_dir(what)) {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

inline const TlsFiles& tls_files() {
  static const TempDir dir("tls");
  static const TlsFiles files = [] {
    TlsFiles t;
    t.dir = dir.path;
    auto p = [&](const char* n) { return t.dir + "/" + n; };
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    run_shell("openssl req -x509 " + ec + "-days 2 -subj /CN=sluice-test-ca -keyout " + p("ca.key") + " -out " +
              p("ca.crt") + " 2>&1");
    auto signed_cert = [&](const std::string& name, const std::string& cn, const std::string& ext) {
      std::ofstream(p((name + ".ext").c_str())) << ext << "\n";
      run_shell("openssl req " + ec + "-subj /CN=" + cn + " -keyout " + p((name + ".key").c_str()) + " -out " +
                p((name + ".csr").c_str()) + " 2>&1");
      run_shell("openssl x509 -req -days 2 -in " + p((name + ".csr").c_str()) + " -CA " + p("ca.crt") + " -CAkey " +
                p("ca.key") + " -CAcreateserial -extfile " + p((name + ".ext").c_str()) + " -out " +
                p((name + ".crt").c_str()) + " 2>&1");
    };
    signed_cert("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    signed_cert("other", "other.example", "subjectAltName=DNS:other.example");
    signed_cert("client", "sluice-appliance", "extendedKeyUsage=clientAuth");
    run_shell("openssl req -x509 " + ec + "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
              p("self.key") + " -out " + p("self.crt") + " 2>&1");
    t.ca = p("ca.crt");
    t.server_cert = p("server.crt"), t.server_key = p("server.key");
    t.other_cert = p("other.crt"), t.other_key = p("other.key");
    t.self_cert = p("self.crt"), t.self_key = p("self.key");
    t.client_cert = p("client.crt"), t.client_key = p("client.key");
    std::string b64 = run_shell("openssl x509 -in " + t.server_cert +
                                " -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | "
                                "openssl base64 -A");
    t.server_pin = "sha256//" + b64;
    return t;
  }();
  return files;
}

// sluice-cloud in a temporary data directory (api key "test-key", admin key "test-admin").
class Cloud {
 public:
  static constexpr const char* kKey = "test-key";
  static constexpr const char* kAdmin = "test-admin";

  explicit Cloud(std::vector<std::string> extra = {}) : data_("cloud") {
    std::vector<std::string> argv = {cloud_binary(),  "--listen",  "127.0.0.1:0", "--data", data_.path + "/data",
                                     "--api-key",     kKey,        "--admin-key", kAdmin};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(std::move(argv));
    proc_->start();
  }
  ~Cloud() { proc_.reset(); }
  std::string url() const { return proc_->url; }
  unsigned port() const { return proc_->port; }
  void stop() { proc_->stop(); }
  // Starts again on the same port with the same data.
  void restart() {
    proc_->stop();
    for (auto& a : proc_->argv_)
      if (a.rfind("127.0.0.1:", 0) == 0) a = "127.0.0.1:" + std::to_string(proc_->port);
    proc_->start();
  }
  void set(const std::string& hex, const std::string& disposition, const std::string& threat_name = "") {
    nlohmann::json b = {{"disposition", disposition}};
    if (!threat_name.empty()) b["threat_name"] = threat_name;
    admin(boost::beast::http::verb::put, "/api/v1/admin/files/" + hex, b.dump());
  }
  void faults(const nlohmann::json& f) { admin(boost::beast::http::verb::post, "/api/v1/admin/faults", f.dump()); }
  void clear_faults() { admin(boost::beast::http::verb::delete_, "/api/v1/admin/faults", ""); }

 private:
  void admin(boost::beast::http::verb m, const std::string& target, const std::string& body) {
    Reply r = http_call(port(), m, target, body, kAdmin);
    if (r.status != 200) throw std::runtime_error("sluice-cloud admin " + target + ": " + std::to_string(r.status) + " " + r.body);
  }
  TempDir data_;  // removed after the process stopped (members go in reverse order), or if it never started
  std::unique_ptr<Process> proc_;
};

// The VirusTotal test double (api key "vt-key").
class VtDouble {
 public:
  static constexpr const char* kKey = "vt-key";
  explicit VtDouble(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"/usr/bin/python3", vt_double_script(), "--api-key", kKey};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(std::move(argv));
    proc_->start();
  }
  std::string url() const { return proc_->url; }
  unsigned port() const { return proc_->port; }
  void stop() { proc_->stop(); }
  void restart() {
    proc_->stop();
    auto& a = proc_->argv_;
    std::string listen = "127.0.0.1:" + std::to_string(proc_->port);
    if (auto it = std::find(a.begin(), a.end(), std::string("--listen")); it != a.end())
      *(it + 1) = listen;
    else
      a.insert(a.end(), {"--listen", listen});
    proc_->start();
  }
  void file(const std::string& hex, const nlohmann::json& spec) {
    put("/_double/files/" + hex, spec.dump());
  }
  void mode(const nlohmann::json& m) { put("/_double/mode", m.dump()); }
  nlohmann::json stats() {
    return nlohmann::json::parse(http_call(port(), boost::beast::http::verb::get, "/_double/stats").body);
  }

 private:
  void put(const std::string& target, const std::string& body) {
    Reply r = http_call(port(), boost::beast::http::verb::put, target, body);
    if (r.status != 200) throw std::runtime_error("vt double " + target + ": " + std::to_string(r.status));
  }
  std::unique_ptr<Process> proc_;
};

// The CAPEv2 test double (api key "cape-key", sent as Authorization: Token).
class CapeDouble {
 public:
  static constexpr const char* kKey = "cape-key";
  explicit CapeDouble(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"/usr/bin/python3", cape_double_script(), "--api-key", kKey};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(std::move(argv));
    proc_->start();
  }
  std::string url() const { return proc_->url; }
  unsigned port() const { return proc_->port; }
  void stop() { proc_->stop(); }
  // Defaults for new tasks: step_ms, malscore, malstatus, family, outcome; max_upload_bytes, report_padding_kb.
  void config(const nlohmann::json& c) { call(boost::beast::http::verb::put, "/_double/config", c.dump()); }
  void sample(const std::string& hex, const nlohmann::json& spec) {
    call(boost::beast::http::verb::put, "/_double/samples/" + hex, spec.dump());
  }
  // A task already there (another appliance's upload): {"sha256", "status", ...}; its id.
  unsigned task(const nlohmann::json& spec) {
    return nlohmann::json::parse(call(boost::beast::http::verb::post, "/_double/tasks", spec.dump()))["id"];
  }
  void mode(const nlohmann::json& m) { call(boost::beast::http::verb::put, "/_double/mode", m.dump()); }
  nlohmann::json stats() { return nlohmann::json::parse(call(boost::beast::http::verb::get, "/_double/stats", "")); }

 private:
  std::string call(boost::beast::http::verb m, const std::string& target, const std::string& body) {
    Reply r = http_call(port(), m, target, body);
    if (r.status != 200) throw std::runtime_error("cape double " + target + ": " + std::to_string(r.status));
    return r.body;
  }
  std::unique_ptr<Process> proc_;
};

}  // namespace sluice::test
