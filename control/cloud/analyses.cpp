#include "control/cloud/analyses.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace sluice::cloud {

namespace {

int64_t system_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Sha256 sha256_of(std::string_view bytes) {
  Sha256 h{};
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), h.data(), &len, EVP_sha256(), nullptr);
  return h;
}

// 32 hex digits from the system's random source: ids cannot be guessed from one another.
std::string new_sample_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw StoreError("cannot make a sample id (no randomness)");
  static const char digits[] = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[2 * i] = digits[b[i] >> 4];
    s[2 * i + 1] = digits[b[i] & 15];
  }
  return s;
}

void write_file(const std::filesystem::path& path, std::string_view bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw StoreError("cannot write the sample to " + tmp.string() + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw StoreError("cannot write the sample to " + tmp.string() + ": " + std::strerror(e));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw StoreError("cannot write the sample to " + path.string() + ": " + std::strerror(e));
  }
}

SampleState next_state(SampleState s) {
  switch (s) {
    case SampleState::wait: return SampleState::prep;
    case SampleState::prep: return SampleState::run;
    case SampleState::run: return SampleState::proc;
    default: return s;
  }
}

std::string bounded_report(nlohmann::ordered_json report) {
  std::string text = report.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (text.size() <= kMaxReportBytes) return text;
  if (report.is_object()) {
    report.erase("metadata");
    report["truncated"] = true;
    text = report.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    if (text.size() <= kMaxReportBytes) return text;
  }
  return R"({"truncated":true})";
}

}  // namespace

Analyses::Analyses(boost::asio::io_context& io, Store& store, ScanPool& pool, AnalysisConfig config, WallClock wall)
    : io_(io),
      store_(store),
      pool_(pool),
      config_(std::move(config)),
      wall_(wall ? std::move(wall) : WallClock(system_seconds)),
      step_(std::chrono::duration_cast<Clock::duration>(config_.duration) / 4),
      timer_(io) {}

std::filesystem::path Analyses::file_of(const Sha256& h) const { return config_.samples_dir / sha256_hex(h); }

void Analyses::start() {
  std::error_code ec;
  std::filesystem::create_directories(config_.samples_dir, ec);
  if (ec || !std::filesystem::is_directory(config_.samples_dir))
    throw StoreError("cannot create the samples directory " + config_.samples_dir.string() + ": " +
                     (ec ? ec.message() : std::string("not a directory")));
  const auto now = Clock::now();
  for (Sample& s : store_.unfinished_samples()) {
    Live l;
    l.sha256 = s.sha256;
    l.size = s.size;
    l.filename = s.filename.value_or("");
    l.state = s.state;
    l.deadline = now + step_;  // the state it was in starts again
    pending_bytes_ += l.size;
    live_.emplace(s.id, std::move(l));
  }
  // Files of samples no longer analysed (finished while the file could not be removed, a .tmp
  // left by a crash) go.
  std::set<std::string> wanted;
  for (const auto& [id, l] : live_) wanted.insert(sha256_hex(l.sha256));
  for (const auto& e : std::filesystem::directory_iterator(config_.samples_dir, ec))
    if (!wanted.count(e.path().filename().string())) std::filesystem::remove(e.path(), ec);
  for (const auto& [id, l] : live_) scan(id, l);
  reschedule();
}

void Analyses::stop() {
  stopped_ = true;
  timer_.cancel();
  pool_.drop();
}

void Analyses::scan(const std::string& id, const Live& l) {
  pool_.submit(ScanPool::Job{file_of(l.sha256), l.filename, config_.max_sample_bytes},
               [this, alive = std::weak_ptr<int>(alive_), id](AnalysisResult r) {
                 if (!alive.expired()) on_scanned(id, std::move(r));
               });
}

