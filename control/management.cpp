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
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
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
  Impl(asio::io_context& io, ManagementConfig config, std::string state_dir, std::vector<ApiRoute> routes)
      : io(io), config(std::move(config)), state_dir(std::move(state_dir)), routes(std::move(routes)), acceptor(io) {}

  asio::io_context& io;
  ManagementConfig config;
  std::string state_dir;
  std::vector<ApiRoute> routes;
  tcp::acceptor acceptor;
  // Made by start() when the API listens: an OpenSSL context costs a few ms of every start
  // (issue 18), and most sluiced runs (replays, taps without the API) never need one.
  std::optional<ssl::context> tls;
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
  void answer(const bhttp::request<bhttp::string_body>& rq, const std::string& peer,
              std::function<void(bhttp::response<bhttp::string_body>)> send);
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

// Authenticates, routes and calls the handler; `send` gets the response (on the loop).
void Management::Impl::answer(const bhttp::request<bhttp::string_body>& rq, const std::string& peer,
                              std::function<void(bhttp::response<bhttp::string_body>)> send) {
  const auto t0 = std::chrono::steady_clock::now();
  const unsigned version = rq.version();
  const bool keep_alive = rq.keep_alive();
  const std::string target(rq.target());
  const std::size_t qmark = target.find('?');
  ApiRequest req;
  req.method = std::string(rq.method_string());
  req.path = target.substr(0, qmark);
  req.who = "-";
  const std::string shown_path = req.path.substr(0, 200);
  // Logs the request and sends the answer: once, on the loop.
  auto finish = [self = shared_from_this(), send = std::move(send), version, keep_alive, t0, peer,
                 method = req.method, shown_path](const std::string& who, ApiResponse r) {
    bhttp::response<bhttp::string_body> rs{static_cast<bhttp::status>(r.status), version};
    rs.set(bhttp::field::server, "sluiced");
    rs.set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) rs.set(name, value);
    rs.keep_alive(keep_alive);
    rs.body() = std::move(r.body);
    rs.prepare_payload();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "sluiced: api: %s %s %s %s %u %.1f ms\n", peer.c_str(), who.c_str(), method.c_str(),
                 shown_path.c_str(), r.status, ms);
    if (!self->stopped) send(std::move(rs));
  };
  // Who asks: a bearer token, checked against the file; none at all only for open routes.
  std::optional<TokenRole> role;
  unsigned line = 0;
  bool bad_token = false;
  const auto auth = rq[bhttp::field::authorization];
  if (!auth.empty()) {
    const std::string_view a(auth.data(), auth.size());
    if (a.size() > 7 && (a.substr(0, 7) == "Bearer " || a.substr(0, 7) == "bearer ")) {
      if (const TokenEntry* e = token_entry(tokens, a.substr(7))) {
        role = e->role;
        line = e->line;  // names the token in the log (never the token itself)
        req.who = std::string(token_role_name(*role)) + " token of line " + std::to_string(line);
      } else {
        bad_token = true;
      }
    } else {
      bad_token = true;
    }
  }
  // The route: the first whose pattern matches; 405 when only other methods match.
  const ApiRoute* route = nullptr;
  std::string allowed;
  for (const auto& r : routes) {
    std::vector<std::string> params;
    if (!api_match(r.pattern, req.path, params)) continue;
    if (r.method == req.method) {
      route = &r;
      req.params = std::move(params);
      break;
    }
    if (allowed.find(r.method) == std::string::npos) allowed += (allowed.empty() ? "" : ", ") + r.method;
  }
  const bool open = route && route->access == ApiAccess::open;
  auto unauthorized = [&](const char* code, const std::string& message) {
    ApiResponse r = api_error(401, code, message);
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    finish(req.who, std::move(r));
  };
  if (bad_token) return unauthorized("WrongCredentialsError", "the bearer token is not one of management.token_file");
  if (!role && !open)
    return unauthorized("AuthenticationRequiredError", "send Authorization: Bearer TOKEN (sluicectl token new makes one)");
  if (!allow(line)) {
    ApiResponse r = api_error(429, "TooManyRequestsError",
                              "more than " + std::to_string(config.rate_per_s) +
                                  " requests a second with this token (management.rate_per_s)");
    r.headers.emplace_back("Retry-After", "1");
    return finish(req.who, std::move(r));
  }
  if (!route && allowed.empty()) return finish(req.who, api_not_found("no resource " + shown_path));
  if (!route) {
    ApiResponse r = api_error(405, "MethodNotAllowedError", "use " + allowed);
    r.headers.emplace_back("Allow", allowed);
    return finish(req.who, std::move(r));
  }
  if (route->access == ApiAccess::admin && role != TokenRole::admin)
    return finish(req.who, api_error(403, "ForbiddenError",
                                     req.method + " " + route->pattern + " needs an admin token; this is a " +
                                         std::string(token_role_name(*role)) + " token"));
  if (qmark != std::string::npos && !api_parse_query(std::string_view(target).substr(qmark + 1), req.query))
    return finish(req.who, api_bad_request("the query string has a malformed %-escape"));
  req.body = rq.body();
  req.content_type = std::string(rq[bhttp::field::content_type]);
  // The handler may answer from any thread: the answer goes back to the loop.
  auto once = std::make_shared<std::atomic<bool>>(false);
  ApiReply reply = [&io = io, finish = std::move(finish), who = req.who, once](ApiResponse r) mutable {
    if (once->exchange(true)) return;
    asio::post(io, [finish = std::move(finish), who, r = std::move(r)]() mutable { finish(who, std::move(r)); });
  };
  try {
    route->handler(req, reply);
  } catch (const std::exception& x) {  // a handler's bug must not take sluiced down
    reply(api_error(500, "InternalError", std::string("the request failed: ") + x.what()));
  }
}

