// control/http_pool: see http_pool.h. Each connection runs one request at a time: (resolve,
// connect, TLS handshake and pin check when not open) -> write -> read -> back to idle, or closed.
// A reused keep-alive connection the server has closed in the meantime fails before any byte of the
// answer: the request is sent again once on a fresh connection, as browsers and curl do; a fresh
// connection's failure is the request's failure.
#include "control/http_pool.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace sluice::control::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

// Headers of an answer: 16 KiB is plenty for an API's JSON answers (Beast's default is 8 KiB).
constexpr std::uint32_t kHeaderLimit = 16 * 1024;

long long ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The last OpenSSL error queue entry as text, or `fallback`.
std::string openssl_reason(const char* fallback) {
  unsigned long e = 0, last = 0;
  while ((e = ERR_get_error()) != 0) last = e;
  if (last == 0) return fallback;
  const char* r = ERR_reason_error_string(last);
  return r ? r : fallback;
}

bool file_readable(const std::string& path, std::string& why) {
  std::ifstream f(path);
  if (f) return true;
  why = std::strerror(errno);
  return false;
}

// Host name verification with the reason kept: Asio's callback returns false without setting an
// error, so the handshake would only say "certificate verify failed".
struct VerifyHost {
  net::ssl::host_name_verification check;
  bool operator()(bool preverified, net::ssl::verify_context& ctx) const {
    if (!preverified) return false;
    if (X509_STORE_CTX_get_error_depth(ctx.native_handle()) > 0) return true;
    if (check(preverified, ctx)) return true;
    X509_STORE_CTX_set_error(ctx.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
    return false;
  }
};

std::optional<std::array<uint8_t, 32>> spki_sha256(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return std::nullopt;
  unsigned char* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  std::optional<std::array<uint8_t, 32>> out;
  if (len > 0) {
    std::array<uint8_t, 32> d{};
    unsigned n = 0;
    if (EVP_Digest(der, static_cast<size_t>(len), d.data(), &n, EVP_sha256(), nullptr) == 1 && n == 32) out = d;
  }
  OPENSSL_free(der);
  X509_free(cert);
  return out;
}

// A request body written from up to three pieces, the middle one shared with the caller: a JSON body
// is `head` alone; an upload is the multipart head, the file's bytes and the closing boundary. Beast
// writes the buffers as they are (no copy); `size` gives the Content-Length.
struct PartsBody {
  struct value_type {
    std::string head;
    std::shared_ptr<const std::string> middle;
    std::string tail;
  };
  static std::uint64_t size(const value_type& v) {
    return v.head.size() + (v.middle ? v.middle->size() : 0) + v.tail.size();
  }
  class writer {
   public:
    using const_buffers_type = std::array<net::const_buffer, 3>;
    template <bool isRequest, class Fields>
    writer(const bhttp::header<isRequest, Fields>&, const value_type& v) : v_(v) {}
    void init(error_code& ec) { ec = {}; }
    boost::optional<std::pair<const_buffers_type, bool>> get(error_code& ec) {
      ec = {};
      if (done_) return boost::none;
      done_ = true;
      return std::make_pair(const_buffers_type{net::buffer(v_.head),
                                               v_.middle ? net::buffer(*v_.middle) : net::const_buffer(),
                                               net::buffer(v_.tail)},
                            false);
    }

   private:
    const value_type& v_;
    bool done_ = false;
  };
};

// RFC 7578 4.2: the file name goes in a quoted-string; rather than escaping (receivers disagree on
// backslashes), characters that would need it become '_'. UTF-8 passes as it is. 255 bytes at most
// (a file system's name limit; longer names are cut).
std::string form_filename(std::string_view name) {
  std::string out(name.substr(0, 255));
  for (auto& c : out)
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  return out.empty() ? "sample" : out;
}

// A boundary that does not occur in the bytes (RFC 2046 5.1.1): random, checked, drawn again on the
// (astronomically unlikely) hit.
std::string form_boundary(const std::string& bytes) {
  for (;;) {
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1) throw std::runtime_error("RAND_bytes failed");
    static const char* digits = "0123456789abcdef";
    std::string b = "sluice-";
    for (unsigned char x : r) b += {digits[x >> 4], digits[x & 15]};
    if (bytes.find(b) == std::string::npos) return b;
  }
}

}  // namespace

