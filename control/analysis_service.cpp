#include "control/analysis_service.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "control/hex.h"
#include "control/quarantine_store.h"
#include "control/submission_store.h"
#include "pipeline/lookup_lane.h"
#include "pipeline/sample.h"
#include "pipeline/verdict_cache.h"

namespace sluice::control {
namespace {

using records::AnalysisStatus;
using records::UploadCriterion;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hex_of(const uint8_t* p) { return hex_string(p, 32); }

const char* reputation_text(records::Reputation r) {
  return r == records::Reputation::malicious ? "malicious" : r == records::Reputation::clean ? "clean" : "unknown";
}

}  // namespace

std::string analysis_message_key(uint64_t flow_id, uint64_t transaction) {
  return std::to_string(flow_id) + ":" + std::to_string(transaction);
}

AnalysisService::AnalysisService(AnalysisSettings settings, AnalysisClient& client, SubmissionStore* store,
                                 pipeline::VerdictCache* cache, std::vector<pipeline::LookupLane*> lanes,
                                 AnalysisHooks hooks, QuarantineStore* quarantine)
    : s_(settings), client_(client), store_(store), quarantine_(quarantine), cache_(cache), lanes_(std::move(lanes)),
      hooks_(std::move(hooks)), outbox_(lanes_.size()) {
  if (quarantine_) quarantine_size_->read(*quarantine_);  // what open() loaded; no job runs yet
}

AnalysisService::~AnalysisService() { stop(); }

void AnalysisService::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;  // callbacks still in the client or the scan pool find the service gone
}

uint64_t AnalysisService::max_bytes() const noexcept {
  return service_max_bytes_ ? std::min(service_max_bytes_, s_.max_sample_bytes) : s_.max_sample_bytes;
}

void AnalysisService::start() {
  if (store_) {
    const int64_t now = wall_ms();
    for (const Submission& sub : store_->pending()) {
      Sub& x = subs_[sub.sha256];
      x.ref = SampleRef{sub.endpoint, sub.sample_id};
      x.submitted_ms = sub.submitted_ms;
      x.state = sub.state;
      x.next_poll_ms = std::min(sub.next_poll_ms, now);  // resume at once
    }
    for (const Submission& sub : store_->finished()) {
      if (sub.end != SubmissionEnd::complete) continue;
      Result r;
      r.score = sub.score;
      r.failed = sub.state == SampleState::fail;
      r.reputation = sub.disposition == "malicious" ? records::Reputation::malicious
                     : sub.disposition == "clean"   ? records::Reputation::clean
                                                    : records::Reputation::unknown;
      remember(sub.sha256, r);
    }
  }
  resume_quarantine();
  next_limits_ = Clock::now();
  tick();
}

// The messages a previous run left held in the quarantine wait again for their files' analyses:
// each is known by its entry (its flow ids belong to that run), its verdict rebuilt from the
// metadata. A file whose submission is gone (aged out or refused meanwhile) is taken as expired.
void AnalysisService::resume_quarantine() {
  if (!quarantine_) return;
  QuarantineQuery q;
  q.state = QuarantineState::held;
  q.limit = 10000;
  std::vector<std::string> keys;
  for (;;) {
    const QuarantinePage page = quarantine_->list(q);
    for (const QuarantineEntry& e : page.entries) {
      const std::string key = "q:" + e.id;
      records::VerdictRecord v;
      v.timestamp_us = wall_ms() * 1000;
      v.flow.flow_id = e.flow_id;
      const bool v6 = e.client_ip.find(':') != std::string::npos;
      v.flow.ip_version = v6 ? 6 : 4;
      inet_pton(v6 ? AF_INET6 : AF_INET, e.client_ip.c_str(), v.flow.client_ip);
      inet_pton(v6 ? AF_INET6 : AF_INET, e.server_ip.c_str(), v.flow.server_ip);
      v.flow.client_port = e.client_port;
      v.flow.server_port = e.server_port;
      v.transaction = e.transaction;
      std::array<uint8_t, 32> bin{};
      v.has_message_sha256 = parse_sha256_hex(e.message_sha256, bin);
      std::memcpy(v.message_sha256, bin.data(), 32);
      v.disposition = records::Disposition::pending;
      v.reputation = true;
      v.files = v.unknown = e.files.size();
      Waiting& w = waiting_[key];
      for (const QuarantinedFile& f : e.files) {
        if (v.listed < records::kDecidingFiles) {
          records::DecidingFile& d = v.decided_by[v.listed++];
          d.filename.set(f.filename);
          if (parse_sha256_hex(f.sha256, bin)) std::memcpy(d.sha256, bin.data(), 32);
          d.hashed = true;
          d.reputation = records::Reputation::unknown;
        }
        if (f.pending.rfind("analysis_", 0) != 0) continue;
        ++v.pending;
        if (auto r = results_.find(f.sha256); r != results_.end()) {
          w.done.emplace_back(f.sha256, r->second);
        } else if (auto s = subs_.find(f.sha256); s != subs_.end()) {
          s->second.waiters.insert(key);
          w.shas.insert(f.sha256);
        } else {
          w.expired = true;
        }
      }
      v.deciding = v.listed;
      w.verdict = v;
      w.copied = true;  // stored already: never put again
      w.put = Put::stored;
      w.quarantine_id = e.id;
      keys.push_back(key);
      ++c_.resumed;
    }
    if (page.next.empty()) break;
    q.after = page.next;
  }
  for (const auto& key : keys) maybe_final(key);
}

