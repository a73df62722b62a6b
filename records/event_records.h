// The event model (DESIGN.md section 7): what the lcores tell the control plane, as typed,
// fixed-size records. Lcores fill a record and hand it to a RecordSink (the data plane carries
// it over the lcore's event ring); the control side acts on it (renders it to JSON in
// control/event_render, and later issues look files up, store messages, raise alerts) without
// parsing any text.
//
// Rules of the records:
// - plain structs (trivially copyable): the ring copies them byte for byte; no pointer to memory
//   an lcore may reuse, no std::string;
// - identity is binary: addresses are 16 bytes (IPv4 in the first 4), ports host order; text is
//   made on the control side;
// - every count, and the transaction index that counts a session's messages, is uint64_t, as are
//   the producers' counters it is copied from: none wraps, whatever a session sends (a uint16
//   rcpt_count once reported 70,000 recipients as 4,464);
// - enumerations of other modules travel as their underlying uint8_t (the field's comment names
//   the enum): this header sits below reassembly/ and pipeline/ and includes neither;
// - every text field is a Text<N>: bounded, cut on overflow as its producer decides (file names
//   keep their end, see Text::set_keep_end).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "records/text.h"
#include "records/verdict_records.h"

namespace sluice::records {


// Which record a buffer holds: the first member of every record.
enum class RecordType : uint8_t { message = 1, file, member, flow, anomaly, verdict };

// A TCP connection as events name it: the client is `src`, the server `dest`.
struct FlowIdentity {
  uint64_t flow_id = 0;
  uint8_t ip_version = 4;  // 4 or 6
  uint8_t client_ip[16] = {};
  uint8_t server_ip[16] = {};
  uint16_t client_port = 0;
  uint16_t server_port = 0;
};

// Which reading of a DATA stream a message is (reassembly/smtp_reading.h): the session's own, or
// the other reading of an ambiguous end of data (SMTP smuggling).
enum class Reading : uint8_t { primary, one_message, split };
constexpr const char* reading_name(Reading r) noexcept {
  return r == Reading::one_message ? "one_message" : r == Reading::split ? "split" : "primary";
}

// What identifies a message in events (DESIGN.md section 7), handed from the reassembler to the
// pipeline with each message.

struct MessageContext {
  FlowIdentity flow;
  uint64_t transaction = 0;  // index of the message in its session
  // The primary reading, or the other reading of the transaction's ambiguous DATA stream (then
  // its files are looked up but never uploaded, never held or spooled, and nothing is enforced).
  Reading reading = Reading::primary;
  int64_t now_us = 0;        // time of the packet that carried the bytes
  // At its end: the DATA stream used an end-of-data sequence that servers read differently (a bare
  // LF or CR around the dot: SMTP smuggling), so some server could see other messages in it.
  bool smuggling = false;
};

// What the attachment pipeline adds to a message's `smtp` event.
struct MessageSummary {
  bool present = false;         // a pipeline observed the message
  uint64_t attachments = 0;
  uint32_t mime_anomalies = 0;  // bit i: pipeline::MimeAnomaly(i)
};

inline constexpr std::size_t kHeloBytes = 256;
inline constexpr std::size_t kAddrBytes = 256;   // RFC 5321 4.5.3.1.3: path up to 256 octets
inline constexpr std::size_t kRcptBytes = 2048;  // recipients kept per message, NUL-separated
inline constexpr std::size_t kHeaderValueBytes = 998;  // RFC 5322 2.1.1: a line's limit
inline constexpr std::size_t kFileNameBytes = 1024;
inline constexpr std::size_t kFileNamesBytes = 2048;  // a file's name candidates, NUL-separated
inline constexpr std::size_t kContentTypeBytes = 128;
inline constexpr std::size_t kMimePathBytes = 64;
inline constexpr std::size_t kDetailBytes = 128;

// shutdown: sluiced stopped (SIGTERM, SIGINT) before the end of data, not the client.
enum class IncompleteReason : uint8_t { none, gap, memcap, aborted, shutdown };

// One message (DATA or BDAT): the `smtp` event. Written when the server answers the end of data
// or when the connection ends first.
struct MessageRecord {
  RecordType type = RecordType::message;
  int64_t timestamp_us = 0;
  FlowIdentity flow;
  uint64_t transaction = 0;
  Text<kHeloBytes> helo;
  Text<kAddrBytes> mail_from;
  char rcpts[kRcptBytes];       // rcpt_kept addresses, each NUL-terminated
  uint16_t rcpt_bytes = 0;      // used of rcpts (at most kRcptBytes)
  uint64_t rcpt_kept = 0;
  uint64_t rcpt_count = 0;      // every RCPT command, also those not kept
  bool bdat = false;            // method BDAT, else DATA
  bool starttls = false;
  bool has_sha256 = true;       // false: its hash, computed on a worker, was lost (back-pressure)
  uint8_t sha256[32];
  uint64_t size = 0;
  bool has_subject = false, has_message_id = false;
  Text<kHeaderValueBytes> subject;
  Text<kHeaderValueBytes> message_id;
  // The top-level header's From, To and Cc as written (first occurrence, first 998 octets,
  // unfolded, not decoded); empty: absent.
  Text<kHeaderValueBytes> header_from, header_to, header_cc;
  MessageSummary summary;
  uint16_t server_reply = 0;    // 0: no reply seen
  bool complete = true;
  IncompleteReason incomplete_reason = IncompleteReason::none;
  bool detected = false;        // a session off the SMTP ports, taken for SMTP by its content
};

// One attachment: the `file` event.
struct FileRecord {
  RecordType type = RecordType::file;
  int64_t timestamp_us = 0;
  FlowIdentity flow;
  uint64_t transaction = 0;
  Text<kFileNameBytes> filename;
  Text<kFileNameBytes> filename_alt;  // empty: none
  // Every name a client could show (pipeline::PartInfo::filenames), NUL-separated; names that
  // do not fit whole are left out.
  Text<kFileNamesBytes> filenames;
  Text<kContentTypeBytes> content_type;
  Text<16> disposition;
  uint8_t encoding = 0;      // pipeline::TransferEncoding
  uint64_t size = 0;
  bool hashed = false;       // sha256, file_type and type_mismatch are valid
  uint8_t sha256[32];
  bool has_message_sha256 = false;
  uint8_t message_sha256[32];
  Text<kMimePathBytes> mime_path;
  bool uuencoded = false;
  bool truncated = false;
  uint8_t file_type = 0;     // pipeline::FileType
  uint8_t mismatch = 0;      // pipeline::TypeMismatch bits
  uint64_t members = 0;
  uint8_t unscannable = 0;   // pipeline::Unscannable
  Text<kDetailBytes> unscannable_detail;
  FileVerdict verdict;       // its reputation (none: not looked up)
  Reading reading = Reading::primary;  // of its message's DATA stream
  uint8_t mime_reading = 0;            // pipeline::MimeReading: which reading of its MIME part
};

// One archive member: also a `file` event.
struct MemberRecord {
  RecordType type = RecordType::member;
  int64_t timestamp_us = 0;
  FlowIdentity flow;
  uint64_t transaction = 0;
  Text<kFileNameBytes> filename;  // its path in the archive
  Reading reading = Reading::primary;
  uint64_t size = 0;
  bool hashed = false;
  uint8_t sha256[32];
  uint8_t parent_sha256[32];
  uint32_t depth = 0;
  bool has_message_sha256 = false;
  uint8_t message_sha256[32];
  Text<kMimePathBytes> mime_path;            // the attachment's
  Text<kFileNameBytes> archive_filename;     // the attachment's
  uint8_t file_type = 0;   // pipeline::FileType
  uint8_t mismatch = 0;    // pipeline::TypeMismatch bits (extension only)
  uint8_t unscannable = 0; // pipeline::Unscannable
  FileVerdict verdict;     // its reputation (none: not looked up)
};

enum class AppProto : uint8_t { none, smtp, smtps };
// evicted: an embryonic flow (no payload yet) ended to make room for a new flow in a full table.
// shutdown: open when sluiced stopped (SIGTERM, SIGINT), reported on the way out.
enum class FlowEndReason : uint8_t { fin, rst, timeout, end_of_input, evicted, shutdown };

struct StreamCounters {
  uint64_t bytes, retransmitted_bytes, out_of_order_segments, overlap_conflicts, gaps, gap_bytes, memcap_flushes;
};

inline constexpr std::size_t kSmtpAnomalyKinds = 32;

// One TCP connection on an SMTP or implicit-TLS port, or taken for SMTP by content: the `flow` event.
struct FlowRecord {
  RecordType type = RecordType::flow;
  int64_t timestamp_us = 0;
  FlowIdentity flow;
  AppProto app = AppProto::none;
  uint64_t packets[2] = {};  // [0] to the server, [1] to the client
  uint64_t bytes[2] = {};
  int64_t start_us = 0, end_us = 0;
  FlowEndReason reason = FlowEndReason::fin;
  bool inspected = false;    // an SMTP session slot parsed it; the fields below are valid
  bool detected = false;     // off the SMTP ports, taken for SMTP by its content (smtp.detect)
  bool starttls = false;
  uint64_t messages = 0;
  StreamCounters tcp[2] = {};
  uint64_t smtp_anomalies[kSmtpAnomalyKinds] = {};  // count per reassembly::SmtpAnomaly
};

enum class AnomalyLayer : uint8_t { tcp, smtp, flow };
// flow_table_full: a new connection could not be tracked (reported without a flow id, at most once a
// second per RX lcore; every one is counted in the stats).
enum class FlowAnomaly : uint8_t { session_pool_full, flow_table_full };

// The first occurrence of an anomaly kind in a flow: the `anomaly` event.
struct AnomalyRecord {
  RecordType type = RecordType::anomaly;
  int64_t timestamp_us = 0;
  FlowIdentity flow;
  AnomalyLayer layer = AnomalyLayer::tcp;
  uint8_t code = 0;        // tcp: reassembly::StreamAnomaly; smtp: reassembly::SmtpAnomaly; flow: FlowAnomaly
  int8_t direction = -1;   // 0 toserver, 1 toclient, -1 none
};

// A final verdict's quarantine entry: released now (`quarantine_id` names it), or never stored.
enum class QuarantineMark : uint8_t { none, released, not_stored };

// What inline enforcement did on the wire with a decided message (dataplane/enforcer.h); `none`
// where nothing is enforced (tap, replay without an output, final verdicts).
enum class Enforcement : uint8_t {
  none,
  released,  // its held last segment went on (pass, monitor)
  rejected,  // 550 to the client, the server reset
  deferred,  // 451 to the client, the server reset
  not_held,  // no segment of it was held (a hold limit, its hold deadline passed, ended at a flush)
};

// A file that decided a verdict (malicious, or unscannable or not looked up), as the `verdict`
// event lists it.
struct DecidingFile {
  Text<256> filename;        // the attachment's name, or the member's path (keeps its end)
  uint8_t sha256[32];
  bool hashed = false;
  bool member = false;       // an archive member (depth >= 1)
  Reputation reputation = Reputation::none;
  uint8_t unscannable = 0;   // pipeline::Unscannable
  LookupError error = LookupError::none;
  Text<kThreatNameBytes> threat_name;
  AnalysisStatus analysis = AnalysisStatus::none;
};

inline constexpr std::size_t kDecidingFiles = 8;

// The `verdict` event: one per message whose attachments were inspected, written after its `file`
// events.
struct VerdictRecord {
  RecordType type = RecordType::verdict;
  int64_t timestamp_us = 0;
  FlowIdentity flow;
  uint64_t transaction = 0;
  bool has_message_sha256 = false;
  uint8_t message_sha256[32];
  Disposition disposition = Disposition::clean;
  Action action = Action::pass;
  uint32_t unscannable_reasons = 0;  // bit i: pipeline::Unscannable(i)
  uint32_t lookup_errors = 0;        // bit i: LookupError(i)
  bool reputation = false;           // look-ups were made (reputation endpoints configured)
  bool smuggling = false;            // its DATA stream is ambiguous (MessageContext::smuggling)
  Reading reading = Reading::primary;  // a verdict of the stream's other reading (nothing enforced)
  uint64_t files = 0;                // attachments and members evaluated
  uint64_t malicious = 0, clean = 0, unknown = 0;  // by reputation
  uint64_t pending = 0;              // files with the analysis service (disposition pending)
  bool final_verdict = false;        // the message's final verdict, once the analyses it waited for ended
  QuarantineMark quarantine = QuarantineMark::none;  // final verdicts: what became of its quarantine entry
  Text<48> quarantine_id;
  Enforcement enforcement = Enforcement::none;
  Text<40> reference;                // enforcing: the id the reply to the client names
  uint64_t deciding = 0;             // files that decided it, of which the first kDecidingFiles are listed
  uint8_t listed = 0;
  DecidingFile decided_by[kDecidingFiles];
};

// Records an lcore may produce, for buffers that must hold any of them.
inline constexpr std::size_t kMaxRecordBytes =
    std::max({sizeof(MessageRecord), sizeof(FileRecord), sizeof(MemberRecord), sizeof(FlowRecord), sizeof(AnomalyRecord),
              sizeof(VerdictRecord)});

static_assert(std::is_trivially_copyable_v<MessageRecord> && std::is_trivially_copyable_v<FileRecord> &&
              std::is_trivially_copyable_v<MemberRecord> && std::is_trivially_copyable_v<FlowRecord> &&
              std::is_trivially_copyable_v<AnomalyRecord> && std::is_trivially_copyable_v<VerdictRecord>);

// Where an lcore's records go (the data plane's event ring, or a test's collector). Runs on the
// lcore: must not block, lock or allocate; the record is valid only during the call.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void emit(const void* record, std::size_t size) noexcept = 0;
  template <typename R>
  void put(const R& r) noexcept {
    emit(&r, sizeof(R));
  }
};

}  // namespace sluice::records
