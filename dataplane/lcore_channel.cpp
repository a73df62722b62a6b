// The control side of the lcore channels. Runs on the control thread only: it may allocate (the
// table of awaited ids, snapshot boxes) and yield the CPU while it waits.
#include "dataplane/lcore_channel.h"

#include <rte_pause.h>

#include <stdexcept>
#include <thread>

namespace sluice::dataplane {

namespace {

// Clears a request's box pointer once the box has moved elsewhere (into a ring, or deleted).
void clear_box(Request& rq) noexcept {
  if (rq.type != RequestType::config_snapshot) return;
  SnapshotPayload p = rq.as<SnapshotPayload>();
  p.box = nullptr;
  rq.set(p);
}

}  // namespace

struct LcoreChannels::CallState {
  std::vector<uint64_t> id;        // per lcore: the id awaited, 0 when none
  std::vector<CallResult> result;  // per lcore
  std::size_t remaining = 0;
};

LcoreChannels::LcoreChannels(unsigned lcores, std::size_t request_slots, std::size_t response_slots) {
  ports_.reserve(lcores);
  for (unsigned k = 0; k < lcores; ++k) ports_.push_back(std::make_unique<LcorePort>(request_slots, response_slots));
}

LcoreChannels::~LcoreChannels() {
  // The lcores have stopped: this thread may take the consumer's place on the request rings.
  for (auto& p : ports_) {
    Request rq;
    while (p->requests_.pop(rq)) discard(rq);
    if (p->has_waiting_) {
      discard(p->waiting_);
      p->has_waiting_ = false;
    }
    Response rs;
    while (p->responses_.pop(rs)) discard(rs);
  }
  for (auto& parked : parked_) discard(parked.second);
}

bool LcoreChannels::push(unsigned lcore, Request& rq, Waiter w) {
  rq.id = next_id_++;
  const auto it = waiting_.emplace(rq.id, w).first;
  if (!ports_[lcore]->requests_.push(rq)) {
    waiting_.erase(it);
    ++counters_.ring_full;
    discard(rq);
    return false;
  }
  ++counters_.requests_sent;
  clear_box(rq);
  return true;
}

Request LcoreChannels::copy_for_lcore(const Request& rq) {
  Request c = rq;
  if (c.type == RequestType::config_snapshot) {
    SnapshotPayload p = c.as<SnapshotPayload>();
    if (p.box != nullptr && p.clone != nullptr) {
      p.box = p.clone(p.box);
      c.set(p);
    }
  }
  return c;
}

std::optional<uint64_t> LcoreChannels::send(unsigned lcore, Request& rq) {
  if (lcore >= ports_.size()) throw std::out_of_range("LcoreChannels::send: no such lcore");
  if (!push(lcore, rq, Waiter::poll)) return std::nullopt;
  return rq.id;
}

std::vector<std::optional<uint64_t>> LcoreChannels::broadcast(Request& rq) {
  std::vector<std::optional<uint64_t>> ids(ports_.size());
  for (unsigned k = 0; k < ports_.size(); ++k) {
    Request c = copy_for_lcore(rq);
    if (push(k, c, Waiter::poll)) ids[k] = c.id;
  }
  discard(rq);  // every lcore got its own box
  return ids;
}

bool LcoreChannels::next_for_poll(unsigned& lcore, Response& rs) {
  if (!parked_.empty()) {
    lcore = parked_.front().first;
    rs = parked_.front().second;
    parked_.pop_front();
    return true;
  }
  const unsigned n = lcores();
  for (unsigned empty = 0; empty < n;) {
    const unsigned k = next_lane_;
    if (!ports_[k]->responses_.pop(rs)) {
      next_lane_ = (k + 1) % n;
      ++empty;
      continue;
    }
    ++counters_.responses;
    const auto it = waiting_.find(rs.id);
    const bool found = it != waiting_.end();
    const Waiter w = found ? it->second : Waiter::poll;
    if (found) waiting_.erase(it);
    if (found && w == Waiter::poll) {
      lcore = k;
      next_lane_ = (k + 1) % n;  // one lane does not starve the others
      return true;
    }
    // A call's id outside a call cannot be awaited any more: unmatched like an unknown id.
    if (found && w == Waiter::abandoned) {
      ++counters_.late_responses;
    } else {
      ++counters_.unmatched;
    }
    discard(rs);
  }
  return false;
}

void LcoreChannels::collect(CallState& st) {
  for (unsigned k = 0; k < lcores(); ++k) {
    Response rs;
    while (ports_[k]->responses_.pop(rs)) {
      ++counters_.responses;
      const auto it = waiting_.find(rs.id);
      if (it == waiting_.end()) {
        ++counters_.unmatched;
        discard(rs);
        continue;
      }
      const Waiter w = it->second;
      waiting_.erase(it);
      if (w == Waiter::poll) {  // matched: poll() hands it out
        parked_.emplace_back(k, rs);
        continue;
      }
      if (w == Waiter::call && st.id[k] == rs.id) {
        discard(rs);
        st.result[k] = CallResult{CallStatus::ok, rs};
        st.id[k] = 0;
        --st.remaining;
        continue;
      }
      if (w == Waiter::abandoned) {
        ++counters_.late_responses;
      } else {
        ++counters_.unmatched;
      }
      discard(rs);
    }
  }
}

std::vector<CallResult> LcoreChannels::call_some(const std::vector<unsigned>& lcores, Request& rq,
                                                 Clock::time_point deadline) {
  CallState st;
  st.id.assign(ports_.size(), 0);
  st.result.assign(ports_.size(), CallResult{CallStatus::ring_full, Response{}});
  for (const unsigned k : lcores) {
    Request c = copy_for_lcore(rq);
    if (!push(k, c, Waiter::call)) continue;
    st.id[k] = c.id;
    st.result[k].status = CallStatus::timeout;
    ++st.remaining;
  }
  discard(rq);
  // Spin briefly (an lcore answers within one loop iteration), then give the CPU away.
  for (unsigned round = 0;; ++round) {
    collect(st);
    if (st.remaining == 0 || Clock::now() >= deadline) break;
    if (round < 64) {
      rte_pause();
    } else {
      std::this_thread::yield();
    }
  }
  for (unsigned k = 0; k < ports_.size(); ++k) {
    if (st.id[k] == 0) continue;
    // A response may still come: the id stays known, so it is counted late and dropped.
    waiting_[st.id[k]] = Waiter::abandoned;
    ++counters_.timeouts;
  }
  return std::move(st.result);
}

CallResult LcoreChannels::call(unsigned lcore, Request rq, Clock::time_point deadline) {
  if (lcore >= ports_.size()) throw std::out_of_range("LcoreChannels::call: no such lcore");
  return call_some({lcore}, rq, deadline)[lcore];
}

std::vector<CallResult> LcoreChannels::call_all(Request rq, Clock::time_point deadline) {
  std::vector<unsigned> all(ports_.size());
  for (unsigned k = 0; k < all.size(); ++k) all[k] = k;
  return call_some(all, rq, deadline);
}

}  // namespace sluice::dataplane