Analyses::Submitted Analyses::submit(std::string_view bytes, std::optional<std::string> filename,
                                     std::string_view client) {
  const Sha256 hash = sha256_of(bytes);
  Submitted out;
  if (auto existing = store_.live_sample(hash)) {
    out.outcome = Outcome::existing;
    out.sample = std::move(*existing);
    return out;
  }
  const int64_t now = wall_();
  if (config_.daily_samples > 0) {
    const int64_t day = now >= 0 ? now / 86400 : 0;
    if (store_.samples_on_day(client, day) >= config_.daily_samples) {
      out.outcome = Outcome::daily_limit;
      out.retry_after = static_cast<unsigned>(86400 - (now - day * 86400));  // until 00:00 UTC
      return out;
    }
  }
  if (live_.size() >= config_.max_pending || pending_bytes_ + bytes.size() > config_.max_pending_bytes) {
    out.outcome = Outcome::queue_full;
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(config_.duration).count();
    out.retry_after = static_cast<unsigned>(std::max<int64_t>(1, seconds));
    return out;
  }
  const std::filesystem::path file = file_of(hash);
  write_file(file, bytes);
  try {
    out.sample = store_.add_sample(new_sample_id(), hash, std::move(filename), bytes.size(), client, now);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(file, ec);
    throw;
  }
  Live l;
  l.sha256 = hash;
  l.size = bytes.size();
  l.filename = out.sample.filename.value_or("");
  l.deadline = Clock::now() + step_;
  pending_bytes_ += l.size;
  auto [it, inserted] = live_.emplace(out.sample.id, std::move(l));
  scan(it->first, it->second);
  reschedule();
  return out;
}

std::optional<unsigned> Analyses::submissions_available(std::string_view client) {
  if (config_.daily_samples == 0) return std::nullopt;
  const int64_t now = wall_();
  const unsigned used = store_.samples_on_day(client, now >= 0 ? now / 86400 : 0);
  return used >= config_.daily_samples ? 0u : config_.daily_samples - used;
}

void Analyses::on_scanned(const std::string& id, AnalysisResult result) {
  if (stopped_) return;
  auto it = live_.find(id);
  if (it == live_.end()) return;
  it->second.result = std::move(result);
  reschedule();
}

void Analyses::on_timer() {
  const auto now = Clock::now();
  for (auto it = live_.begin(); it != live_.end();) {
    if (advance(it->first, it->second, now)) {
      pending_bytes_ -= it->second.size;
      it = live_.erase(it);
    } else {
      ++it;
    }
  }
  reschedule();
}

bool Analyses::advance(const std::string& id, Live& l, Clock::time_point now) {
  try {
    while (l.deadline <= now) {
      if (l.state == SampleState::proc) {
        if (!l.result) return false;  // the scan is late: finish when it arrives
        finish(id, l);
        return true;
      }
      const SampleState next = next_state(l.state);
      store_.set_sample_state(id, next);
      l.state = next;
      l.deadline += step_;
    }
  } catch (const StoreError& e) {
    std::cerr << "sluice-cloud: store error: sample " << id << ": " << e.what() << " (retried in 1 s)" << std::endl;
    l.deadline = now + std::chrono::seconds(1);
  }
  return false;
}

void Analyses::finish(const std::string& id, Live& l) {
  const AnalysisResult& a = *l.result;
  SampleResult r;
  std::optional<AnalysisDisposition> d;
  SampleState state;
  if (a.failed) {
    state = SampleState::fail;
    r.verdict = "failed";
    nlohmann::ordered_json report;
    report["error"] = a.error;
    r.report = bounded_report(std::move(report));
  } else {
    state = SampleState::succ;
    const bool malicious = a.score >= config_.malicious_score;
    r.score = a.score;
    r.verdict = malicious ? "malicious" : "clean";
    if (malicious) r.threat_name = a.threat_name;
    r.report = bounded_report(a.report);
    // Malicious: the file's disposition changes (and the change feed says so). Below the threshold
    // the score is recorded and the disposition stays unknown: a static score is no proof of
    // harmlessness, so the appliance applies its own threshold to it (DESIGN.md section 1, step 4)
    // and, seeing a score, never uploads the file again.
    d = AnalysisDisposition{malicious ? Disposition::malicious : Disposition::unknown, r.threat_name, a.score};
  }
  store_.finish_sample(id, state, r, d, wall_());  // a StoreError: advance() retries
  std::error_code ec;
  std::filesystem::remove(file_of(l.sha256), ec);
}

void Analyses::reschedule() {
  if (stopped_) return;
  std::optional<Clock::time_point> next;
  for (const auto& [id, l] : live_) {
    if (l.state == SampleState::proc && !l.result) continue;  // waits for its scan, not for time
    if (!next || l.deadline < *next) next = l.deadline;
  }
  if (!next) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(*next);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) on_timer();
  });
}

}  // namespace sluice::cloud
