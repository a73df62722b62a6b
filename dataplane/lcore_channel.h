// Control thread <-> lcore request/response channels (DESIGN.md section 3, STYLE.md: the control
// plane reaches the data path through rings polled between bursts, as DPDK's
// examples/ip_pipeline/thread.c does). One request ring (control -> lcore) and one response ring
// (lcore -> control) per lcore, each a single-producer/single-consumer ring of fixed-size slots.
//
// Threads:
//  - `LcoreChannels` lives on the control thread; only that thread calls it.
//  - `LcorePort` k is used by lcore k only (`LcoreChannels::port(k)` hands it out before the lcores
//    start). Its side is noexcept, never locks, allocates, blocks or makes a syscall.
//
// Matching: the control side gives every request a unique id (from 1) and matches responses by id,
// never by position. A response for a call that already timed out is counted (`late_responses`)
// and dropped; a response whose id was never sent is counted (`unmatched`) and dropped.
//
// Configuration snapshots (`RequestType::config_snapshot`) carry ownership across the rings:
//  - `snapshot_request(std::shared_ptr<const T>)` (control side) allocates a "box": a heap
//    `std::shared_ptr<const T>` holding one reference to the new snapshot. The request owns it.
//  - Passing the request to send/broadcast/call/call_all hands the box to the channel; the caller's
//    request has its box cleared. broadcast and call_all give every lcore its own box (a copy of
//    the shared_ptr, made on the control side) and delete the caller's.
//  - The lcore's handler calls `take_snapshot(rq, rs, current)`: it swaps the box's shared_ptr with
//    the lcore's `current` (a pointer exchange: no reference count reaches zero, nothing is freed
//    on the lcore) and the response carries the same box back, now holding the previous snapshot.
//  - The control side deletes every box that comes back (after poll's callback returns, before
//    call/call_all return; late and unmatched responses too), which drops the previous snapshot's
//    reference on the control thread. A box whose request never left (ring full) is deleted at
//    once. A request built but never passed to the channel is released with `discard()`.
//  - A handler must not overwrite the payload of a config_snapshot response other than through
//    take_snapshot: the response starts as a copy of the request's payload, so a box always comes
//    back, even from a handler that does not know the type.
//  - Destroying `LcoreChannels` (after the lcores stopped) deletes the boxes still in its rings.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "records/spsc_ring.h"

namespace sluice::dataplane {

// The rings are records::SpscRing (records/spsc_ring.h), also used by the look-up lanes.
using records::SpscRing;
using records::kCacheLine;

// ---------------------------------------------------------------------------------------------
// Records.

enum class RequestType : uint16_t {
  ping = 1,             // liveness (Ping: the payload comes back as sent unless the handler sets it)
  config_snapshot = 2,  // swap in a new immutable configuration (SnapshotPayload, see above)
  message_verdict = 3,  // the verdict of a held message (MessageVerdict)
  cache_update = 4,     // not sent: the verdict cache is shared memory with one writer (pipeline/verdict_cache.h)
  // 5..: free. Keep values stable: they appear in counters and logs.
};

enum class ResponseStatus : uint16_t {
  ok = 0,
  unknown_type = 1,  // the lcore does not handle this type (the status a response starts with)
  not_found = 2,     // the object named by the request (a message, a flow) is not on that lcore
  bad_request = 3,   // malformed payload (a snapshot of the wrong type, no box)
  failed = 4,        // understood but not done (no room, for instance)
};

// Payload bytes per record: a record is two cache lines (128 bytes).
inline constexpr std::size_t kPayloadBytes = 112;

struct Ping {
  uint64_t token;
};

struct MessageVerdict {
  uint64_t flow_id;
  uint64_t transaction;
  uint32_t message;  // the message handle on that lcore
  uint8_t verdict;   // the inline action's code (pass, reject, defer, monitor), decided upstream
};

struct CacheUpdate {
  uint8_t sha256[32];
  uint8_t verdict;
};

// The raw form of a snapshot box (see the ownership notes at the top). The function pointers are
// set by snapshot_request<T>; `dispose` also identifies T (take_snapshot<T> checks it).
struct SnapshotPayload {
  void* box;                             // a heap std::shared_ptr<const T>, or null
  void (*dispose)(void* box) noexcept;   // control side only: deletes the box
  void* (*clone)(const void* box);       // control side only: a new box sharing the snapshot
};

namespace detail {
template <typename T, typename Record>
T payload_as(const Record& r) noexcept {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= kPayloadBytes, "payload type");
  T v;
  std::memcpy(&v, r.payload, sizeof(T));
  return v;
}
template <typename T, typename Record>
void set_payload(Record& r, const T& v) noexcept {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= kPayloadBytes, "payload type");
  std::memset(r.payload, 0, kPayloadBytes);
  std::memcpy(r.payload, &v, sizeof(T));
}
}  // namespace detail