void AnalysisService::remember(const std::string& sha, const Result& r) {
  if (results_.emplace(sha, r).second) {
    results_order_.push_back(sha);
    while (results_order_.size() > s_.max_results) {
      results_.erase(results_order_.front());
      results_order_.pop_front();
    }
  } else {
    results_[sha] = r;
  }
}

void AnalysisService::QuarantineSize::read(const QuarantineStore& q) noexcept {
  held.store(q.stats().held, std::memory_order_relaxed);
  bytes.store(q.stats().bytes, std::memory_order_relaxed);
}

void AnalysisService::store_job(std::function<void(SubmissionStore&)> job) {
  if (!store_ || !hooks_.blocking) return;
  SubmissionStore* st = store_;
  hooks_.blocking([st, job = std::move(job), errors = store_errors_] {
    const uint64_t before = st->stats().errors;  // the store counts its io failures
    job(*st);
    if (st->stats().errors != before) errors->fetch_add(1, std::memory_order_relaxed);
  });
}

void AnalysisService::event(const std::string& status, const std::string& sha, Json extra, const Ticket* t) {
  if (!hooks_.event) return;
  Json body = {{"sha256", sha}, {"status", status}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  if (t) {
    body["transaction"] = t->transaction;
    if (!t->filename.empty()) body["filename"] = t->filename;
  }
  hooks_.event("analysis", std::move(body), t ? &t->flow : nullptr);
}

std::size_t AnalysisService::unfinished() const noexcept {
  std::size_t n = subs_.size();
  for (const auto& [key, w] : waiting_) n += w.shas.empty();
  return n;
}

void AnalysisService::poll() {
  if (stopped_) return;
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    auto& out = outbox_[i];
    while (!out.empty() && lanes_[i]->push_answer(out.front())) out.pop_front();
    pipeline::AnalysisRequest rq;
    for (int n = 0; n < 64 && lanes_[i]->pop_analysis(rq); ++n) take(i, rq);
    pipeline::MessageCopy c;
    for (int n = 0; n < 16 && lanes_[i]->pop_message(c); ++n) take_copy(c);
  }
}

void AnalysisService::answer(const Ticket& t, AnalysisStatus status, UploadCriterion criterion, const Result* r) {
  records::LookupAnswer a{};
  a.ticket = t.ticket;
  a.item = t.item;
  a.analysis = true;
  std::memcpy(a.sha256, t.sha.data(), 32);
  a.verdict.analysis = status;
  a.verdict.criterion = criterion;
  if (r && !r->failed) {
    a.verdict.reputation = r->reputation;
    a.verdict.threat_score = static_cast<int16_t>(r->score);
    a.verdict.threat_name.set(r->threat_name);
  }
  if (status == AnalysisStatus::not_sent) ++c_.not_sent[static_cast<unsigned>(criterion)];
  auto& out = outbox_[t.lane];
  if (out.empty() && lanes_[t.lane]->push_answer(a)) return;
  ++c_.answers_deferred;
  out.push_back(a);
}

void AnalysisService::extra_full_event(const std::string& sha, const Ticket& t) {
  ++c_.waiting_full;
  event("not_sent", sha,
        {{"upload_criterion", "queue_full"}, {"detail", "analysis.max_waiting messages wait already"}}, &t);
}

