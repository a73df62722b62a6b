// control/api_client: see api_client.h. One connection per request (Connection: close): sluicectl
// sends one request per run. resolve -> connect -> TLS handshake -> certificate check -> write ->
// read, as one coroutine on a private io_context.
#include "control/api_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <memory>

namespace sluice::control::api {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::uint32_t kHeaderLimit = 64 * 1024;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct X509Free {
  void operator()(X509* p) const noexcept { X509_free(p); }
};

// The presented certificate's SHA-256 (of its DER), "AB:CD:..."; "" when there is none.
std::string peer_fingerprint(SSL* ssl) {
  std::unique_ptr<X509, X509Free> cert(SSL_get1_peer_certificate(ssl));
  if (!cert) return "";
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (X509_digest(cert.get(), EVP_sha256(), d, &n) != 1 || n != 32) return "";
  return fingerprint_text(d);
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

bhttp::verb verb_of(const std::string& method) {
  const bhttp::verb v = bhttp::string_to_verb(method);
  return v == bhttp::verb::unknown ? bhttp::verb::get : v;
}

struct Exchange {
  const ClientOptions& opt;
  const Request& rq;
  Response& out;
  net::io_context& io;

  std::string millis() const { return std::to_string(opt.timeout.count()) + " ms"; }

  net::awaitable<void> run() {
    error_code ec;
    auto on = net::redirect_error(net::use_awaitable, ec);
    const std::string where =
        opt.url.host + ":" + opt.url.port + (opt.connect_to.empty() ? "" : " (at " + opt.connect_to + ")");
    tcp::resolver::results_type endpoints;
    tcp::resolver resolver(io);
    const std::string& name = opt.connect_to.empty() ? opt.url.host : opt.connect_to;
    endpoints = co_await resolver.async_resolve(name, opt.url.port,
                                                is_ip_literal(name) ? tcp::resolver::numeric_host : tcp::resolver::flags(),
                                                on);
    if (ec) {
      out.failure = "cannot resolve " + name + ": " + ec.message();
      co_return;
    }

    ssl::context ctx(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    switch (opt.tls.trust) {
      case Trust::any_on_loopback:
      case Trust::fingerprint:
        ctx.set_verify_mode(ssl::verify_none);  // checked after the handshake, before any byte is sent
        break;
      case Trust::ca_file:
        ctx.load_verify_file(opt.tls.ca_file, ec);
        if (ec) {
          out.failure = "--ca " + opt.tls.ca_file + ": no PEM certificate in it";
          co_return;
        }
        ctx.set_verify_mode(ssl::verify_peer);
        ctx.set_verify_callback(ssl::host_name_verification(opt.url.host));
        break;
      case Trust::system:
        ctx.set_default_verify_paths(ec);
        if (ec) {
          out.failure = "cannot load the system's CA certificates: " + ec.message();
          co_return;
        }
        ctx.set_verify_mode(ssl::verify_peer);
        ctx.set_verify_callback(ssl::host_name_verification(opt.url.host));
        break;
    }
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    // SNI: host names only (RFC 6066 section 3).
    if (!is_ip_literal(opt.url.host)) SSL_set_tlsext_host_name(stream.native_handle(), opt.url.host.c_str());

    beast::get_lowest_layer(stream).expires_after(opt.timeout);
    co_await beast::get_lowest_layer(stream).async_connect(endpoints, on);
    if (ec == beast::error::timeout) {
      out.failure = "cannot connect to " + where + ": no connection within " + millis();
      co_return;
    }
    if (ec) {
      out.failure = "cannot connect to " + where + ": " + ec.message();
      co_return;
    }
    co_await stream.async_handshake(ssl::stream_base::client, on);
    if (ec == beast::error::timeout) {
      out.failure = "TLS with " + where + ": no handshake within " + millis();
      co_return;
    }
    if (ec) {
      const long v = SSL_get_verify_result(stream.native_handle());
      const std::string against =
          opt.tls.trust == Trust::ca_file ? "--ca " + opt.tls.ca_file : std::string("the system CAs");
      // host_name_verification refuses a chain that verified without setting an error, which
      // OpenSSL reports as "unspecified".
      if (v == X509_V_ERR_UNSPECIFIED && (opt.tls.trust == Trust::ca_file || opt.tls.trust == Trust::system))
        out.failure = "TLS with " + where + ": the certificate is not trusted: it does not name " + opt.url.host +
                      " (" + against + ")";
      else if (v != X509_V_OK && (opt.tls.trust == Trust::ca_file || opt.tls.trust == Trust::system))
        out.failure = "TLS with " + where + ": the certificate is not trusted (" + X509_verify_cert_error_string(v) +
                      "; " + against + ")";
      else
        out.failure = "TLS with " + where + ": " + ec.message();
      co_return;
    }
    out.peer_fingerprint = peer_fingerprint(stream.native_handle());
    if (opt.tls.trust == Trust::fingerprint && out.peer_fingerprint != opt.tls.fingerprint) {
      out.failure = "TLS with " + where + ": the certificate's SHA-256 is " +
                    (out.peer_fingerprint.empty() ? std::string("unknown") : out.peer_fingerprint) +
                    ", not the --fingerprint " + opt.tls.fingerprint;
      co_return;
    }

    std::string target = opt.url.prefix + rq.target;
    bhttp::request<bhttp::string_body> msg{verb_of(rq.method), target, 11};
    const bool v6 = opt.url.host.find(':') != std::string::npos;
    const bool default_port = opt.url.port == "443";
    msg.set(bhttp::field::host, (v6 ? "[" + opt.url.host + "]" : opt.url.host) + (default_port ? "" : ":" + opt.url.port));
    msg.set(bhttp::field::user_agent, opt.user_agent);
    msg.set(bhttp::field::accept, rq.accept);
    msg.set(bhttp::field::connection, "close");
    if (!opt.token.empty()) msg.set(bhttp::field::authorization, "Bearer " + opt.token);
    if (!rq.body.empty() || msg.method() == bhttp::verb::post || msg.method() == bhttp::verb::put) {
      if (!rq.content_type.empty()) msg.set(bhttp::field::content_type, rq.content_type);
      msg.body() = rq.body;
    }
    msg.prepare_payload();

    beast::get_lowest_layer(stream).expires_after(opt.timeout);
    co_await bhttp::async_write(stream, msg, on);
    if (ec) {
      out.failure = ec == beast::error::timeout ? "request to " + where + ": not sent within " + millis()
                                                : "request to " + where + ": " + ec.message();
      co_return;
    }
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(opt.max_body_bytes);
    co_await bhttp::async_read(stream, buffer, parser, on);
    if (ec == beast::error::timeout) {
      out.failure = "request to " + where + ": no complete answer within " + millis();
      co_return;
    }
    if (ec == bhttp::error::body_limit) {
      out.failure = "request to " + where + ": the answer is over " + std::to_string(opt.max_body_bytes) + " bytes";
      co_return;
    }
    if (ec) {
      out.failure = "request to " + where + ": " + ec.message();
      co_return;
    }
    const auto& answer = parser.get();
    out.status = answer.result_int();
    out.content_type = std::string(answer[bhttp::field::content_type]);
    out.body = answer.body();
    // No TLS close_notify exchange: the answer is complete and the request said Connection: close,
    // so the socket just closes (waiting for the server's close_notify would only add time).
  }
};

}  // namespace

std::string fingerprint_text(const uint8_t* sha256) {
  std::string out;
  out.reserve(95);
  char b[3];
  for (unsigned i = 0; i < 32; ++i) {
    std::snprintf(b, sizeof b, "%02X", sha256[i]);
    if (i) out += ':';
    out += b;
  }
  return out;
}

std::string normal_fingerprint(std::string_view text) {
  // Either 64 digits or 32 pairs separated by single colons.
  const bool colons = text.size() == 95;
  if (text.size() != 64 && !colons) return "";
  uint8_t bytes[32];
  std::size_t at = 0;
  for (unsigned i = 0; i < 32; ++i) {
    if (colons && i > 0) {
      if (text[at] != ':') return "";
      ++at;
    }
    const int hi = hex_value(text[at]), lo = hex_value(text[at + 1]);
    if (hi < 0 || lo < 0) return "";
    bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    at += 2;
  }
  return fingerprint_text(bytes);
}

std::string choose_tls(const http::Url& url, const std::string& ca_file, const std::string& fingerprint,
                       TlsPolicy& out) {
  if (!url.tls) return "the management API is HTTPS only: use an https:// URL";
  if (!ca_file.empty() && !fingerprint.empty()) return "--ca and --fingerprint are alternatives: give one";
  out = TlsPolicy{};
  if (!fingerprint.empty()) {
    out.fingerprint = normal_fingerprint(fingerprint);
    if (out.fingerprint.empty())
      return "--fingerprint '" + fingerprint + "' is not a SHA-256 (64 hex digits, colons optional)";
    out.trust = Trust::fingerprint;
  } else if (!ca_file.empty()) {
    if (!std::ifstream(ca_file)) return "--ca '" + ca_file + "' cannot be read";
    ssl::context probe(ssl::context::tls_client);
    error_code ec;
    probe.load_verify_file(ca_file, ec);
    if (ec) return "--ca '" + ca_file + "' holds no PEM certificate";
    out.trust = Trust::ca_file;
    out.ca_file = ca_file;
  } else {
    out.trust = http::is_loopback_host(url.host) ? Trust::any_on_loopback : Trust::system;
  }
  return "";
}

Response perform(const ClientOptions& options, const Request& request) {
  Response out;
  if (!options.url.tls) {
    out.failure = "the management API is HTTPS only";
    return out;
  }
  net::io_context io;
  Exchange exchange{options, request, out, io};
  bool done = false;
  net::co_spawn(
      io, [&]() -> net::awaitable<void> { co_await exchange.run(); },
      [&](std::exception_ptr e) {
        done = true;
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          out.failure = std::string("request failed: ") + x.what();
        }
      });
  // Each phase has its own timer on the stream; resolving has none of its own, so the whole run is
  // bounded too (two phases and a little for the close).
  io.run_for(2 * options.timeout + std::chrono::seconds(2));
  if (!done) {
    out = Response{};
    out.failure = "no answer from " + options.url.host + ":" + options.url.port + " within " +
                  std::to_string(options.timeout.count()) + " ms";
  }
  return out;
}

std::string url_encode(std::string_view text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    }
  }
  return out;
}

}  // namespace sluice::control::api