struct Request {
  uint64_t id;  // set by the control side when sent
  RequestType type;
  uint16_t reserved[3];
  alignas(8) uint8_t payload[kPayloadBytes];

  template <typename T>
  T as() const noexcept { return detail::payload_as<T>(*this); }
  template <typename T>
  void set(const T& v) noexcept { detail::set_payload(*this, v); }
};

struct Response {
  uint64_t id;  // the request's id
  RequestType type;
  ResponseStatus status;
  uint16_t reserved[2];
  alignas(8) uint8_t payload[kPayloadBytes];  // starts as a copy of the request's payload

  template <typename T>
  T as() const noexcept { return detail::payload_as<T>(*this); }
  template <typename T>
  void set(const T& v) noexcept { detail::set_payload(*this, v); }
};

static_assert(sizeof(Request) == 128 && sizeof(Response) == 128);
static_assert(std::is_trivial_v<Request> && std::is_standard_layout_v<Request>);
static_assert(std::is_trivial_v<Response> && std::is_standard_layout_v<Response>);

template <typename T>
Request make_request(RequestType type, const T& payload) noexcept {
  Request r{};
  r.type = type;
  r.set(payload);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Configuration snapshots.

template <typename T>
struct SnapshotBox {
  using Ptr = std::shared_ptr<const T>;
  static void dispose(void* box) noexcept { delete static_cast<Ptr*>(box); }
  static void* clone(const void* box) { return new Ptr(*static_cast<const Ptr*>(box)); }
};

// Control side: a config_snapshot request owning one box with one reference to `snap`.
template <typename T>
Request snapshot_request(std::shared_ptr<const T> snap) {
  SnapshotPayload p{new typename SnapshotBox<T>::Ptr(std::move(snap)), &SnapshotBox<T>::dispose,
                    &SnapshotBox<T>::clone};
  return make_request(RequestType::config_snapshot, p);
}

// Control side: deletes the box of a config_snapshot request or response (no-op otherwise) and
// clears it.
template <typename Record>
void discard(Record& r) noexcept {
  if (r.type != RequestType::config_snapshot) return;
  SnapshotPayload p = r.template as<SnapshotPayload>();
  if (p.box != nullptr && p.dispose != nullptr) p.dispose(p.box);
  p.box = nullptr;
  r.set(p);
}

// Lcore side, in the handler: swaps the request's snapshot with `current` and sends the previous
// one back in the response's box. False (status bad_request, box returned untouched) when the
// request is not a snapshot of T or has no box.
template <typename T>
bool take_snapshot(const Request& rq, Response& rs, std::shared_ptr<const T>& current) noexcept {
  const SnapshotPayload p = rq.as<SnapshotPayload>();
  if (rq.type != RequestType::config_snapshot || p.box == nullptr || p.dispose != &SnapshotBox<T>::dispose) {
    rs.status = ResponseStatus::bad_request;
    return false;
  }
  static_cast<typename SnapshotBox<T>::Ptr*>(p.box)->swap(current);
  rs.set(p);
  rs.status = ResponseStatus::ok;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Lcore side.

class LcoreChannels;

struct LcorePortCounters {
  uint64_t requests = 0;            // requests taken and handled
  uint64_t responses = 0;           // responses pushed
  uint64_t response_ring_full = 0;  // polls that found the response ring full (a response waited)
};

class alignas(kCacheLine) LcorePort {
 public:
  LcorePort(std::size_t request_slots, std::size_t response_slots)
      : requests_(request_slots), responses_(response_slots) {}

  // Between bursts: first retries the response that found the ring full last time (if it still
  // does not fit, takes nothing: the request ring fills up and the control side sees ring_full);
  // then takes up to `max` requests, calls handler(const Request&, Response&) on each and pushes
  // the response. The response starts with the request's id, type and payload and status
  // unknown_type; the handler sets status (and payload). id and type are restored after the
  // handler. Returns the number of requests handled.
  template <typename Handler>
  unsigned poll(Handler&& handler, unsigned max) noexcept {
    static_assert(std::is_nothrow_invocable_v<Handler&, const Request&, Response&>,
                  "the handler runs on the lcore: it must be noexcept");
    if (has_waiting_) {
      if (!responses_.push(waiting_)) {
        ++counters_.response_ring_full;
        return 0;
      }
      has_waiting_ = false;
      ++counters_.responses;
    }
    unsigned n = 0;
    Request rq;
    while (n < max && requests_.pop(rq)) {
      ++n;
      ++counters_.requests;
      Response rs;
      rs.id = rq.id;
      rs.type = rq.type;
      rs.status = ResponseStatus::unknown_type;
      rs.reserved[0] = rs.reserved[1] = 0;
      std::memcpy(rs.payload, rq.payload, kPayloadBytes);
      handler(static_cast<const Request&>(rq), rs);
      rs.id = rq.id;
      rs.type = rq.type;
      if (!responses_.push(rs)) {
        waiting_ = rs;
        has_waiting_ = true;
        ++counters_.response_ring_full;
        break;
      }
      ++counters_.responses;
    }
    return n;
  }

  // A response is waiting for room in the response ring.
  bool response_waiting() const noexcept { return has_waiting_; }
  const LcorePortCounters& counters() const noexcept { return counters_; }

 private:
  friend class LcoreChannels;
  SpscRing<Request> requests_;    // control thread produces, this lcore consumes
  SpscRing<Response> responses_;  // this lcore produces, control thread consumes
  LcorePortCounters counters_;
  bool has_waiting_ = false;
  Response waiting_;
};

// ---------------------------------------------------------------------------------------------
// Control side.

struct ChannelCounters {
  uint64_t requests_sent = 0;   // requests accepted by a request ring
  uint64_t ring_full = 0;       // requests refused: that lcore's request ring was full
  uint64_t responses = 0;       // responses taken from the response rings (all kinds)
  uint64_t late_responses = 0;  // responses to calls that had timed out: dropped
  uint64_t unmatched = 0;       // responses with an id never sent (or already answered): dropped
  uint64_t timeouts = 0;        // per-lcore calls that reached their deadline unanswered
};

enum class CallStatus : uint8_t {
  ok,         // the response is in CallResult::response (its own status says what the lcore did)
  timeout,    // no response by the deadline; if it comes later it is counted late and dropped
  ring_full,  // not sent: that lcore's request ring was full
};

struct CallResult {
  CallStatus status;
  Response response;  // valid when status == ok; a snapshot box is already deleted (box null)
};

class LcoreChannels {
 public:
  using Clock = std::chrono::steady_clock;

  // One port per lcore, rings of at least the given number of slots (rounded up to a power of 2).
  LcoreChannels(unsigned lcores, std::size_t request_slots, std::size_t response_slots);
  // Only once no lcore polls any more: takes back and deletes the boxes still in the rings.
  ~LcoreChannels();
  LcoreChannels(const LcoreChannels&) = delete;
  LcoreChannels& operator=(const LcoreChannels&) = delete;

  unsigned lcores() const noexcept { return static_cast<unsigned>(ports_.size()); }
  // Lcore k's end, to hand to lcore k before it starts.
  LcorePort& port(unsigned lcore) noexcept { return *ports_[lcore]; }

  // Sends one request; its response comes back through poll(). Sets rq.id. nullopt when that
  // lcore's request ring is full (counted; a snapshot box is deleted).
  std::optional<uint64_t> send(unsigned lcore, Request& rq);
  // The same request to every lcore, each with its own id; nullopt for lcores whose ring was full.
  std::vector<std::optional<uint64_t>> broadcast(Request& rq);

  // Takes every response present and calls fn(unsigned lcore, const Response&) for those of
  // send/broadcast requests (late and unmatched ones are counted and dropped). A snapshot box is
  // valid during the call only. Returns how many fn received.
  template <typename Fn>
  std::size_t poll(Fn&& fn) {
    std::size_t n = 0;
    unsigned lcore;
    Response rs;
    while (next_for_poll(lcore, rs)) {
      fn(lcore, static_cast<const Response&>(rs));
      discard(rs);
      ++n;
    }
    return n;
  }

  // Sends and waits (polling, yielding the CPU between rounds) until the response is in or the
  // deadline passes. Responses of send/broadcast requests that arrive meanwhile are kept for the
  // next poll().
  CallResult call(unsigned lcore, Request rq, Clock::time_point deadline);
  // The same to every lcore at once; one result per lcore.
  std::vector<CallResult> call_all(Request rq, Clock::time_point deadline);

  const ChannelCounters& counters() const noexcept { return counters_; }
  // Requests sent whose response has not come back yet (including timed-out calls).
  std::size_t outstanding() const noexcept { return waiting_.size(); }

 private:
  enum class Waiter : uint8_t { poll, call, abandoned };
  struct CallState;

  bool push(unsigned lcore, Request& rq, Waiter w);
  Request copy_for_lcore(const Request& rq);
  bool next_for_poll(unsigned& lcore, Response& rs);
  void collect(CallState& st);
  std::vector<CallResult> call_some(const std::vector<unsigned>& lcores, Request& rq, Clock::time_point deadline);

  std::vector<std::unique_ptr<LcorePort>> ports_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Waiter> waiting_;       // id -> who waits for its response
  std::deque<std::pair<unsigned, Response>> parked_;  // poll()'s responses that came during a call
  unsigned next_lane_ = 0;                             // where next_for_poll resumes
  ChannelCounters counters_;
};

}  // namespace sluice::dataplane