void AnalysisService::take(std::size_t lane, pipeline::AnalysisRequest& rq) {
  ++c_.candidates;
  Ticket t{lane, rq.ticket, rq.item, {}, rq.flow, rq.transaction, std::string(rq.filename.view())};
  std::memcpy(t.sha.data(), rq.sha256, 32);
  // The bytes leave the lcore's pool here: copied out, the chain given back at once.
  auto bytes = std::make_shared<const std::string>(pipeline::sample_bytes(rq.sample));
  pipeline::release_sample(rq.sample);
  rq.sample = nullptr;
  const std::string sha = hex_of(rq.sha256);
  const std::string key = analysis_message_key(rq.flow.flow_id, rq.transaction);

  if (auto r = results_.find(sha); r != results_.end()) {
    ++c_.analysed;
    return answer(t, AnalysisStatus::analysed, UploadCriterion::none, &r->second);
  }
  const bool room = waiting_.size() < s_.max_waiting || waiting_.count(key);
  if (!room && (subs_.count(sha) || deciding_.count(sha))) {
    // Too many messages wait already: this one goes on without the result (the analysis itself
    // runs; a later copy of the file is decided by the cache).
    extra_full_event(sha, t);
    return answer(t, AnalysisStatus::not_sent, UploadCriterion::queue_full);
  }
  if (auto s = subs_.find(sha); s != subs_.end()) {
    ++c_.waiting;
    s->second.waiters.insert(key);
    waiting_[key].shas.insert(sha);
    store_job([sha, key](SubmissionStore& st) { st.add_waiter(sha, key); });
    event("waiting", sha, {{"endpoint", s->second.ref.endpoint}, {"sample_id", s->second.ref.id}}, &t);
    return answer(t, AnalysisStatus::waiting, UploadCriterion::none);
  }
  if (auto d = deciding_.find(sha); d != deciding_.end()) {
    d->second.tickets.push_back(std::move(t));
    return;
  }
  auto not_sent = [&](UploadCriterion c, Json extra) {
    extra["upload_criterion"] = records::upload_criterion_name(c);
    event("not_sent", sha, std::move(extra), &t);
    answer(t, AnalysisStatus::not_sent, c);
  };
  if (bytes->size() > max_bytes())
    return not_sent(UploadCriterion::size, {{"size", bytes->size()}, {"max_sample_bytes", max_bytes()}});
  if (deciding_.size() >= s_.upload_queue)
    return not_sent(UploadCriterion::queue_full, {{"upload_queue", s_.upload_queue}});

  Deciding& d = deciding_[sha];
  d.tickets.push_back(t);
  d.bytes = bytes;
  d.filename = t.filename;
  d.size = bytes->size();
  d.deadline = Clock::now() + std::chrono::milliseconds(s_.decision_ms);
  if (!hooks_.classify) return decide(sha);
  const bool queued = hooks_.classify(bytes, t.filename, [this, alive = alive_, sha](pipeline::PreclassResult r) {
    if (!*alive) return;
    if (!deciding_.count(sha)) return;
    if (!r.error.empty()) return finish(sha, AnalysisStatus::not_sent, UploadCriterion::preclass_error, r.error);
    if (!r.dynamic) return finish(sha, AnalysisStatus::not_sent, UploadCriterion::not_dynamic);
    deciding_[sha].reasons = r.reasons;
    decide(sha);
  });
  if (!queued) finish(sha, AnalysisStatus::not_sent, UploadCriterion::preclass_error, "the scan pool is full");
}

void AnalysisService::decide(const std::string& sha) {
  Deciding& d = deciding_[sha];
  client_.search(d.tickets.front().sha, d.deadline, [this, alive = alive_, sha](SearchOutcome o) {
    if (*alive) searched(sha, std::move(o));
  });
}

void AnalysisService::searched(const std::string& sha, SearchOutcome o) {
  auto it = deciding_.find(sha);
  if (it == deciding_.end()) return;
  if (o.error != AnalysisError::none)
    return finish(sha, AnalysisStatus::not_sent, UploadCriterion::unreachable, o.detail);
  if (o.found) {
    add_sub(sha, o.sample, o.state);
    return finish(sha, AnalysisStatus::already_known, UploadCriterion::none);
  }
  Deciding& d = it->second;
  client_.submit(d.tickets.front().sha, d.bytes, d.filename.empty() ? "sample" : d.filename, d.deadline,
                 [this, alive = alive_, sha](SubmitOutcome o) {
                   if (*alive) submitted(sha, std::move(o));
                 });
}

