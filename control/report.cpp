// The report page's figures (report.h).
#include "control/report.h"

#include <algorithm>

#include "control/hex.h"
#include "control/trace.h"

namespace sluice::control {
namespace {

const char* const kMessageKeys[] = {"clean", "malicious", "unscannable", "pending", "no_files"};
const char* const kFileKeys[] = {"clean", "malicious", "unknown", "not_looked_up"};
constexpr int64_t kThroughputMs = 10000;

int file_index(records::Reputation r) {
  switch (r) {
    case records::Reputation::clean: return 0;
    case records::Reputation::malicious: return 1;
    case records::Reputation::unknown: return 2;
    case records::Reputation::none: break;
  }
  return 3;
}

int message_index(records::Disposition d) {
  switch (d) {
    case records::Disposition::clean: return 0;
    case records::Disposition::malicious: return 1;
    case records::Disposition::unscannable: return 2;
    case records::Disposition::pending: return 3;
  }
  return 0;
}

template <typename C>
Json counts_json(const C& c) {
  Json m = Json::object(), f = Json::object();
  for (int i = 0; i < 5; ++i) m[kMessageKeys[i]] = c.messages[i];
  for (int i = 0; i < 4; ++i) f[kFileKeys[i]] = c.files[i];
  return Json{{"messages", m}, {"files", f}, {"rx_bytes", c.rx_bytes}, {"rx_packets", c.rx_packets}};
}

}  // namespace

ReportCollector::ReportCollector(const ReportSettings& settings, uint32_t instance)
    : s_(settings), instance_(instance) {
  s_.bucket_s = std::max(1u, s_.bucket_s);
  s_.buckets = std::max(1u, s_.buckets);
  s_.max_files = std::max<std::size_t>(1, s_.max_files);
  s_.max_messages = std::max<std::size_t>(1, s_.max_messages);
  ring_.resize(s_.buckets);
}

std::string ReportCollector::ref(uint64_t flow_id, uint64_t transaction) const {
  return message_ref(instance_, flow_id, transaction);
}

ReportCollector::Counts& ReportCollector::bucket(int64_t now_ms) {
  const int64_t len = int64_t{s_.bucket_s} * 1000;
  const int64_t start = now_ms - now_ms % len;
  Bucket& b = ring_[static_cast<std::size_t>(start / len) % ring_.size()];
  if (b.start_ms != start) b = Bucket{start, {}};
  return b.c;
}

void ReportCollector::on_record(const void* record, std::size_t size, int64_t now_ms) {
  if (size < 1) return;
  switch (*static_cast<const records::RecordType*>(record)) {
    case records::RecordType::message: {
      if (size != sizeof(records::MessageRecord)) return;
      const auto& m = *static_cast<const records::MessageRecord*>(record);
      std::string r = ref(m.flow.flow_id, m.transaction);
      auto [it, fresh] = envelopes_.try_emplace(r);
      it->second = Envelope{now_ms, m.flow.flow_id, m.transaction, std::string(m.subject.view()),
                            std::string(m.mail_from.view()), std::string(m.message_id.view())};
      if (fresh) {
        envelope_order_.push_back(std::move(r));
        while (envelope_order_.size() > s_.max_messages) {
          envelopes_.erase(envelope_order_.front());
          envelope_order_.pop_front();
        }
      }
      return;
    }
    case records::RecordType::file: {
      if (size != sizeof(records::FileRecord)) return;
      const auto& f = *static_cast<const records::FileRecord*>(record);
      file_seen(f.verdict, f.sha256, f.hashed, f.filename.view(), f.flow.flow_id, f.transaction, f.reading, now_ms);
      return;
    }
    case records::RecordType::member: {
      if (size != sizeof(records::MemberRecord)) return;
      const auto& f = *static_cast<const records::MemberRecord*>(record);
      file_seen(f.verdict, f.sha256, f.hashed, f.filename.view(), f.flow.flow_id, f.transaction, f.reading, now_ms);
      return;
    }
    case records::RecordType::verdict: {
      if (size != sizeof(records::VerdictRecord)) return;
      const auto& v = *static_cast<const records::VerdictRecord*>(record);
      // A message counts once, by its first verdict; the other reading of an ambiguous stream is
      // not another message.
      if (v.final_verdict || v.reading != records::Reading::primary) return;
      // A message without files has a verdict too (clean): it counts as no_files, not as clean.
      const int k = v.files == 0 && v.disposition == records::Disposition::clean ? 4 : message_index(v.disposition);
      ++bucket(now_ms).messages[k];
      ++totals_.messages[k];
      return;
    }
    default: return;
  }
}

void ReportCollector::file_seen(const records::FileVerdict& v, const uint8_t (&sha)[32], bool hashed,
                                std::string_view name, uint64_t flow_id, uint64_t transaction,
                                records::Reading reading, int64_t now_ms) {
  if (reading != records::Reading::primary) return;
  const int k = file_index(v.reputation);
  ++bucket(now_ms).files[k];
  ++totals_.files[k];
  if (v.reputation != records::Reputation::malicious || !hashed) return;
  const std::string hex = hex_string(sha, 32);
  auto [it, fresh] = malicious_.try_emplace(hex);
  MaliciousFile& m = it->second;
  if (fresh) {
    lru_.push_back(hex);
    m.lru = std::prev(lru_.end());
    if (malicious_.size() > s_.max_files) {
      malicious_.erase(lru_.front());
      lru_.pop_front();
    }
  } else {
    lru_.splice(lru_.end(), lru_, m.lru);
  }
  if (v.threat_name.len) m.threat_name = std::string(v.threat_name.view());
  if (m.filenames.size() < 5 && std::find(m.filenames.begin(), m.filenames.end(), name) == m.filenames.end())
    m.filenames.emplace_back(name);
  m.last_seen_ms = now_ms;
  std::string r = ref(flow_id, transaction);
  if (!m.recent.empty() && m.recent.back() == r) return;  // the same message again (twice attached)
  ++m.messages;
  m.recent.push_back(std::move(r));
  while (m.recent.size() > s_.recent_per_file) m.recent.pop_front();
}

void ReportCollector::sample_ports(uint64_t rx_bytes, uint64_t rx_packets, int64_t now_ms) {
  if (rx_bytes >= last_rx_bytes_ && rx_packets >= last_rx_packets_) {
    Counts& b = bucket(now_ms);
    b.rx_bytes += rx_bytes - last_rx_bytes_;
    b.rx_packets += rx_packets - last_rx_packets_;
    totals_.rx_bytes += rx_bytes - last_rx_bytes_;
    totals_.rx_packets += rx_packets - last_rx_packets_;
  }
  last_rx_bytes_ = rx_bytes;
  last_rx_packets_ = rx_packets;
  uint64_t messages = 0;
  for (uint64_t n : totals_.messages) messages += n;
  samples_.push_back({now_ms, totals_.rx_bytes, messages});
  while (samples_.size() > 2 && samples_[1].ms <= now_ms - kThroughputMs) samples_.pop_front();
}

Json ReportCollector::report(int64_t now_ms, unsigned window_s) const {
  const int64_t len = int64_t{s_.bucket_s} * 1000;
  const unsigned n = std::clamp<unsigned>((window_s + s_.bucket_s - 1) / s_.bucket_s, 1, s_.buckets);
  const int64_t current = now_ms - now_ms % len;
  Json series = Json::array();
  for (unsigned i = n; i-- > 0;) {
    const int64_t start = current - int64_t{i} * len;
    const Bucket& b = ring_[static_cast<std::size_t>(start / len) % ring_.size()];
    Json entry{{"start", rfc3339(start * 1000)}};
    entry.update(counts_json(b.start_ms == start ? b.c : Counts{}));
    series.push_back(std::move(entry));
  }
  double bits_per_s = 0, messages_per_s = 0;
  if (samples_.size() >= 2 && samples_.back().ms > samples_.front().ms) {
    const double s = (samples_.back().ms - samples_.front().ms) / 1000.0;
    bits_per_s = 8.0 * static_cast<double>(samples_.back().rx_bytes - samples_.front().rx_bytes) / s;
    messages_per_s = static_cast<double>(samples_.back().messages - samples_.front().messages) / s;
  }
  // The malicious files in most messages first (then the latest seen).
  std::vector<const std::pair<const std::string, MaliciousFile>*> top;
  for (const auto& e : malicious_) top.push_back(&e);
  std::sort(top.begin(), top.end(), [](auto* a, auto* b) {
    if (a->second.messages != b->second.messages) return a->second.messages > b->second.messages;
    if (a->second.last_seen_ms != b->second.last_seen_ms) return a->second.last_seen_ms > b->second.last_seen_ms;
    return a->first < b->first;
  });
  if (top.size() > s_.top_files) top.resize(s_.top_files);
  Json files = Json::array();
  for (const auto* e : top) {
    Json recent = Json::array();
    for (auto r = e->second.recent.rbegin(); r != e->second.recent.rend(); ++r) {
      Json m{{"ref", *r}};
      if (auto it = envelopes_.find(*r); it != envelopes_.end()) {
        const Envelope& en = it->second;
        m["time"] = rfc3339(en.time_ms * 1000);
        m["flow_id"] = en.flow_id;
        m["transaction"] = en.transaction;
        m["subject"] = en.subject;
        m["mail_from"] = en.mail_from;
        m["message_id"] = en.message_id;
      }
      recent.push_back(std::move(m));
    }
    files.push_back({{"sha256", e->first}, {"threat_name", e->second.threat_name}, {"filenames", e->second.filenames},
                     {"messages", e->second.messages}, {"last_seen", rfc3339(e->second.last_seen_ms * 1000)},
                     {"recent", std::move(recent)}});
  }
  return Json{{"bucket_s", s_.bucket_s},
              {"series", std::move(series)},
              {"totals", counts_json(totals_)},
              {"throughput", {{"rx_bits_per_s", bits_per_s}, {"messages_per_s", messages_per_s}}},
              {"top_malicious", std::move(files)},
              {"malicious_files_tracked", malicious_.size()}};
}

Json ReportCollector::analysis_summary(const Json& a) {
  if (!a.is_object() || a.empty()) return nullptr;
  Json out = Json::object();
  for (const char* k : {"pending_submissions", "messages_waiting", "submitted", "already_known", "waiting", "rejected",
                        "analysed", "completed", "malicious", "failed", "expired"})
    out[k] = a.value(k, uint64_t{0});
  uint64_t not_sent = 0;
  if (a.contains("not_sent") && a["not_sent"].is_object())
    for (const auto& [k, v] : a["not_sent"].items())
      if (v.is_number_integer() && v.get<int64_t>() > 0) not_sent += v.get<uint64_t>();
  out["not_sent"] = not_sent;
  if (a.contains("quarantine") && a["quarantine"].is_object()) out["quarantine_held"] = a["quarantine"].value("held", uint64_t{0});
  return out;
}

}  // namespace sluice::control
