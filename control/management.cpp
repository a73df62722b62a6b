// The management API (management.h).
#include "control/management.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include "control/notifier.h"

namespace sluice::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr unsigned kMaxConnections = 64;
constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kBodyLimit = 64 * 1024;
constexpr auto kRequestTime = std::chrono::seconds(10);
constexpr auto kIdleTime = std::chrono::seconds(60);

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const noexcept { X509_free(p); }
};

bool write_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  return ::close(fd) == 0 && ok;
}

std::string pem_of(int (*write)(BIO*, void*), void* object) {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio && write(bio, object) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<std::size_t>(n));
  }
  BIO_free(bio);
  return out;
}

Json error_body(const std::string& code, const std::string& message) {
  return {{"error", {{"code", code}, {"message", message}}}};
}

}  // namespace

std::string make_self_signed(const std::string& cert_path, const std::string& key_path,
                             const std::vector<std::string>& hosts) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!key || !cert) return "cannot make a key";
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 86400);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("sluice management"), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san;
  for (const auto& h : hosts) {
    const bool ip = h.find_first_not_of("0123456789.") == std::string::npos || h.find(':') != std::string::npos;
    san += (san.empty() ? "" : ",") + std::string(ip ? "IP:" : "DNS:") + h;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san}, std::pair{NID_basic_constraints, std::string("CA:FALSE")},
                            std::pair{NID_ext_key_usage, std::string("serverAuth")}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) return "cannot make the certificate's extensions";
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return "cannot sign the certificate";
  const std::string key_pem = pem_of(
      [](BIO* b, void* k) { return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0, nullptr, nullptr); },
      key.get());
  const std::string cert_pem = pem_of([](BIO* b, void* c) { return PEM_write_bio_X509(b, static_cast<X509*>(c)); },
                                      cert.get());
  if (key_pem.empty() || cert_pem.empty()) return "cannot write PEM";
  if (!write_file(key_path, key_pem, 0600)) return "cannot write " + key_path;
  if (!write_file(cert_path, cert_pem, 0644)) return "cannot write " + cert_path;
  return "";
}

std::string certificate_fingerprint(const std::string& cert_path) {
  FILE* f = std::fopen(cert_path.c_str(), "r");
  if (!f) return "";
  std::unique_ptr<X509, X509Free> cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!cert) return "";
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (X509_digest(cert.get(), EVP_sha256(), d, &n) != 1) return "";
  std::string out;
  char b[4];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02X", d[i]);
    out += (i ? ":" : "") + std::string(b);
  }
  return out;
}

struct Management::Impl : std::enable_shared_from_this<Management::Impl> {
  Impl(asio::io_context& io, ManagementConfig config, std::string state_dir, Sources sources)
      : io(io), config(std::move(config)), state_dir(std::move(state_dir)), sources(std::move(sources)), acceptor(io),
        tls(ssl::context::tls_server) {}

  asio::io_context& io;
  ManagementConfig config;
  std::string state_dir;
  Sources sources;
  tcp::acceptor acceptor;
  ssl::context tls;
  TokenFile tokens;
  std::string summary;
  unsigned connections = 0;
  bool stopped = false;
  // Per token (the entry's line; 0 for requests without one): a token bucket.
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at{};
  };
  std::map<unsigned, Bucket> buckets;

  void accept();
  bool allow(unsigned who);
  bhttp::response<bhttp::string_body> answer(const bhttp::request<bhttp::string_body>& rq, const std::string& peer);
};

bool Management::Impl::allow(unsigned who) {
  const auto now = std::chrono::steady_clock::now();
  const double rate = config.rate_per_s, burst = 2.0 * config.rate_per_s;
  Bucket& b = buckets[who];
  if (b.at == std::chrono::steady_clock::time_point{}) b.tokens = burst;
  b.tokens = std::min(burst, b.tokens + rate * std::chrono::duration<double>(now - b.at).count());
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

bhttp::response<bhttp::string_body> Management::Impl::answer(const bhttp::request<bhttp::string_body>& rq,
                                                             const std::string& peer) {
  const auto t0 = std::chrono::steady_clock::now();
  bhttp::response<bhttp::string_body> rs{bhttp::status::ok, rq.version()};
  rs.set(bhttp::field::server, "sluiced");
  rs.keep_alive(rq.keep_alive());
  std::string target(rq.target());
  const std::string path = target.substr(0, target.find('?'));
  std::string who = "-";
  auto json = [&](bhttp::status st, const Json& body) {
    rs.result(st);
    rs.set(bhttp::field::content_type, "application/json");
    rs.body() = body.dump() + "\n";
  };
  // Who asks: a bearer token, checked against the file; none at all only for /metrics.
  std::optional<TokenRole> role;
  unsigned line = 0;
  bool bad_token = false;
  const auto auth = rq[bhttp::field::authorization];
  if (!auth.empty()) {
    const std::string_view a(auth.data(), auth.size());
    if (a.size() > 7 && (a.substr(0, 7) == "Bearer " || a.substr(0, 7) == "bearer ")) {
      const std::string_view token = a.substr(7);
      if (const TokenEntry* e = token_entry(tokens, token)) {
        role = e->role;
        line = e->line;  // names the token in the log (never the token itself)
        who = std::string(token_role_name(*role)) + " token of line " + std::to_string(line);
      } else {
        bad_token = true;
      }
    } else {
      bad_token = true;
    }
  }
  const bool metrics = path == "/metrics";
  if (bad_token) {
    json(bhttp::status::unauthorized, error_body("WrongCredentialsError", "the bearer token is not one of management.token_file"));
    rs.set(bhttp::field::www_authenticate, "Bearer");
  } else if (!role && !metrics) {
    json(bhttp::status::unauthorized,
         error_body("AuthenticationRequiredError", "send Authorization: Bearer TOKEN (sluicectl token new makes one)"));
    rs.set(bhttp::field::www_authenticate, "Bearer");
  } else if (!allow(line)) {
    json(bhttp::status::too_many_requests,
         error_body("TooManyRequestsError", "more than " + std::to_string(config.rate_per_s) +
                                                " requests a second with this token (management.rate_per_s)"));
    rs.set(bhttp::field::retry_after, "1");
  } else if (path != "/api/v1/status" && !metrics) {
    json(bhttp::status::not_found, error_body("NotFoundError", "no resource " + path.substr(0, 200)));
  } else if (rq.method() != bhttp::verb::get) {
    json(bhttp::status::method_not_allowed, error_body("MethodNotAllowedError", "use GET"));
    rs.set(bhttp::field::allow, "GET");
  } else if (metrics) {
    rs.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    rs.body() = sources.metrics();
  } else {
    json(bhttp::status::ok, sources.status());
  }
  rs.prepare_payload();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "sluiced: api: %s %s %s %s %u %.1f ms\n", peer.c_str(), who.c_str(),
               std::string(rq.method_string()).c_str(), path.substr(0, 200).c_str(), rs.result_int(), ms);
  return rs;
}