void AnalysisService::submitted(const std::string& sha, SubmitOutcome o) {
  if (!deciding_.count(sha)) return;
  switch (o.error) {
    case AnalysisError::none:
      add_sub(sha, o.sample, o.state);
      return finish(sha, o.already_known ? AnalysisStatus::already_known : AnalysisStatus::submitted,
                    UploadCriterion::none);
    case AnalysisError::sample_limit:
      submissions_available_ = 0;
      return finish(sha, AnalysisStatus::rejected, UploadCriterion::none, o.detail);
    case AnalysisError::too_large:
      return finish(sha, AnalysisStatus::not_sent, UploadCriterion::size, o.detail);
    default:
      return finish(sha, AnalysisStatus::not_sent, UploadCriterion::unreachable, o.detail);
  }
}

void AnalysisService::finish(const std::string& sha, AnalysisStatus status, UploadCriterion criterion,
                             const std::string& detail) {
  auto it = deciding_.find(sha);
  if (it == deciding_.end()) return;
  Deciding d = std::move(it->second);
  deciding_.erase(it);
  const bool pending = records::analysis_pending(status);
  const Sub* sub = pending ? &subs_[sha] : nullptr;
  for (std::size_t i = 0; i < d.tickets.size(); ++i) {
    const Ticket& t = d.tickets[i];
    // The first candidate made the decision; the others of the same file join it.
    AnalysisStatus st = pending && i > 0 ? AnalysisStatus::waiting : status;
    const std::string tkey = analysis_message_key(t.flow.flow_id, t.transaction);
    if (pending && waiting_.size() >= s_.max_waiting && !waiting_.count(tkey)) {
      extra_full_event(sha, t);
      answer(t, AnalysisStatus::not_sent, UploadCriterion::queue_full);
      continue;
    }
    Json extra = {{"size", d.size}};
    if (sub) {
      extra["endpoint"] = sub->ref.endpoint;
      extra["sample_id"] = sub->ref.id;
      const std::string key = analysis_message_key(t.flow.flow_id, t.transaction);
      subs_[sha].waiters.insert(key);
      waiting_[key].shas.insert(sha);
    }
    if (!d.reasons.empty() && i == 0) extra["dynamic"] = d.reasons;
    if (criterion != UploadCriterion::none) extra["upload_criterion"] = records::upload_criterion_name(criterion);
    if (!detail.empty()) extra["detail"] = detail;
    switch (st) {
      case AnalysisStatus::submitted: ++c_.submitted; break;
      case AnalysisStatus::waiting: ++c_.waiting; break;
      case AnalysisStatus::already_known: ++c_.already_known; break;
      case AnalysisStatus::rejected: ++c_.rejected; break;
      default: break;
    }
    event(std::string(records::analysis_status_name(st)), sha, std::move(extra), &t);
    answer(t, st, criterion);
  }
  if (sub) {
    // One record with every message that waits on it so far; later ones are added by add_waiter().
    Submission rec;
    rec.sha256 = sha;
    rec.endpoint = sub->ref.endpoint;
    rec.sample_id = sub->ref.id;
    rec.submitted_ms = sub->submitted_ms;
    rec.state = sub->state;
    rec.next_poll_ms = sub->next_poll_ms;
    for (const Ticket& t : d.tickets) {
      const std::string key = analysis_message_key(t.flow.flow_id, t.transaction);
      if (std::find(rec.quarantine_ids.begin(), rec.quarantine_ids.end(), key) == rec.quarantine_ids.end())
        rec.quarantine_ids.push_back(key);
    }
    store_job([rec](SubmissionStore& st) { st.add(rec); });
  }
}

void AnalysisService::add_sub(const std::string& sha, const SampleRef& ref, SampleState state) {
  const int64_t now = wall_ms();
  Sub& x = subs_[sha];
  x.ref = ref;
  x.submitted_ms = now;
  x.state = state;
  x.next_poll_ms = now + int64_t{s_.poll_interval_s} * 1000;
  if (state == SampleState::succ || state == SampleState::fail) x.next_poll_ms = now;  // done already: ask now
}

