// One Session per connection, a template over the stream (plain TCP or TLS over TCP). A session
// does one thing at a time, in this cycle, so answers leave in request order whatever the client
// pipelines:
//
//   [TLS handshake] -> wait for a request's first byte (idle timeout) -> read the header (read
//   timeout; "Expect: 100-continue" answered) -> read the body -> [fault delay] -> answer ->
//   write (write timeout) -> again, or close.
//
// A session is owned by the shared_ptrs its pending handlers hold; the server keeps plain
// pointers to the live ones (registered in the constructor, removed in the destructor) to stop
// them. Single thread: no locking.
#include "control/cloud/http_server.h"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <type_traits>
#include <unordered_set>

namespace sluice::cloud {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// Connections beyond max_connections still get a 503 answer, up to this many at once; past it they
// are closed at once (a flood must not cost more than this).
constexpr unsigned kMaxRejecting = 64;
// The read buffer: a request header (8 KiB) plus what a pipelining client sends ahead. Bodies are
// moved out of it into the request as they are parsed, so it does not need to hold one.
constexpr std::size_t kBufferMax = 64 * 1024;
constexpr std::size_t kFirstRead = 4096;
// After an answer that ends the connection, how long the client's remaining bytes are read and
// dropped (so that its kernel does not get a reset before it read the answer), and how many.
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 4 << 20;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void stop() = 0;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, const tcp::endpoint& listen, ssl::context* tls, Api& api, Faults& faults,
       ServerLimits limits, std::string server_name)
      : io(io), acceptor(io), tls(tls), api(api), faults(faults), limits(limits), server_name(std::move(server_name)) {
    acceptor.open(listen.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    if (listen.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true));
    acceptor.bind(listen);
    acceptor.listen(asio::socket_base::max_listen_connections);
  }

  void accept();
  void on_accept(const beast::error_code& ec, tcp::socket socket);
  void session_gone(SessionBase* s, bool rejecting) {
    sessions.erase(s);
    if (rejecting) --rejecting_count;
    if (stopping && sessions.empty() && on_idle) {
      auto done = std::move(on_idle);
      on_idle = nullptr;
      asio::post(io, std::move(done));
    }
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  ssl::context* tls;
  Api& api;
  Faults& faults;
  ServerLimits limits;
  std::string server_name;
  std::unordered_set<SessionBase*> sessions;
  unsigned rejecting_count = 0;
  unsigned uploads = 0;  // sample upload bodies being read or answered
  bool stopping = false;
  std::function<void()> on_idle;
  std::optional<asio::steady_timer> accept_retry;
};