namespace {

struct Session : std::enable_shared_from_this<Session> {
  Session(tcp::socket socket, std::shared_ptr<Management::Impl> server)
      : server(std::move(server)), stream(std::move(socket), this->server->tls) {
    ++this->server->connections;
    beast::error_code ec;
    const auto ep = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
    if (!ec) peer = ep.address().to_string();
  }
  ~Session() { --server->connections; }

  std::shared_ptr<Management::Impl> server;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser;
  bhttp::response<bhttp::string_body> response;
  std::string peer = "-";

  void start() {
    beast::get_lowest_layer(stream).expires_after(kRequestTime);
    stream.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->read();
    });
  }
  void read() {
    if (server->stopped) return;
    parser.emplace();
    parser->header_limit(kHeaderLimit);
    parser->body_limit(kBodyLimit);
    beast::get_lowest_layer(stream).expires_after(kIdleTime);
    bhttp::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }
  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::header_limit || ec == bhttp::error::body_limit || ec == bhttp::error::bad_target ||
        ec == bhttp::error::bad_method || ec == bhttp::error::bad_version) {
      response = {ec == bhttp::error::body_limit ? bhttp::status::payload_too_large : bhttp::status::bad_request, 11};
      response.set(bhttp::field::content_type, "application/json");
      response.body() = error_body("BadRequestError", ec.message()).dump() + "\n";
      response.keep_alive(false);
      response.prepare_payload();
      return write();
    }
    if (ec) return shutdown();
    response = server->answer(parser->get(), peer);
    write();
  }
  void write() {
    beast::get_lowest_layer(stream).expires_after(kRequestTime);
    bhttp::async_write(stream, response, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (!self->response.keep_alive()) return self->shutdown();
      self->read();
    });
  }
  void shutdown() {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    stream.async_shutdown([self = shared_from_this()](beast::error_code) {});
  }
};

}  // namespace

void Management::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped) return;
    if (!ec) {
      if (self->connections >= kMaxConnections) {
        beast::error_code ignored;
        socket.close(ignored);  // a flood costs no more than this
      } else {
        std::make_shared<Session>(std::move(socket), self)->start();
      }
    }
    self->accept();
  });
}

Management::Management(asio::io_context& io, ManagementConfig config, std::string state_dir, Sources sources)
    : impl_(std::make_shared<Impl>(io, std::move(config), std::move(state_dir), std::move(sources))) {}

Management::~Management() { stop(); }

const std::string& Management::summary() const noexcept { return impl_->summary; }

std::string Management::start() {
  Impl& m = *impl_;
  if (m.config.listen.empty()) return "";
  m.tokens = load_tokens(m.config.token_file);
  if (!m.tokens.error.empty()) return "management.token_file: " + m.tokens.error;
  std::string host, port;
  if (!split_host_port(m.config.listen, host, port)) return "management.listen '" + m.config.listen + "' is not host:port";
  std::string cert = m.config.cert_file, key = m.config.key_file;
  if (cert.empty()) {
    cert = m.state_dir + "/management.crt";
    key = m.state_dir + "/management.key";
    struct stat st {};
    if (::stat(cert.c_str(), &st) != 0 || ::stat(key.c_str(), &st) != 0) {
      if (std::string e = make_self_signed(cert, key, {host, "localhost"}); !e.empty())
        return "management: cannot make a certificate: " + e;
    }
  }
  try {
    m.tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    m.tls.use_certificate_chain_file(cert);
    m.tls.use_private_key_file(key, ssl::context::pem);
  } catch (const std::exception& x) {
    return "management: certificate " + cert + " / key " + key + ": " + x.what();
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return "management.listen '" + m.config.listen + "': the address must be an IP address";
  const tcp::endpoint ep(address, static_cast<unsigned short>(std::stoul(port)));
  m.acceptor.open(ep.protocol(), ec);
  if (!ec) m.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(ep, ec);
  if (!ec) m.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "management.listen '" + m.config.listen + "': " + ec.message();
  const auto bound = m.acceptor.local_endpoint();
  const std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  m.summary = "management API on https://" + shown + ":" + std::to_string(bound.port()) + " (certificate SHA-256 " +
              certificate_fingerprint(cert) + ")";
  m.accept();
  return "";
}

void Management::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace sluice::control