void AnalysisService::tick() {
  if (stopped_) return;
  const auto now = Clock::now();
  if (now >= next_limits_ && !limits_in_flight_) {
    limits_in_flight_ = true;
    client_.limits(now + std::chrono::milliseconds(s_.decision_ms), [this, alive = alive_](LimitsOutcome o) {
      if (!*alive) return;
      limits_in_flight_ = false;
      if (o.error != AnalysisError::none) {
        next_limits_ = Clock::now() + std::chrono::seconds(std::min(60u, s_.limits_refresh_s));
        return;
      }
      service_max_bytes_ = o.max_sample_bytes;
      submissions_available_ = o.submissions_available;
      next_limits_ = Clock::now() + std::chrono::seconds(s_.limits_refresh_s);
    });
  }
  const int64_t now_ms = wall_ms();
  const int64_t max_age_ms = int64_t{s_.max_age_h} * 3600 * 1000;
  std::vector<std::string> aged, due;
  for (auto& [sha, x] : subs_) {
    if (x.in_flight) continue;
    if (x.submitted_ms + max_age_ms <= now_ms)
      aged.push_back(sha);
    else if (x.next_poll_ms <= now_ms)
      due.push_back(sha);
  }
  for (const auto& sha : aged) expire(sha);
  for (const auto& sha : due) poll_sub(sha);
  // A message whose envelope did not come within 2 s is stored without it.
  std::vector<std::string> late;
  for (const auto& [key, w] : waiting_)
    if (w.put == Put::none && w.bytes && w.verdict && now - w.ready_since >= std::chrono::seconds(2)) late.push_back(key);
  for (const auto& key : late) try_quarantine(key, true);
  // The lcore writes a pending message's verdict record right after its last answer; one that
  // has not come a minute later was lost with its event (a full event ring, counted there). Its
  // files' analyses go on; the message gets no final verdict.
  std::vector<std::string> lost;
  for (const auto& [key, w] : waiting_)
    if (!w.verdict && now - w.since >= std::chrono::milliseconds(s_.decision_ms) + std::chrono::seconds(60))
      lost.push_back(key);
  for (const auto& key : lost) {
    for (const auto& sha : waiting_[key].shas)
      if (auto s = subs_.find(sha); s != subs_.end()) s->second.waiters.erase(key);
    waiting_.erase(key);
    ++c_.verdicts_lost;
  }
  if (quarantine_ && now >= next_retention_) {
    next_retention_ = now + std::chrono::hours(1);
    QuarantineStore* q = quarantine_;
    const int64_t t = wall_ms();
    if (hooks_.blocking)
      hooks_.blocking([q, t, size = quarantine_size_] {
        q->expire(t);
        size->read(*q);
      });
  }
  if (store_ && now >= next_store_expiry_) {  // finished records older than max_age_h go
    next_store_expiry_ = now + std::chrono::hours(1);
    const int64_t t = wall_ms();
    store_job([t](SubmissionStore& st) { st.expire(t); });
  }
}

void AnalysisService::take_copy(pipeline::MessageCopy& c) {
  auto bytes = std::make_shared<const std::string>(pipeline::sample_bytes(c.bytes));
  pipeline::release_sample(c.bytes);
  c.bytes = nullptr;
  auto it = waiting_.find(analysis_message_key(c.flow.flow_id, c.transaction));
  if (it == waiting_.end() || !quarantine_) {
    ++c_.copies_unclaimed;
    return;
  }
  it->second.bytes = std::move(bytes);
  it->second.copied = true;
  it->second.message_sha256 = hex_of(c.message_sha256);
  if (it->second.verdict) it->second.ready_since = Clock::now();
  try_quarantine(it->first, false);
}

void AnalysisService::on_message(const records::MessageRecord& m) {
  if (!quarantine_ || !m.summary.attachments) return;
  const std::string key = analysis_message_key(m.flow.flow_id, m.transaction);
  Envelope e;
  e.helo = std::string(m.helo.view());
  e.mail_from = std::string(m.mail_from.view());
  for (std::size_t at = 0; at < m.rcpt_bytes;) {
    const std::size_t n = ::strnlen(m.rcpts + at, m.rcpt_bytes - at);
    e.rcpt_to.emplace_back(m.rcpts + at, n);
    at += n + 1;
  }
  if (m.has_subject) e.subject = std::string(m.subject.view());
  if (m.has_message_id) e.message_id = std::string(m.message_id.view());
  auto it = waiting_.find(key);
  if (it != waiting_.end()) {
    it->second.envelope = std::move(e);
    try_quarantine(key, false);
    return;
  }
  if (envelopes_.insert_or_assign(key, std::move(e)).second) envelope_order_.push_back(key);
  while (envelope_order_.size() > kEnvelopes) {
    envelopes_.erase(envelope_order_.front());
    envelope_order_.pop_front();
  }
}

