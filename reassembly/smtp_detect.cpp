// SMTP by content. See smtp_detect.h for the contract.
#include "reassembly/smtp_detect.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "reassembly/flow_table.h"

namespace sluice::reassembly {
namespace {

// After a recognised start: text up to a line end within kDetectLineMax octets of the start of the
// direction. Control octets (other than HT, and CR right before LF) are not a command or reply line.
Detection judge_rest_of_line(const uint8_t* d, std::size_t n, std::size_t from) noexcept {
  const std::size_t end = std::min(n, kDetectLineMax);
  for (std::size_t i = from; i < end; ++i) {
    const uint8_t c = d[i];
    if (c == '\n') return Detection::smtp;
    if (c == '\r') {
      if (i + 1 < n && d[i + 1] != '\n') return Detection::not_smtp;
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) return Detection::not_smtp;
  }
  return Detection::undecided;  // the caller knows whether the bound was reached
}

}  // namespace

Detection judge_greeting(const uint8_t* d, std::size_t n) noexcept {
  static constexpr char kCode[3] = {'2', '2', '0'};
  for (std::size_t i = 0; i < n && i < 3; ++i)
    if (d[i] != kCode[i]) return Detection::not_smtp;
  if (n < 4) return Detection::undecided;
  if (d[3] != ' ' && d[3] != '-') return Detection::not_smtp;
  return judge_rest_of_line(d, n, 4);
}

Detection judge_helo(const uint8_t* d, std::size_t n) noexcept {
  bool ehlo = true, helo = true;
  for (std::size_t i = 0; i < n && i < 5; ++i) {
    // Letters fold to lower case; no other octet folds onto "ehlo" / "helo".
    const uint8_t c = i < 4 ? static_cast<uint8_t>(d[i] | 0x20) : d[i];
    ehlo = ehlo && c == static_cast<uint8_t>("ehlo "[i]);
    helo = helo && c == static_cast<uint8_t>("helo "[i]);
    if (!ehlo && !helo) return Detection::not_smtp;
  }
  if (n < 5) return Detection::undecided;
  return judge_rest_of_line(d, n, 5);
}

void SmtpProbe::reset() noexcept {
  for (int d = 0; d < 2; ++d) {
    len[d] = 0;
    seq[d] = 0;
    started[d] = full[d] = false;
  }
  packets = 0;
  server_dir = 1;
  last_dir = 0;
  last_before = 0;
}

ProbeVerdict SmtpProbe::add(int dir, uint32_t s, const uint8_t* p, std::size_t n, bool roles_known) noexcept {
  ++packets;
  last_dir = static_cast<uint8_t>(dir);
  last_before = len[dir];
  if (!started[dir]) {
    started[dir] = true;
    seq[dir] = s;
  } else {
    const auto ahead = static_cast<int32_t>(s - (seq[dir] + len[dir]));
    // A hole: the bytes to judge (and to replay) are not all here. Waiting for the retransmission
    // would need out-of-order storage; give up instead (rare in the first segments of a flow).
    if (ahead > 0) return ProbeVerdict::gave_up;
    const std::size_t seen = static_cast<std::size_t>(-static_cast<int64_t>(ahead));  // a retransmission's old part
    if (seen >= n) {
      n = 0;
    } else {
      p += seen;
      n -= seen;
    }
  }
  const std::size_t take = std::min<std::size_t>(n, kDetectLineMax - len[dir]);
  if (take) std::memcpy(data[dir] + len[dir], p, take);
  len[dir] = static_cast<uint16_t>(len[dir] + take);
  if (take < n) full[dir] = true;

  // Not SMTP as soon as one side says so; SMTP when one side shows its line whole.
  bool found = false;
  bool bound = packets >= kDetectPackets;
  for (int d = 0; d < 2; ++d) {
    if (!started[d]) continue;
    const Detection as_server = roles_known && d == 0 ? Detection::not_smtp : judge_greeting(data[d], len[d]);
    const Detection as_client = roles_known && d == 1 ? Detection::not_smtp : judge_helo(data[d], len[d]);
    if (as_server == Detection::not_smtp && as_client == Detection::not_smtp) return ProbeVerdict::not_smtp;
    if (found) continue;
    if (as_server == Detection::smtp || as_client == Detection::smtp) {
      found = true;
      server_dir = static_cast<uint8_t>(as_server == Detection::smtp ? d : d ^ 1);
    } else if (full[d] || len[d] >= kDetectLineMax) {
      bound = true;  // no line end within the bound
    }
  }
  if (found) return ProbeVerdict::smtp;
  return bound ? ProbeVerdict::gave_up : ProbeVerdict::pending;
}

ProbePool::ProbePool(std::size_t capacity)
    : slots_(new SmtpProbe[std::max<std::size_t>(1, capacity)]), capacity_(capacity) {}

ProbePool::~ProbePool() = default;

SmtpProbe* ProbePool::take(Flow* owner) noexcept {
  SmtpProbe* p = free_;
  if (p)
    free_ = p->next;
  else if (built_ < capacity_)
    p = &slots_[built_++];
  else
    return nullptr;
  p->reset();
  p->owner = owner;
  p->prev = tail_;
  p->next = nullptr;
  (tail_ ? tail_->next : head_) = p;
  tail_ = p;
  ++in_use_;
  return p;
}

void ProbePool::release(SmtpProbe* p) noexcept {
  (p->prev ? p->prev->next : head_) = p->next;
  (p->next ? p->next->prev : tail_) = p->prev;
  p->owner = nullptr;
  p->prev = nullptr;
  p->next = free_;
  free_ = p;
  --in_use_;
}

void swap_directions(Flow& f) noexcept {
  f.client_is_lo = !f.client_is_lo;
  std::swap(f.packets[0], f.packets[1]);
  std::swap(f.bytes[0], f.bytes[1]);
  std::swap(f.fin[0], f.fin[1]);
  std::swap(f.syn_seen[0], f.syn_seen[1]);
  std::swap(f.wscale[0], f.wscale[1]);
  std::swap(f.wscale_sent[0], f.wscale_sent[1]);
  std::swap(f.isn[0], f.isn[1]);
  std::swap(f.fin_seq[0], f.fin_seq[1]);
  if (SmtpProbe* p = f.probe) {
    std::swap(p->data[0], p->data[1]);
    std::swap(p->len[0], p->len[1]);
    std::swap(p->seq[0], p->seq[1]);
    std::swap(p->started[0], p->started[1]);
    std::swap(p->full[0], p->full[1]);
    p->server_dir ^= 1;
    p->last_dir ^= 1;
  }
}

}  // namespace sluice::reassembly