std::string parse_url(std::string_view text, Url& out) {
  out = Url{};
  std::string_view rest;
  if (text.substr(0, 7) == "http://") {
    rest = text.substr(7);
  } else if (text.substr(0, 8) == "https://") {
    out.tls = true;
    rest = text.substr(8);
  } else {
    return "must start with http:// or https://";
  }
  if (rest.find_first_of("?#") != std::string_view::npos) return "no query or fragment allowed";
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return "no user name or password allowed in the URL";
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return "unclosed '[' in the host";
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "junk after the IPv6 address";
      port = after.substr(1);
      if (port.empty()) return "empty port";
    }
    error_code ec;
    auto a = net::ip::make_address(out.host, ec);
    if (ec || !a.is_v6()) return "bad IPv6 address '" + out.host + "'";
  } else {
    std::size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
      if (port.empty()) return "empty port";
    }
    out.host = std::string(authority);
    for (unsigned char c : out.host)
      if (!std::isalnum(c) && c != '-' && c != '.') return "bad host name '" + out.host + "'";
  }
  if (out.host.empty()) return "no host";
  if (!port.empty()) {
    if (!all_digits(port) || port.size() > 5 || std::stoul(std::string(port)) == 0 ||
        std::stoul(std::string(port)) > 65535)
      return "bad port '" + std::string(port) + "'";
    out.port = std::to_string(std::stoul(std::string(port)));
  } else {
    out.port = out.tls ? "443" : "80";
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  for (unsigned char c : path)
    if (c <= 0x20 || c >= 0x7f) return "bad character in the path";
  out.prefix = std::string(path);
  return "";
}

bool is_loopback_host(std::string_view host) {
  if (lower(host) == "localhost") return true;
  error_code ec;
  auto a = net::ip::make_address(std::string(host), ec);
  return !ec && a.is_loopback();
}

std::string load_tls(net::ssl::context& ctx, const std::string& ca_file, const std::string& client_cert,
                     const std::string& client_key) {
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_verify_mode(net::ssl::verify_peer);
  std::string why;
  if (ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx.native_handle()) != 1)
      return "the system's CA paths cannot be loaded: " + openssl_reason("error");
  } else {
    if (!file_readable(ca_file, why)) return "ca_file '" + ca_file + "': " + why;
    if (SSL_CTX_load_verify_locations(ctx.native_handle(), ca_file.c_str(), nullptr) != 1)
      return "ca_file '" + ca_file + "': no PEM certificate in it (" + openssl_reason("error") + ")";
  }
  if (client_cert.empty() != client_key.empty()) return "client_cert and client_key go together";
  if (!client_cert.empty()) {
    if (!file_readable(client_cert, why)) return "client_cert '" + client_cert + "': " + why;
    if (!file_readable(client_key, why)) return "client_key '" + client_key + "': " + why;
    if (SSL_CTX_use_certificate_chain_file(ctx.native_handle(), client_cert.c_str()) != 1)
      return "client_cert '" + client_cert + "': not a PEM certificate (" + openssl_reason("error") + ")";
    BIO* bio = BIO_new_file(client_key.c_str(), "r");
    EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (!key) return "client_key '" + client_key + "': not a PEM private key (" + openssl_reason("error") + ")";
    ERR_clear_error();
    int used = SSL_CTX_use_PrivateKey(ctx.native_handle(), key);
    EVP_PKEY_free(key);
    if (used != 1 || SSL_CTX_check_private_key(ctx.native_handle()) != 1)
      return "client_key '" + client_key + "' does not match client_cert '" + client_cert + "'";
  }
  return "";
}

std::optional<std::array<uint8_t, 32>> decode_pin(std::string_view pin) {
  if (pin.substr(0, 8) == "sha256//") pin.remove_prefix(8);
  if (pin.size() != 44 || pin.back() != '=' || pin[42] == '=') return std::nullopt;
  for (unsigned char c : pin.substr(0, 43))
    if (!std::isalnum(c) && c != '+' && c != '/') return std::nullopt;
  unsigned char out[33];  // 44 base64 characters decode to 33 bytes, the last one padding
  if (EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(pin.data()), 44) != 33) return std::nullopt;
  std::array<uint8_t, 32> d{};
  std::memcpy(d.data(), out, 32);
  return d;
}

std::string encode_pin(const std::array<uint8_t, 32>& digest) {
  unsigned char out[45];
  int n = EVP_EncodeBlock(out, digest.data(), 32);
  return "sha256//" + std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
}

// ---------------------------------------------------------------------------------------------