void AnalysisService::try_quarantine(const std::string& key, bool now) {
  auto it = waiting_.find(key);
  if (it == waiting_.end() || !quarantine_) return;
  Waiting& w = it->second;
  if (w.put != Put::none || !w.bytes || !w.verdict) return;
  if (!w.envelope)
    if (auto e = envelopes_.find(key); e != envelopes_.end()) w.envelope = std::move(e->second);
  if (!w.envelope && !now) return;
  w.put = Put::running;
  const records::VerdictRecord& v = *w.verdict;
  QuarantineEntry e;
  e.received_ms = v.timestamp_us / 1000;
  e.message_sha256 = w.message_sha256;
  e.flow_id = v.flow.flow_id;
  e.transaction = v.transaction;
  e.client_ip = ip_text(v.flow, true);
  e.client_port = v.flow.client_port;
  e.server_ip = ip_text(v.flow, false);
  e.server_port = v.flow.server_port;
  if (w.envelope) {
    e.helo = w.envelope->helo;
    e.mail_from = w.envelope->mail_from;
    e.rcpt_to = w.envelope->rcpt_to;
    e.subject = w.envelope->subject;
    e.message_id = w.envelope->message_id;
  }
  for (uint8_t i = 0; i < v.listed; ++i) {
    const records::DecidingFile& d = v.decided_by[i];
    QuarantinedFile f;
    f.filename = std::string(d.filename.view());
    f.sha256 = hex_of(d.sha256);
    f.reputation = d.reputation == records::Reputation::none ? "" : reputation_text(d.reputation);
    f.pending = "analysis_" + std::string(records::analysis_status_name(d.analysis));
    e.files.push_back(std::move(f));
  }
  e.reasons = {"analysis_pending"};
  QuarantineStore* q = quarantine_;
  auto bytes = w.bytes;
  const int64_t t = wall_ms();
  auto done = [this, alive = alive_, key](QuarantinePut r) {
    if (!*alive) return;
    auto it2 = waiting_.find(key);
    if (it2 == waiting_.end()) return;
    Waiting& ww = it2->second;
    ww.bytes.reset();  // on disk now (or never): memory holds no message past its put
    if (r.ok()) {
      ww.put = Put::stored;
      ww.quarantine_id = r.id;
      ++c_.quarantined;
      if (hooks_.quarantined && ww.verdict) hooks_.quarantined(ww.verdict->flow, ww.verdict->transaction, r.id, "");
    } else {
      ww.put = Put::not_stored;
      ww.not_stored_why = quarantine_error_name(r.error) + std::string(": ") + r.message;
      ++c_.not_stored;
      if (hooks_.quarantined && ww.verdict)
        hooks_.quarantined(ww.verdict->flow, ww.verdict->transaction, "", ww.not_stored_why);
      if (hooks_.alert)
        hooks_.alert({"quarantine_not_stored", Severity::warning,
                      "a message waiting for analysis could not be stored in the quarantine (" + ww.not_stored_why +
                          "); it is still analysed",
                      ww.verdict ? std::optional<records::FlowIdentity>(ww.verdict->flow) : std::nullopt, ""});
    }
    maybe_final(key);
  };
  if (!hooks_.blocking || !hooks_.post) {  // tests, tools: in place
    done(q->put(e, *bytes, t));
    quarantine_size_->read(*q);
    return;
  }
  hooks_.blocking([q, e = std::move(e), bytes, t, done = std::move(done), post = hooks_.post,
                   size = quarantine_size_]() mutable {
    QuarantinePut r = q->put(e, *bytes, t);
    size->read(*q);
    post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  });
}