namespace {

struct Session : std::enable_shared_from_this<Session> {
  Session(tcp::socket socket, std::shared_ptr<Management::Impl> server)
      : server(std::move(server)), stream(std::move(socket), *this->server->tls) {
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
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(server->config.request_timeout_s));
    stream.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->read();
    });
  }
  void read() {
    if (server->stopped) return;
    parser.emplace();
    parser->header_limit(server->config.max_header_kb * 1024u);
    parser->body_limit(uint64_t{server->config.max_body_kb} * 1024);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(server->config.idle_timeout_s));
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
    server->answer(parser->get(), peer, [self = shared_from_this()](bhttp::response<bhttp::string_body> rs) {
      self->response = std::move(rs);
      self->write();
    });
  }
  void write() {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(server->config.request_timeout_s));
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
      if (self->connections >= self->config.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);  // a flood costs no more than this
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);  // small answers: no wait for a delayed ACK
        std::make_shared<Session>(std::move(socket), self)->start();
      }
    }
    self->accept();
  });
}

Management::Management(asio::io_context& io, ManagementConfig config, std::string state_dir,
                       std::vector<ApiRoute> routes)
    : impl_(std::make_shared<Impl>(io, std::move(config), std::move(state_dir), std::move(routes))) {}

Management::~Management() { stop(); }

const std::string& Management::summary() const noexcept { return impl_->summary; }

bool certificate_names(const std::string& cert_path, const std::string& host) {
  FILE* f = std::fopen(cert_path.c_str(), "r");
  if (!f) return false;
  std::unique_ptr<X509, X509Free> cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!cert) return false;
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return ec ? X509_check_host(cert.get(), host.c_str(), host.size(), 0, nullptr) == 1
            : X509_check_ip_asc(cert.get(), host.c_str(), 0) == 1;
}

std::string Management::start() {
  Impl& m = *impl_;
  if (m.config.listen.empty()) return "";
  m.tokens = load_tokens(m.config.token_file);
  if (!m.tokens.error.empty()) return "management.token_file: " + m.tokens.error;
  std::string host, port;
  if (!split_host_port(m.config.listen, host, port)) return "management.listen '" + m.config.listen + "' is not host:port";
  std::string cert = m.config.cert_file, key = m.config.key_file;
  bool remade_certificate = false;
  if (cert.empty()) {
    cert = m.state_dir + "/management.crt";
    key = m.state_dir + "/management.key";
    struct stat st {};
    const bool have = ::stat(cert.c_str(), &st) == 0 && ::stat(key.c_str(), &st) == 0;
    // Made for the listen address: a certificate made for another one (management.listen changed)
    // would fail every client's host check, so it is made again (its fingerprint changes; the
    // start-up line prints the new one).
    if (!have || !certificate_names(cert, host)) {
      if (std::string e = make_self_signed(cert, key, {host, "localhost"}); !e.empty())
        return "management: cannot make a certificate: " + e;
      if (have) remade_certificate = true;
    }
  }
  try {
    m.tls.emplace(ssl::context::tls_server);
    m.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    m.tls->use_certificate_chain_file(cert);
    m.tls->use_private_key_file(key, ssl::context::pem);
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
              certificate_fingerprint(cert) + ")" +
              (remade_certificate ? "; the self-signed certificate was made again for this address" : "");
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