struct Pool::Conn {
  explicit Conn(net::io_context& io) : resolver(io), resolve_timer(io) {}
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  tcp::resolver resolver;
  net::steady_timer resolve_timer;
  beast::flat_buffer buffer;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  bhttp::request<PartsBody> req;
  bool busy = false, open = false, resent = false;
  bool request_sent = false;    // the current request was written whole (on some connection)
  std::string write_error;      // the write failed: the answer read now is the server's early one
  unsigned generation = 0;      // of connect attempts: a late resolve timer never touches the next one
  Job job;
  Clock::time_point taken;      // when the request took this connection
  long long answer_ms = 0;      // the answer's time allowed, for the detail

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  template <typename F>
  void with_stream(F&& f) {
    if (secure)
      f(*secure);
    else
      f(*plain);
  }
};

std::shared_ptr<Pool> Pool::create(net::io_context& io, PoolOptions options) {
  return std::shared_ptr<Pool>(new Pool(io, std::move(options)));
}

Pool::Pool(net::io_context& io, PoolOptions options) : io_(io), opt_(std::move(options)) {
  if (opt_.url.tls) {
    tls_.emplace(net::ssl::context::tls_client);
    std::string problem = load_tls(*tls_, opt_.ca_file, opt_.client_cert, opt_.client_key);
    if (!problem.empty()) throw std::runtime_error(problem);
    tls_->set_verify_callback(VerifyHost{net::ssl::host_name_verification(opt_.url.host)});
  }
  conns_.reserve(opt_.max_connections);
}

Pool::~Pool() { close(); }

std::size_t Pool::room() {
  // Requests abandoned while they waited (their look-up ended) give their place back at once.
  std::erase_if(queue_, [](const Job& j) { return j.request.abandoned && *j.request.abandoned; });
  return closed_ || queue_.size() >= opt_.max_queued ? 0 : opt_.max_queued - queue_.size();
}

unsigned Pool::connections_open() const noexcept {
  unsigned n = 0;
  for (const auto& c : conns_) n += c->open ? 1 : 0;
  return n;
}

bool Pool::send(Request request, std::function<void(Response)> done) {
  if (room() == 0) return false;
  queue_.push_back(Job{std::move(request), std::move(done)});
  // Started from a posted handler, so `done` never runs inside send().
  net::post(io_, [self = shared_from_this()] { self->dispatch(); });
  return true;
}

void Pool::close() {
  if (closed_) return;
  closed_ = true;
  queue_.clear();
  for (auto& c : conns_) drop(*c);
}

void Pool::drop(Conn& c) {
  error_code ignored;
  c.resolver.cancel();
  c.resolve_timer.cancel();
  if (c.plain || c.secure) c.lowest().socket().close(ignored);
  c.open = false;
}

void Pool::dispatch() {
  while (!closed_ && !queue_.empty()) {
    std::shared_ptr<Conn> idle;
    for (auto& c : conns_)  // an open idle connection first, then a closed one
      if (!c->busy && (!idle || (c->open && !idle->open))) idle = c;
    if (!idle && conns_.size() < opt_.max_connections) idle = conns_.emplace_back(std::make_shared<Conn>(io_));
    if (!idle) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    if (job.request.abandoned && *job.request.abandoned) continue;
    start(idle, std::move(job));
  }
}

void Pool::start(const std::shared_ptr<Conn>& c, Job job) {
  c->busy = true;
  c->resent = false;
  c->request_sent = false;
  c->write_error.clear();
  c->job = std::move(job);
  c->taken = Clock::now();
  if (c->open)
    write(c, true);
  else
    connect(c);
}

