// SMTP by content (issue 17, `smtp.detect: content`): whether a TCP flow on a port outside
// `smtp.ports` (and the implicit-TLS ports) carries SMTP, judged from the first payload bytes of
// each direction, as Suricata's protocol detection judges a flow by its first bytes.
//
// SMTP is recognised by
//   - a server greeting: "220" then ' ' or '-', text, and a line end (LF, CRLF) within
//     kDetectLineMax octets of the start;
//   - or a client's first line: "EHLO " or "HELO " (any case), text, and a line end within the same
//     bound (a session picked up after its greeting, or whose greeting was lost).
// Anything else decides `not_smtp` at once: an HTTP request or reply, a TLS record, binary, any
// other first line. A direction whose bytes are still a prefix of the above is undecided; the probe
// gives up (`gave_up`, taken as not SMTP) after kDetectPackets payload segments, kDetectLineMax
// octets without a line end, or a hole in a direction's bytes.
//
// Pure: the judges read bytes; a probe keeps the bytes it saw (to replay them into the session's
// streams once the flow is taken for SMTP) in fixed arrays, from a ProbePool allocated at start-up.
// No allocation per packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace sluice::reassembly {

struct Flow;

inline constexpr std::size_t kDetectLineMax = 512;  // RFC 5321 4.5.3.1.4-5: command and reply lines
inline constexpr unsigned kDetectPackets = 8;       // payload segments (both directions) before giving up

enum class Detection : uint8_t { undecided, smtp, not_smtp };

// One direction's bytes from its first payload octet, read as a server's greeting / a client's
// first command.
Detection judge_greeting(const uint8_t* d, std::size_t n) noexcept;
Detection judge_helo(const uint8_t* d, std::size_t n) noexcept;

// A flow's detection state (Flow::detect). `port`: on a configured port (or `ports` mode), never
// probed; `pending`: off-port, no verdict yet (a probe holds its bytes once it shows payload);
// `detected`: taken for SMTP by content; `bypassed`: not SMTP, later packets are only looked up.
enum class DetectState : uint8_t { port = 0, pending, detected, bypassed };

enum class ProbeVerdict : uint8_t { pending, smtp, not_smtp, gave_up };

// The bytes of one probed flow. Directions are the flow's (0: the presumed client's, to the server).
struct SmtpProbe {
  uint8_t data[2][kDetectLineMax];
  uint16_t len[2];
  uint32_t seq[2];       // sequence number of data[d][0]
  bool started[2];
  bool full[2];          // a segment did not fit whole
  uint8_t packets;
  uint8_t server_dir;    // once smtp: the direction that carries the server's bytes
  uint8_t last_dir;      // the direction of the last segment added,
  uint16_t last_before;  // and what that direction held before it
  // ProbePool links
  Flow* owner;
  SmtpProbe* prev;
  SmtpProbe* next;

  void reset() noexcept;
  // One segment's payload in direction `dir`. `roles_known`: the handshake said which side is the
  // client (direction 0); otherwise either side may turn out to be the server (server_dir).
  ProbeVerdict add(int dir, uint32_t seq, const uint8_t* p, std::size_t n, bool roles_known) noexcept;
  // The bytes of direction `d` to replay into a new session: all of them, except those of the
  // segment that decided (it goes through the normal path after the session starts).
  uint16_t replay_len(int d) const noexcept { return d == last_dir ? last_before : len[d]; }
};

// Probe slots of one lcore: capacity fixed at start-up (pages touched on first use), in use kept
// oldest first so that a full pool can take the oldest probe back.
class ProbePool {
 public:
  explicit ProbePool(std::size_t capacity);
  ~ProbePool();
  ProbePool(const ProbePool&) = delete;
  ProbePool& operator=(const ProbePool&) = delete;

  SmtpProbe* take(Flow* owner) noexcept;  // reset, newest; nullptr when every slot is in use
  void release(SmtpProbe* p) noexcept;
  SmtpProbe* oldest() const noexcept { return head_; }
  std::size_t in_use() const noexcept { return in_use_; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  std::unique_ptr<SmtpProbe[]> slots_;
  std::size_t capacity_;
  std::size_t built_ = 0;  // slots_[built_..] never used yet
  std::size_t in_use_ = 0;
  SmtpProbe* free_ = nullptr;
  SmtpProbe* head_ = nullptr;
  SmtpProbe* tail_ = nullptr;
};

// The flow's two directions trade places (a probe found the presumed client to be the server):
// the client endpoint, and every per-direction field of the entry and of its probe.
void swap_directions(Flow& f) noexcept;

}  // namespace sluice::reassembly