void AnalysisService::poll_sub(const std::string& sha) {
  Sub& x = subs_[sha];
  x.in_flight = true;
  ++c_.polls;
  const auto deadline = Clock::now() + std::chrono::milliseconds(s_.decision_ms);
  const auto asked = Clock::now();
  client_.state(x.ref, deadline, [this, alive = alive_, sha, deadline, asked](StateOutcome o) {
    if (!*alive) return;
    auto it = subs_.find(sha);
    if (it == subs_.end()) return;
    Sub& x = it->second;
    const int64_t now = wall_ms();
    if (hooks_.polled)
      hooks_.polled(sha, x.ref.endpoint, o.error == AnalysisError::none ? sample_state_name(o.state) : "",
                    o.error == AnalysisError::none ? "" : std::string(to_string(o.error)) + (o.detail.empty() ? "" : ": " + o.detail),
                    std::chrono::duration<double, std::milli>(Clock::now() - asked).count());
    if (o.error == AnalysisError::not_found) {
      x.in_flight = false;
      Result r;
      r.failed = true;
      return complete(sha, r, SampleState::fail);
    }
    if (o.error != AnalysisError::none) {
      ++c_.poll_failures;
      x.in_flight = false;
      x.next_poll_ms = now + int64_t{s_.poll_interval_s} * 1000;
      return;
    }
    x.state = o.state;
    if (o.state == SampleState::fail) {
      x.in_flight = false;
      Result r;
      r.failed = true;
      return complete(sha, r, SampleState::fail);
    }
    if (o.state != SampleState::succ) {
      x.in_flight = false;
      x.next_poll_ms = now + int64_t{s_.poll_interval_s} * 1000;
      store_job([sha, st = o.state, next = x.next_poll_ms, now](SubmissionStore& s) { s.update(sha, st, next, now); });
      return;
    }
    client_.threat(x.ref, deadline + std::chrono::milliseconds(s_.decision_ms),
                   [this, alive, sha](ThreatOutcome t) {
                     if (!*alive) return;
                     auto it2 = subs_.find(sha);
                     if (it2 == subs_.end()) return;
                     it2->second.in_flight = false;
                     if (t.error != AnalysisError::none) {  // asked again at the next poll
                       ++c_.poll_failures;
                       it2->second.next_poll_ms = wall_ms() + int64_t{s_.poll_interval_s} * 1000;
                       return;
                     }
                     Result r;
                     r.failed = !t.score.has_value();
                     r.score = t.score.value_or(-1);
                     r.threat_name = t.threat_name;
                     r.reputation = r.failed                        ? records::Reputation::unknown
                                    : r.score >= s_.malicious_score ? records::Reputation::malicious
                                                                    : records::Reputation::clean;
                     complete(sha, r, r.failed ? SampleState::fail : SampleState::succ);
                   });
  });
}

void AnalysisService::complete(const std::string& sha, const Result& r, SampleState state) {
  auto it = subs_.find(sha);
  if (it == subs_.end()) return;
  Sub x = std::move(it->second);
  subs_.erase(it);
  const int64_t now = wall_ms();
  ++c_.completed;
  if (r.failed) ++c_.failed;
  if (r.reputation == records::Reputation::malicious) ++c_.malicious;
  remember(sha, r);
  std::array<uint8_t, 32> bin{};
  if (cache_ && !r.failed && parse_sha256_hex(sha, bin)) {
    records::FileVerdict v;
    v.reputation = r.reputation;
    v.threat_score = static_cast<int16_t>(r.score);
    v.threat_name.set(r.threat_name);
    v.source = records::kSourceCache;
    const unsigned ttl = r.reputation == records::Reputation::malicious ? s_.ttl_malicious_s : s_.ttl_clean_s;
    cache_->put(bin.data(), v, now + int64_t{ttl} * 1000, now);
  }
  const std::string disposition = r.failed ? "unknown" : reputation_text(r.reputation);
  Json extra = {{"endpoint", x.ref.endpoint}, {"sample_id", x.ref.id}, {"state", sample_state_name(state)},
                {"disposition", disposition}, {"messages", x.waiters.size()}};
  if (r.score >= 0) extra["score"] = r.score;
  if (!r.threat_name.empty()) extra["threat_name"] = r.threat_name;
  if (r.failed) extra["failed"] = true;
  event("complete", sha, std::move(extra));
  store_job([sha, state, score = r.score, disposition, now](SubmissionStore& st) {
    st.complete(sha, state, score, disposition, now);
  });
  for (const auto& key : x.waiters) release_waiter(key, sha, &r, false);
}

void AnalysisService::expire(const std::string& sha) {
  auto it = subs_.find(sha);
  if (it == subs_.end()) return;
  Sub x = std::move(it->second);
  subs_.erase(it);
  ++c_.expired;
  event("expired", sha, {{"endpoint", x.ref.endpoint}, {"sample_id", x.ref.id}, {"state", sample_state_name(x.state)},
                         {"max_age_h", s_.max_age_h}, {"messages", x.waiters.size()}});
  const int64_t now = wall_ms();
  store_job([now](SubmissionStore& st) { st.expire(now); });
  for (const auto& key : x.waiters) release_waiter(key, sha, nullptr, true);
}

void AnalysisService::release_waiter(const std::string& key, const std::string& sha, const Result* r, bool expired) {
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  Waiting& w = it->second;
  w.shas.erase(sha);
  if (r) w.done.emplace_back(sha, *r);
  if (expired) w.expired = true;
  maybe_final(key);
}

void AnalysisService::on_verdict(const records::VerdictRecord& v) {
  if (v.disposition != records::Disposition::pending || v.final_verdict) return;
  const std::string key = analysis_message_key(v.flow.flow_id, v.transaction);
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;  // its answers were never given here (another run): nothing waits
  it->second.verdict = v;
  if (it->second.bytes) it->second.ready_since = Clock::now();
  try_quarantine(key, false);
  maybe_final(key);
}