namespace {

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using Request = http::request<http::string_body>;
  using Response = http::response<http::string_body>;

 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server, bool reject)
      : server_(std::move(server)),
        stream_(make_stream(std::move(socket), *server_)),
        buffer_(kBufferMax),
        timer_(server_->io),
        reject_(reject) {
    server_->sessions.insert(this);
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string();
  }

  ~Session() override {
    release_upload();
    server_->session_gone(this, reject_);
  }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(server_->limits.read_timeout);
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->close_now();
        self->begin();
      });
    } else {
      begin();
    }
  }

  void stop() override {
    timer_.cancel();
    if (waiting_) close_now();
  }

 private:
  static Stream make_stream(tcp::socket&& socket, HttpServer::Impl& server) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *server.tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void begin() {
    if (reject_) {
      // Over --max-connections: one answer, then the connection ends.
      keep_alive_ = false;
      send(api_error(503, "TransientError",
                     "too many connections (" + std::to_string(server_->limits.max_connections) + "); retry later"),
           11, Close::linger);
      return;
    }
    wait_request();
  }

  // Between requests: wait for the first byte of the next one under the idle timeout (unless a
  // pipelining client already sent it).
  void wait_request() {
    if (server_->stopping) return finish(Close::graceful);
    if (buffer_.size() > 0) return read_header();
    waiting_ = true;
    lowest().expires_after(server_->limits.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->waiting_ = false;
                              if (ec) return self->close_now();  // closed, idle too long, or stopping
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->limits.header_bytes));
    // No limit while the header is read: on_header() knows the endpoint, checks the Content-Length
    // against that endpoint's limit (so that the refusal is the endpoint's) and sets it. (Not
    // boost::none: Beast 1.74 compares the Content-Length with the optional, and any value is
    // greater than none.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    special_limit_.reset();
    lowest().expires_after(server_->limits.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->on_read_error(ec);
                              self->on_header();
                            });
  }

  void on_header() {
    const auto& h = parser_->get();
    special_limit_ = server_->api.body_limit(std::string_view(h.method_string().data(), h.method_string().size()),
                                             std::string_view(h.target().data(), h.target().size()));
    const std::size_t limit = special_limit_ ? special_limit_->bytes : server_->limits.body_bytes;
    const auto length = parser_->content_length();
    if (length && *length > limit) return body_too_large();
    parser_->body_limit(limit);
    body_deadline_ = server_->limits.read_timeout;
    if (special_limit_ && !parser_->is_done()) {
      if (server_->uploads >= server_->limits.max_uploads) {
        keep_alive_ = false;
        ApiResponse r = api_error(503, "TransientError",
                                  "too many sample uploads in progress (" +
                                      std::to_string(server_->limits.max_uploads) + "); retry later");
        r.retry_after = 1;
        return send(std::move(r), 11, Close::linger);
      }
      ++server_->uploads;
      upload_ = true;
      body_deadline_ += std::chrono::seconds(length.value_or(limit) / server_->limits.upload_bytes_per_second);
      lowest().expires_after(body_deadline_);
    }
    if (!parser_->is_done() && beast::iequals(h[http::field::expect], "100-continue")) {
      raw_ = "HTTP/1.1 100 Continue\r\n\r\n";
      lowest().expires_after(server_->limits.write_timeout);
      asio::async_write(stream_, asio::buffer(raw_), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return self->close_now();
        self->lowest().expires_after(self->body_deadline_);  // the body's own deadline
        self->read_body();
      });
      return;
    }
    read_body();
  }

  // A body over its endpoint's limit: the API's refusal for a sample upload, the server's own
  // otherwise; the connection ends (the rest of the body is not read).
  void body_too_large() {
    if (!special_limit_)
      return refuse("the request body exceeds " + std::to_string(server_->limits.body_bytes) + " bytes (--max-body-kb)");
    keep_alive_ = false;
    send(special_limit_->refusal, 11, Close::linger);
  }

  void release_upload() {
    if (upload_) {
      upload_ = false;
      --server_->uploads;
    }
  }

  void read_body() {
    if (parser_->is_done()) return on_request();
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(const beast::error_code& ec) {
    const auto& http_category = http::make_error_code(http::error::bad_method).category();
    if (ec == http::error::body_limit) return body_too_large();
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return refuse("the request header exceeds " + std::to_string(server_->limits.header_bytes) + " bytes");
    }
    if (ec.category() == http_category && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return refuse("malformed HTTP request (" + ec.message() + ")");
    }
    close_now();  // end of stream, timeout, reset, TLS failure: nobody to answer
  }

  // A request that cannot be read on: answer 400 and end the connection (what follows in the
  // stream cannot be framed).
  void refuse(const std::string& why) {
    keep_alive_ = false;
    send(api_error(400, "BadRequestError", why), 11, Close::linger);
  }

  void on_request() {
    request_ = parser_->release();
    parser_.reset();
    keep_alive_ = request_.keep_alive();
    fault_.reset();
    if (!is_admin_target(std::string_view(request_.target().data(), request_.target().size()))) fault_ = server_->faults.take();
    if (fault_ && fault_->delay_ms > 0) {
      waiting_ = true;  // a stop does not wait for an injected delay
      timer_.expires_after(std::chrono::milliseconds(fault_->delay_ms));
      timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
        self->waiting_ = false;
        if (ec) return self->close_now();
        self->answer();
      });
      return;
    }
    answer();
  }

  static std::optional<std::string_view> header(const Request& r, std::string_view name) {
    auto it = r.find(beast::string_view(name.data(), name.size()));
    if (it == r.end()) return std::nullopt;
    return std::string_view(it->value().data(), it->value().size());
  }

  void answer() {
    const unsigned version = request_.version();
    if (fault_ && fault_->close == FaultSet::Close::before_answer) return close_now();
    if (fault_ && fault_->status) {
      const char* code = fault_->status == 503 ? "TransientError"
                         : fault_->status == 502 ? "BadGatewayError"
                                                 : "InternalError";
      send(api_error(fault_->status, code, "injected fault (POST /api/v1/admin/faults)"), version, Close::none);
      return;
    }
    if (fault_ && fault_->malformed) {
      ApiResponse r;
      r.body = "this is not JSON: injected fault (POST /api/v1/admin/faults)";
      send(std::move(r), version, Close::none);
      return;
    }
    ApiRequest req;
    req.method = std::string_view(request_.method_string().data(), request_.method_string().size());
    req.target = std::string_view(request_.target().data(), request_.target().size());
    req.body = request_.body();
    req.x_apikey = header(request_, "x-apikey");
    req.authorization = header(request_, "authorization");
    req.content_type = header(request_, "content-type");
    req.client = peer_;
    ApiResponse r = server_->api.handle(req);
    if (fault_ && fault_->oversized_mb) pad(r.body, std::size_t(fault_->oversized_mb) << 20);
    send(std::move(r), version,
         fault_ && fault_->close == FaultSet::Close::mid_answer ? Close::mid_answer : Close::none);
  }

  // Grows a JSON object answer to `size` bytes with a "padding" member: still valid JSON.
  static void pad(std::string& body, std::size_t size) {
    constexpr std::string_view member = ",\"padding\":\"\"";
    if (body.size() < 2 || body.back() != '}' || body.size() + member.size() >= size) return;
    const std::size_t fill = size - body.size() - member.size();
    body.pop_back();
    body.reserve(size);
    body += ",\"padding\":\"";
    body.append(fill, 'x');
    body += "\"}";
  }

  enum class Close { none, graceful, linger, mid_answer };

  void send(ApiResponse r, unsigned version, Close close) {
    release_upload();
    request_ = {};  // an upload's body is not needed any more
    response_ = Response{};
    response_.version(version);
    response_.result(r.status);
    response_.set(http::field::server, server_->server_name);
    response_.set(http::field::content_type, "application/json");
    if (r.retry_after) response_.set(http::field::retry_after, std::to_string(r.retry_after));
    if (!r.allow.empty()) response_.set(http::field::allow, r.allow);
    response_.body() = std::move(r.body);
    if (close != Close::none || server_->stopping) keep_alive_ = false;
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    lowest().expires_after(server_->limits.write_timeout);
    if (close == Close::mid_answer) {
      // The head and half the body, then the connection ends: the client sees a short body.
      std::ostringstream os;
      os << response_;
      raw_ = os.str();
      const std::size_t head = raw_.find("\r\n\r\n") + 4;
      const std::size_t cut = head + (raw_.size() - head) / 2;
      asio::async_write(stream_, asio::buffer(raw_.data(), cut),
                        [self = this->shared_from_this()](beast::error_code, std::size_t) { self->close_now(); });
      return;
    }
    http::async_write(stream_, response_, [self = this->shared_from_this(), close](beast::error_code ec, std::size_t) {
      if (ec) return self->close_now();
      self->response_ = {};
      if (!self->keep_alive_) return self->finish(close == Close::linger ? Close::linger : Close::graceful);
      self->wait_request();
    });
  }

  // Ends the connection after an answer. Plain TCP: shut down our side, then read what the client
  // still sends until it closes (bounded), so that closing with unread bytes does not reset the
  // connection before the client read the answer. TLS: close_notify, bounded likewise.
  void finish(Close how) {
    if constexpr (kTls) {
      lowest().expires_after(kLingerTime);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close_now(); });
    } else {
      beast::error_code ec;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec || how != Close::linger) {
        // Nothing unread is expected: wait only briefly for the client's end.
        lowest().expires_after(std::chrono::milliseconds(500));
      } else {
        lowest().expires_after(kLingerTime);
      }
      drain();
    }
  }

  void drain() {
    if constexpr (!kTls) {
      if (drained_ > kLingerBytes) return close_now();
      lowest().async_read_some(asio::buffer(scratch_),
                               [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                                 if (ec) return self->close_now();
                                 self->drained_ += n;
                                 self->drain();
                               });
    }
  }

  void close_now() {
    release_upload();
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  Response response_;
  std::optional<FaultSet> fault_;
  std::optional<Api::BodyLimit> special_limit_;  // this request's endpoint has its own body limit
  std::chrono::steady_clock::duration body_deadline_{};
  bool upload_ = false;  // counted in server_->uploads
  asio::steady_timer timer_;
  std::string raw_;
  std::string peer_;
  std::array<char, 16384> scratch_{};
  std::size_t drained_ = 0;
  bool reject_;
  bool keep_alive_ = true;
  bool waiting_ = false;  // idle between requests, or in an injected delay: a stop closes at once
  bool closed_ = false;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void HttpServer::Impl::on_accept(const beast::error_code& ec, tcp::socket socket) {
  if (stopping || !acceptor.is_open()) return;
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // Out of file descriptors or similar: try again shortly rather than spin.
    std::cerr << "sluice-cloud: accept: " << ec.message() << std::endl;
    accept_retry.emplace(io);
    accept_retry->expires_after(std::chrono::milliseconds(100));
    accept_retry->async_wait([self = shared_from_this()](beast::error_code e) {
      if (!e) self->accept();
    });
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  const std::size_t serving = sessions.size() - rejecting_count;
  bool reject = false;
  if (serving >= limits.max_connections) {
    if (rejecting_count >= kMaxRejecting) {
      socket.close(ignored);
      return accept();
    }
    reject = true;
    ++rejecting_count;
  }
  if (tls) {
    std::make_shared<Session<TlsStream>>(std::move(socket), shared_from_this(), reject)->start();
  } else {
    std::make_shared<Session<PlainStream>>(std::move(socket), shared_from_this(), reject)->start();
  }
  accept();
}

HttpServer::HttpServer(asio::io_context& io, const tcp::endpoint& listen, ssl::context* tls, Api& api, Faults& faults,
                       ServerLimits limits, std::string server_name)
    : impl_(std::make_shared<Impl>(io, listen, tls, api, faults, limits, std::move(server_name))) {}

HttpServer::~HttpServer() {
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

tcp::endpoint HttpServer::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

void HttpServer::start() { impl_->accept(); }

void HttpServer::stop(std::function<void()> done) {
  Impl& s = *impl_;
  s.stopping = true;
  beast::error_code ec;
  s.acceptor.close(ec);
  if (s.accept_retry) s.accept_retry->cancel();
  if (s.sessions.empty()) {
    asio::post(s.io, std::move(done));
    return;
  }
  s.on_idle = std::move(done);
  for (SessionBase* session : std::vector<SessionBase*>(s.sessions.begin(), s.sessions.end())) session->stop();
}

std::size_t HttpServer::connections() const noexcept { return impl_->sessions.size(); }

}  // namespace sluice::cloud