void Pool::connect(const std::shared_ptr<Conn>& c) {
  drop(*c);
  c->buffer.clear();
  if (tls_) {
    c->plain.reset();
    c->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io_, *tls_);
  } else {
    c->secure.reset();
    c->plain = std::make_unique<beast::tcp_stream>(io_);
  }
  auto now = Clock::now();
  auto until = std::min(now + opt_.connect_timeout, c->job.request.deadline);
  if (until <= now) return fail(c, Failure::timeout, "no time left to connect");
  long long allowed = ms_between(now, until);
  c->lowest().expires_at(until);
  auto self = shared_from_this();
  auto on_connect = [self, c, allowed](error_code ec, const tcp::endpoint&) {
    if (self->closed_) return;
    if (ec == beast::error::timeout)
      return self->fail(c, Failure::timeout, "connect timeout after " + std::to_string(allowed) + " ms");
    if (ec) return self->fail(c, Failure::connect, "connect: " + ec.message());
    ++self->connections_made_;
    if (!c->secure) return self->connected(c);
    SSL* ssl = c->secure->native_handle();
    error_code ignored;
    net::ip::make_address(self->opt_.url.host, ignored);
    if (ignored) SSL_set_tlsext_host_name(ssl, self->opt_.url.host.c_str());  // SNI: host names only (RFC 6066 3)
    c->secure->async_handshake(net::ssl::stream_base::client, [self, c, allowed, ssl](error_code ec) {
      if (self->closed_) return;
      if (ec == beast::error::timeout)
        return self->fail(c, Failure::timeout, "TLS handshake timeout after " + std::to_string(allowed) + " ms");
      if (ec) {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK)
          return self->fail(c, Failure::tls,
                            std::string("TLS: certificate verify failed (") + X509_verify_cert_error_string(v) + ")");
        return self->fail(c, Failure::tls, "TLS: " + ec.message());
      }
      if (self->opt_.pin) {
        auto got = spki_sha256(ssl);
        if (!got || *got != *self->opt_.pin)
          return self->fail(c, Failure::pin,
                            "TLS: public key does not match pin_sha256 " + encode_pin(*self->opt_.pin) +
                                " (server's: " + (got ? encode_pin(*got) : std::string("none")) + ")");
      }
      self->connected(c);
    });
  };
  error_code ec;
  auto addr = net::ip::make_address(opt_.url.host, ec);
  if (!ec) {
    auto endpoint = tcp::endpoint(addr, static_cast<unsigned short>(std::stoul(opt_.url.port)));
    c->lowest().async_connect(endpoint, [on_connect, endpoint](error_code ec) { on_connect(ec, endpoint); });
    return;
  }
  // A host name: resolved by Asio's resolver thread, bounded by the same time.
  c->resolve_timer.expires_at(until);
  c->resolve_timer.async_wait([self, c, generation = ++c->generation](error_code ec) {
    if (!ec && c->generation == generation) c->resolver.cancel();
  });
  c->resolver.async_resolve(opt_.url.host, opt_.url.port,
                            [self, c, allowed, on_connect](error_code ec, tcp::resolver::results_type results) {
                              if (self->closed_) return;
                              c->resolve_timer.cancel();
                              if (ec == net::error::operation_aborted)
                                return self->fail(c, Failure::timeout,
                                                  "resolve timeout after " + std::to_string(allowed) + " ms");
                              if (ec) return self->fail(c, Failure::connect, "resolve: " + ec.message());
                              c->lowest().async_connect(results, on_connect);
                            });
}

void Pool::connected(const std::shared_ptr<Conn>& c) {
  c->open = true;
  write(c, false);
}

void Pool::write(const std::shared_ptr<Conn>& c, bool reused) {
  const Request& r = c->job.request;
  auto now = Clock::now();
  auto until = std::min(now + r.timeout, r.deadline);
  if (until <= now) return fail(c, Failure::timeout, "no time left for the request");
  c->answer_ms = ms_between(now, until);
  c->req = {};
  c->req.method(r.method);
  c->req.target(opt_.url.prefix + r.target);
  c->req.version(11);
  bool v6 = opt_.url.host.find(':') != std::string::npos;
  c->req.set(bhttp::field::host, (v6 ? "[" + opt_.url.host + "]" : opt_.url.host) + ":" + opt_.url.port);
  c->req.set(bhttp::field::user_agent, "sluice");
  c->req.set(bhttp::field::accept, "application/json");
  for (const auto& [k, v] : r.headers) c->req.set(k, v);
  if (r.upload) {
    const Upload& u = *r.upload;
    static const std::string empty;
    const std::string& bytes = u.bytes ? *u.bytes : empty;
    std::string boundary = form_boundary(bytes);
    c->req.set(bhttp::field::content_type, "multipart/form-data; boundary=" + boundary);
    c->req.body().head = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + u.field +
                         "\"; filename=\"" + form_filename(u.filename) +
                         "\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    c->req.body().middle = u.bytes;
    c->req.body().tail = "\r\n--" + boundary + "--\r\n";
  } else {
    if (!r.body.empty()) c->req.set(bhttp::field::content_type, "application/json");
    c->req.body().head = r.body;
  }
  c->req.keep_alive(true);
  c->req.prepare_payload();
  c->lowest().expires_at(until);
  auto self = shared_from_this();
  c->with_stream([&](auto& stream) {
    bhttp::async_write(stream, c->req, [self, c, reused](error_code ec, std::size_t) {
      if (self->closed_) return;
      c->req.body().middle.reset();  // an upload's bytes are not kept past their writing
      if (ec == beast::error::timeout)
        return self->fail(c, Failure::timeout, "timeout after " + std::to_string(c->answer_ms) + " ms");
      if (ec && reused && !c->resent) {  // the server closed the idle connection: once more, fresh
        c->resent = true;
        return self->connect(c);
      }
      if (ec && ec.category() == net::error::get_ssl_category())
        return self->fail(c, Failure::tls, "TLS: " + ec.message());
      if (ec) {
        // The server may have answered before it stopped reading (an upload above its limit): read
        // what it sent; without a whole answer this is the request's failure.
        c->write_error = "connection closed while sending: " + ec.message();
        return self->read(c, false);
      }
      c->request_sent = true;
      self->read(c, reused);
    });
  });
}

