#include "control/sightings.h"

#include <cstring>

#include "control/event_render.h"
#include "control/hex.h"
#include "pipeline/file_type.h"
#include "records/event_records.h"

namespace sluice::control {
namespace {

std::string sha_hex(const uint8_t (&sha)[32]) { return hex_string(sha, 32); }

void add_file(SightedMessage& m, std::string sha, std::string name, std::string archive_path, uint64_t size,
              uint8_t type, const records::FileVerdict& v, records::Reading reading) {
  SightedFile f;
  f.sha256 = std::move(sha);
  f.filename = std::move(name);
  f.archive_path = std::move(archive_path);
  f.size = size;
  f.file_type = pipeline::file_type_name(static_cast<pipeline::FileType>(type));
  if (v.reputation != records::Reputation::none) f.reputation = std::string(records::reputation_name(v.reputation));
  f.threat_name = std::string(v.threat_name.view());
  if (reading != records::Reading::primary) f.reading = records::reading_name(reading);
  m.files.push_back(std::move(f));
}

}  // namespace

SightingCollector::Pending& SightingCollector::at(const Key& k, int64_t now_ms) {
  auto it = pending_.find(k);
  if (it != pending_.end()) return it->second;
  while (pending_.size() >= max_pending_ && !arrival_.empty()) {
    // The oldest waiting message goes as it is (keys of messages already taken are skipped).
    auto oldest = pending_.find(arrival_.front());
    arrival_.pop_front();
    if (oldest != pending_.end()) finish(oldest, false);
  }
  if (arrival_.size() > 2 * max_pending_) {  // keep the order list from growing with taken keys
    std::deque<Key> live;
    for (const Key& a : arrival_)
      if (pending_.count(a)) live.push_back(a);
    arrival_.swap(live);
  }
  arrival_.push_back(k);
  Pending& p = pending_[k];
  p.first_ms = now_ms;
  p.message.flow_id = k.flow_id;
  p.message.transaction = k.transaction;
  p.message.appliance = appliance_;
  stats_.pending = pending_.size();
  return p;
}

void SightingCollector::copy_envelope(const SightedMessage& from, SightedMessage& to) const {
  to.client_ip = from.client_ip;
  to.server_ip = from.server_ip;
  to.client_port = from.client_port;
  to.server_port = from.server_port;
  to.mail_from = from.mail_from;
  to.rcpt_to = from.rcpt_to;
  to.message_id = from.message_id;
  to.subject = from.subject;
  to.header_from = from.header_from;
  to.header_to = from.header_to;
  to.header_cc = from.header_cc;
}

void SightingCollector::finish(std::map<Key, Pending>::iterator it, bool complete) {
  Pending& p = it->second;
  if (!complete) ++stats_.incomplete;
  if (it->first.reading == 0 && p.smtp) {
    // Kept for the other readings' verdicts that come later.
    const std::pair<uint64_t, uint64_t> id{it->first.flow_id, it->first.transaction};
    if (recent_order_.size() < kRecent) {
      recent_order_.push_back(id);
    } else {
      recent_.erase(recent_order_[recent_next_]);
      recent_order_[recent_next_] = id;
      recent_next_ = (recent_next_ + 1) % kRecent;
    }
    SightedMessage env;
    copy_envelope(p.message, env);
    recent_[id] = std::move(env);
  }
  if (p.message.files.empty()) {
    if (complete) ++stats_.without_files;
  } else {
    ++stats_.ready;
    ready_.push_back(std::move(p.message));
  }
  pending_.erase(it);
  stats_.pending = pending_.size();
}

void SightingCollector::try_finish(const Key& k) {
  auto it = pending_.find(k);
  if (it == pending_.end() || !it->second.verdict) return;
  if (k.reading != 0 && !it->second.smtp) {
    // The other reading takes its primary's envelope (kept, or still waiting).
    auto r = recent_.find({k.flow_id, k.transaction});
    auto primary = pending_.find(Key{k.flow_id, k.transaction, 0});
    if (r != recent_.end()) {
      copy_envelope(r->second, it->second.message);
      it->second.smtp = true;
    } else if (primary != pending_.end() && primary->second.smtp) {
      copy_envelope(primary->second.message, it->second.message);
      it->second.smtp = true;
    }
  }
  if (it->second.smtp) finish(it, true);
  // A primary now complete lets its other readings that wait go too.
  if (k.reading == 0)
    for (uint8_t r = 1; r <= 2; ++r) try_finish(Key{k.flow_id, k.transaction, r});
}

void SightingCollector::on_record(const void* record, std::size_t size, int64_t now_ms) {
  if (size < sizeof(records::RecordType)) return;
  records::RecordType type;
  std::memcpy(&type, record, sizeof type);
  switch (type) {
    case records::RecordType::file: {
      if (size != sizeof(records::FileRecord)) return;
      const auto& f = *static_cast<const records::FileRecord*>(record);
      if (!f.hashed) return;
      Pending& p = at({f.flow.flow_id, f.transaction, static_cast<uint8_t>(f.reading)}, now_ms);
      add_file(p.message, sha_hex(f.sha256), std::string(f.filename.view()), "", f.size, f.file_type, f.verdict,
               f.reading);
      return;
    }
    case records::RecordType::member: {
      if (size != sizeof(records::MemberRecord)) return;
      const auto& m = *static_cast<const records::MemberRecord*>(record);
      if (!m.hashed) return;
      Pending& p = at({m.flow.flow_id, m.transaction, static_cast<uint8_t>(m.reading)}, now_ms);
      add_file(p.message, sha_hex(m.sha256), std::string(m.archive_filename.view()), std::string(m.filename.view()),
               m.size, m.file_type, m.verdict, m.reading);
      return;
    }
    case records::RecordType::verdict: {
      if (size != sizeof(records::VerdictRecord)) return;
      const auto& v = *static_cast<const records::VerdictRecord*>(record);
      const Key k{v.flow.flow_id, v.transaction, static_cast<uint8_t>(v.reading)};
      auto it = pending_.find(k);
      if (v.final_verdict && it == pending_.end()) return;  // the first one was taken already
      Pending& p = at(k, now_ms);
      if (p.verdict) return;  // a final verdict: the sighting keeps the first
      p.verdict = true;
      p.message.time_ms = now_ms;
      p.message.disposition = std::string(records::disposition_name(v.disposition));
      p.message.action = std::string(records::action_name(v.action));
      if (v.has_message_sha256) p.message.message_sha256 = sha_hex(v.message_sha256);
      try_finish(k);
      return;
    }
    case records::RecordType::message: {
      if (size != sizeof(records::MessageRecord)) return;
      const auto& m = *static_cast<const records::MessageRecord*>(record);
      const Key k{m.flow.flow_id, m.transaction, 0};
      Pending& p = at(k, now_ms);
      p.smtp = true;
      SightedMessage& s = p.message;
      s.client_ip = ip_text(m.flow, true);
      s.server_ip = ip_text(m.flow, false);
      s.client_port = m.flow.client_port;
      s.server_port = m.flow.server_port;
      s.mail_from = std::string(m.mail_from.view());
      s.rcpt_to.clear();
      for (uint16_t off = 0; off < m.rcpt_bytes;) {
        const std::string_view r(m.rcpts + off);
        s.rcpt_to.emplace_back(r);
        off = static_cast<uint16_t>(off + r.size() + 1);
      }
      if (s.message_sha256.empty() && m.has_sha256) s.message_sha256 = sha_hex(m.sha256);
      s.message_id = std::string(m.message_id.view());
      s.subject = std::string(m.subject.view());
      s.header_from = std::string(m.header_from.view());
      s.header_to = std::string(m.header_to.view());
      s.header_cc = std::string(m.header_cc.view());
      if (s.time_ms == 0) s.time_ms = now_ms;
      try_finish(k);
      return;
    }
    default:
      return;
  }
}

// See sightings.h.
void adopt_learned(SightedMessage& m, const std::string& sha256, const std::string& disposition) {
  if (m.disposition != "pending") return;
  for (SightedFile& f : m.files)
    if (f.sha256 == sha256 && (f.reputation.empty() || f.reputation == "unknown")) f.reputation = disposition;
}

void SightingCollector::learned(const std::string& sha256, const std::string& disposition) {
  for (auto& [k, p] : pending_) adopt_learned(p.message, sha256, disposition);
  for (SightedMessage& m : ready_) adopt_learned(m, sha256, disposition);
}

std::vector<SightedMessage> SightingCollector::take(int64_t now_ms) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto next = std::next(it);
    if (now_ms - it->second.first_ms > max_wait_ms_) finish(it, false);
    it = next;
  }
  std::vector<SightedMessage> out;
  out.swap(ready_);
  return out;
}

std::vector<SightedMessage> SightingCollector::flush_all() {
  while (!pending_.empty()) {
    auto it = pending_.begin();
    const bool complete = it->second.smtp && it->second.verdict;
    finish(it, complete);
  }
  std::vector<SightedMessage> out;
  out.swap(ready_);
  return out;
}

}  // namespace sluice::control