void AnalysisService::maybe_final(const std::string& key) {
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  Waiting& w = it->second;
  if (!w.verdict || !w.shas.empty()) return;
  if (quarantine_ && w.copied && (w.put == Put::none || w.put == Put::running)) {
    try_quarantine(key, true);  // the final verdict names the entry: it waits for the store
    return;
  }
  records::VerdictRecord f = *w.verdict;
  f.timestamp_us = wall_ms() * 1000;
  f.final_verdict = true;
  f.pending = 0;
  for (const auto& [sha, r] : w.done) {
    if (r.failed) continue;
    if (f.unknown) --f.unknown;
    (r.reputation == records::Reputation::malicious ? f.malicious : f.clean) += 1;
  }
  // The files listed: the analysed ones, with what analysis found (the malicious ones alone when any).
  const bool malicious = f.malicious > 0;
  uint8_t listed = 0;
  for (uint8_t i = 0; i < w.verdict->listed; ++i) {
    records::DecidingFile d = w.verdict->decided_by[i];
    const std::string sha = hex_of(d.sha256);
    for (const auto& [s, r] : w.done)
      if (s == sha && !r.failed) {
        d.reputation = r.reputation;
        d.threat_name.set(r.threat_name);
      }
    if (malicious && d.reputation != records::Reputation::malicious) continue;
    f.decided_by[listed++] = d;
  }
  f.listed = listed;
  f.deciding = listed;
  if (hooks_.policy) {
    pipeline::decide_verdict(f, hooks_.policy());
  } else {
    pipeline::decide_verdict(f, pipeline::VerdictPolicy{});
  }
  if (w.expired && f.disposition != records::Disposition::malicious) f.action = std::max(f.action, s_.expired_action);
  if (w.put == Put::stored) {
    f.quarantine = records::QuarantineMark::released;
    f.quarantine_id.set(w.quarantine_id);
    ++c_.released;
    QuarantineStore* q = quarantine_;
    const std::string id = w.quarantine_id, action(records::action_name(f.action));
    const std::string why = std::string("analysis ended: ") + std::string(records::disposition_name(f.disposition));
    const int64_t t = wall_ms();
    if (hooks_.blocking)
      hooks_.blocking([q, id, action, why, t, size = quarantine_size_] {
        q->release(id, action, "analysis", why, t);
        size->read(*q);
      });
  } else if (w.put == Put::not_stored || (quarantine_ && !w.copied)) {
    f.quarantine = records::QuarantineMark::not_stored;
  }
  ++c_.final_verdicts;
  if (hooks_.verdict) hooks_.verdict(f);
  waiting_.erase(it);
}

Json AnalysisService::stats() const {
  Json not_sent = Json::object();
  for (unsigned i = 1; i < records::kUploadCriteria; ++i)
    not_sent[std::string(records::upload_criterion_name(static_cast<UploadCriterion>(i)))] = c_.not_sent[i];
  Json j = {{"candidates", c_.candidates}, {"submitted", c_.submitted}, {"waiting", c_.waiting},
            {"already_known", c_.already_known}, {"rejected", c_.rejected}, {"analysed", c_.analysed},
            {"not_sent", not_sent}, {"polls", c_.polls}, {"poll_failures", c_.poll_failures},
            {"completed", c_.completed}, {"malicious", c_.malicious}, {"failed", c_.failed},
            {"expired", c_.expired}, {"final_verdicts", c_.final_verdicts},
            {"deciding", deciding_.size()}, {"pending_submissions", subs_.size()},
            {"messages_waiting", waiting_.size()}, {"answers_deferred", c_.answers_deferred},
            {"quarantine", {{"stored", c_.quarantined}, {"not_stored", c_.not_stored}, {"released", c_.released},
                            {"copies_unclaimed", c_.copies_unclaimed}, {"resumed", c_.resumed}}},
            {"verdicts_lost", c_.verdicts_lost}, {"waiting_full", c_.waiting_full},
            {"store_errors", store_errors_->load(std::memory_order_relaxed)}};
  if (quarantine_) {  // its size after the last change: entries held (not released or deleted), their bytes
    j["quarantine"]["held"] = quarantine_size_->held.load(std::memory_order_relaxed);
    j["quarantine"]["bytes"] = quarantine_size_->bytes.load(std::memory_order_relaxed);
  }
  j["limits"] = {{"max_sample_bytes", max_bytes()}};
  if (submissions_available_) j["limits"]["submissions_available"] = *submissions_available_;
  return j;
}

}  // namespace sluice::control