// The header is read alone first and its Content-Length checked here: Beast 1.74's response parser
// loses its body_limit error when the header and the start of the body arrive in one read (eager
// parsing goes on into the body after finish_header() failed), so a too large answer would be read
// whole. Chunked and read-to-close bodies are checked by the parser as they arrive.
void Pool::read(const std::shared_ptr<Conn>& c, bool reused) {
  c->parser.emplace();
  c->parser->header_limit(kHeaderLimit);
  c->parser->body_limit(opt_.max_body_bytes);
  auto self = shared_from_this();
  c->with_stream([&](auto& stream) {
    bhttp::async_read_header(stream, c->buffer, *c->parser, [self, c, reused](error_code ec, std::size_t) {
      if (self->closed_ || self->read_failed(c, ec, reused)) return;
      auto length = c->parser->content_length();
      if (length && *length > self->opt_.max_body_bytes) {
        self->read_failed(c, bhttp::error::body_limit, false);
        return;
      }
      if (c->parser->is_done()) return self->answered(c);
      c->with_stream([&](auto& s) {
        bhttp::async_read(s, c->buffer, *c->parser, [self, c](error_code ec, std::size_t) {
          if (self->closed_ || self->read_failed(c, ec, false)) return;
          self->answered(c);
        });
      });
    });
  });
}

bool Pool::read_failed(const std::shared_ptr<Conn>& c, error_code ec, bool reused) {
  if (!ec) return false;
  if (!c->write_error.empty()) {
    fail(c, Failure::closed, std::exchange(c->write_error, std::string()));
    return true;
  }
  if (ec == beast::error::timeout) {
    fail(c, Failure::timeout, "timeout after " + std::to_string(c->answer_ms) + " ms");
    return true;
  }
  bool got_some = c->parser->got_some();
  if (reused && !got_some && !c->resent) {  // the server closed the idle connection: once more, fresh
    c->resent = true;
    connect(c);
  } else if (ec.category() == net::error::get_ssl_category()) {  // e.g. TLS 1.3: our certificate refused
    fail(c, Failure::tls, "TLS: " + ec.message());
  } else if (ec == bhttp::error::body_limit) {
    fail(c, Failure::too_large, "answer larger than " + std::to_string(opt_.max_body_bytes / 1024) + " KiB");
  } else if (ec == bhttp::error::end_of_stream || !got_some) {
    fail(c, Failure::closed, "connection closed before the answer");
  } else if (ec == bhttp::error::partial_message || ec == net::error::eof || ec == net::error::connection_reset ||
             ec == net::ssl::error::stream_truncated) {
    fail(c, Failure::closed, "connection closed mid-answer");
  } else {
    fail(c, Failure::protocol, "bad HTTP answer: " + ec.message());
  }
  return true;
}

void Pool::answered(const std::shared_ptr<Conn>& c) {
  auto& msg = c->parser->get();
  Response r;
  r.status = msg.result_int();
  if (auto it = msg.find(bhttp::field::retry_after); it != msg.end()) r.retry_after = std::string(it->value());
  r.body = std::move(msg.body());
  if (!c->parser->keep_alive() || !c->write_error.empty()) drop(*c);  // after a failed write: never reused
  c->write_error.clear();
  c->parser.reset();
  finish(c, std::move(r));
}

void Pool::fail(const std::shared_ptr<Conn>& c, Failure f, std::string detail) {
  drop(*c);
  c->parser.reset();
  Response r;
  r.failure = f;
  r.detail = std::move(detail);
  finish(c, std::move(r));
}

void Pool::finish(const std::shared_ptr<Conn>& c, Response r) {
  r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - c->taken).count();
  r.request_sent = c->request_sent;
  auto done = std::move(c->job.done);
  c->job = Job{};
  c->busy = false;
  if (!closed_ && done) done(std::move(r));
  dispatch();
}

}  // namespace sluice::control::http
