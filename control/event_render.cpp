#include "control/event_render.h"

#include <arpa/inet.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iterator>

#include "control/json_line.h"
#include "pipeline/archive.h"
#include "pipeline/file_type.h"
#include "pipeline/mime_parser.h"
#include "reassembly/smtp_session.h"

namespace sluice::control {
namespace {

using namespace sluice::records;

const char* const kDirections[] = {"toserver", "toclient"};

void begin_event(JsonLine& j, std::string_view type, int64_t timestamp_us, const FlowIdentity* flow) noexcept {
  char ts[40];
  format_rfc3339(timestamp_us, ts);
  j.begin_object();
  j.key("timestamp").str(ts);
  j.key("event_type").str(type);
  if (!flow) return;
  j.key("flow_id").num(flow->flow_id);
  char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
  const int af = flow->ip_version == 6 ? AF_INET6 : AF_INET;
  if (!inet_ntop(af, flow->client_ip, a, sizeof(a))) a[0] = '\0';
  if (!inet_ntop(af, flow->server_ip, b, sizeof(b))) b[0] = '\0';
  j.key("src_ip").str(a);
  j.key("src_port").num(flow->client_port);
  j.key("dest_ip").str(b);
  j.key("dest_port").num(flow->server_port);
  j.key("proto").str("TCP");
}

void sha_member(JsonLine& j, std::string_view key, const uint8_t (&sha)[32]) noexcept {
  char hex[65];
  hex_lower(sha, 32, hex);
  j.key(key).str(hex);
}

void put_mismatch(JsonLine& j, uint8_t bits) noexcept {
  if (!bits) return;
  j.key("type_mismatch").begin_array();
  if (bits & pipeline::kMismatchExtension) j.str("extension");
  if (bits & pipeline::kMismatchContentType) j.str("content_type");
  j.end_array();
}

// The part of a `file` event before its fields, for attachments and archive members alike.
// `reading`: the DATA stream's reading (smuggling), then the MIME part's (pipeline/mime_readings.h),
// "split/base64_lines" when both are not the primary one.
void begin_file_event(JsonLine& j, int64_t timestamp_us, const FlowIdentity& flow, uint64_t transaction,
                      records::Reading reading, uint8_t mime_reading = 0) noexcept {
  begin_event(j, "file", timestamp_us, &flow);
  j.key("transaction").num(transaction);
  j.key("file").begin_object();
  const auto mime = static_cast<pipeline::MimeReading>(mime_reading);
  if (reading != records::Reading::primary && mime != pipeline::MimeReading::primary) {
    char both[64];
    const int n = std::snprintf(both, sizeof both, "%s/%s", records::reading_name(reading), pipeline::mime_reading_name(mime));
    j.key("reading").str(std::string_view(both, n > 0 ? std::size_t(n) : 0));
  } else if (reading != records::Reading::primary) {
    j.key("reading").str(records::reading_name(reading));
  } else if (mime != pipeline::MimeReading::primary) {
    j.key("reading").str(pipeline::mime_reading_name(mime));
  }
}

// What the content says, once it was hashed (typed): file_type, and type_mismatch when set.
void put_type(JsonLine& j, bool hashed, uint8_t type, uint8_t mismatch) noexcept {
  if (!hashed) return;
  j.key("file_type").str(pipeline::file_type_name(static_cast<pipeline::FileType>(type)));
  put_mismatch(j, mismatch);
}
// A file's look-up, when it had one: reputation, threat, where it came from, or why it failed.
void put_verdict(JsonLine& j, const FileVerdict& v, const std::vector<std::string>& endpoints) noexcept {
  if (v.reputation != Reputation::none) {
    j.key("reputation").str(reputation_name(v.reputation));
    if (v.threat_name.len) j.key("threat_name").str(v.threat_name.view());
    if (v.threat_score >= 0) j.key("threat_score").num(static_cast<uint64_t>(v.threat_score));
    if (v.source == kSourceCache) {
      j.key("verdict_source").str("cache");
    } else if (v.source == kSourceOverride) {
      j.key("verdict_source").str("override");
    } else if (v.source >= kSourceEndpoint0) {
      const std::size_t k = v.source - kSourceEndpoint0;
      j.key("verdict_source").str(k < endpoints.size() ? std::string_view(endpoints[k]) : std::string_view("endpoint"));
    }
    j.key("upload_wanted").boolean(v.upload_wanted);
  }
  if (v.error != LookupError::none) j.key("lookup_error").str(lookup_error_name(v.error));
  if (v.analysis != AnalysisStatus::none) {
    j.key("analysis").str(analysis_status_name(v.analysis));
    j.key("upload").boolean(analysis_pending(v.analysis));
    if (v.criterion != UploadCriterion::none) j.key("upload_criterion").str(upload_criterion_name(v.criterion));
  }
}

std::string_view unscannable_of(uint8_t u) noexcept {
  return pipeline::unscannable_name(static_cast<pipeline::Unscannable>(u));
}

const char* flow_end_name(FlowEndReason r) noexcept {
  switch (r) {
    case FlowEndReason::fin: return "fin";
    case FlowEndReason::rst: return "rst";
    case FlowEndReason::timeout: return "timeout";
    case FlowEndReason::end_of_input: return "end_of_input";
    case FlowEndReason::evicted: return "evicted";
    case FlowEndReason::shutdown: return "shutdown";
  }
  return "fin";
}

const char* anomaly_name(AnomalyLayer layer, uint8_t code) noexcept {
  switch (layer) {
    case AnomalyLayer::tcp: {
      static const char* const names[] = {"overlap_conflict", "gap", "memcap", "out_of_window", "rst_ignored"};
      return code < std::size(names) ? names[code] : "unknown";
    }
    case AnomalyLayer::smtp: return reassembly::smtp_anomaly_name(static_cast<reassembly::SmtpAnomaly>(code));
    case AnomalyLayer::flow:
      return static_cast<records::FlowAnomaly>(code) == records::FlowAnomaly::flow_table_full ? "flow_table_full"
                                                                                             : "session_pool_full";
  }
  return "unknown";
}

const char* layer_name(AnomalyLayer layer) noexcept {
  return layer == AnomalyLayer::tcp ? "tcp" : layer == AnomalyLayer::smtp ? "smtp" : "flow";
}

}  // namespace

const char* incomplete_reason_name(IncompleteReason r) noexcept {
  switch (r) {
    case IncompleteReason::gap: return "gap";
    case IncompleteReason::memcap: return "memcap";
    case IncompleteReason::aborted: return "aborted";
    case IncompleteReason::shutdown: return "shutdown";
    case IncompleteReason::none: break;
  }
  return nullptr;
}

const char* enforcement_name(Enforcement e) noexcept {
  switch (e) {
    case Enforcement::released: return "released";
    case Enforcement::rejected: return "rejected";
    case Enforcement::deferred: return "deferred";
    case Enforcement::not_held: return "not_held";
    case Enforcement::none: break;
  }
  return "none";
}

void format_rfc3339(int64_t us, char (&out)[40]) noexcept {
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const std::size_t n = std::strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(out + n, sizeof(out) - n, ".%06dZ", static_cast<int>(us % 1000000));
}

std::string rfc3339(int64_t us) {
  char buf[40];
  format_rfc3339(us, buf);
  return buf;
}

int64_t now_unix_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::string ip_text(const FlowIdentity& flow, bool client) {
  char a[INET6_ADDRSTRLEN];
  if (!inet_ntop(flow.ip_version == 6 ? AF_INET6 : AF_INET, client ? flow.client_ip : flow.server_ip, a, sizeof(a)))
    return {};
  return a;
}

std::string_view EventRenderer::render(const void* record, std::size_t size) noexcept {
  if (size == 0) return {};
  RecordType type;
  std::memcpy(&type, record, sizeof(type));
  // Every record starts with its type; the ring hands buffers aligned for any of them.
  switch (type) {
    case RecordType::message:
      return size == sizeof(MessageRecord) ? message(*static_cast<const MessageRecord*>(record)) : std::string_view();
    case RecordType::file:
      return size == sizeof(FileRecord) ? file(*static_cast<const FileRecord*>(record)) : std::string_view();
    case RecordType::member:
      return size == sizeof(MemberRecord) ? member(*static_cast<const MemberRecord*>(record)) : std::string_view();
    case RecordType::flow:
      return size == sizeof(FlowRecord) ? flow(*static_cast<const FlowRecord*>(record)) : std::string_view();
    case RecordType::anomaly:
      return size == sizeof(AnomalyRecord) ? anomaly(*static_cast<const AnomalyRecord*>(record)) : std::string_view();
    case RecordType::verdict:
      return size == sizeof(VerdictRecord) ? verdict(*static_cast<const VerdictRecord*>(record)) : std::string_view();
  }
  return {};
}

std::string_view EventRenderer::message(const MessageRecord& m) noexcept {
  JsonLine j(buf_, kSessionEventBytes);
  begin_event(j, "smtp", m.timestamp_us, &m.flow);
  j.key("transaction").num(m.transaction);
  j.key("smtp").begin_object();
  j.key("helo").str(m.helo.view());
  j.key("mail_from").str(m.mail_from.view());
  j.key("rcpt_to").begin_array();
  uint16_t off = 0;
  for (uint64_t i = 0; i < m.rcpt_kept && off < m.rcpt_bytes; ++i) {
    const std::string_view r(m.rcpts + off, strnlen(m.rcpts + off, m.rcpt_bytes - off));
    j.str(r);
    off = static_cast<uint16_t>(off + r.size() + 1);
  }
  j.end_array();
  if (m.rcpt_count != m.rcpt_kept) j.key("rcpt_count").num(m.rcpt_count);
  j.key("method").str(m.bdat ? "BDAT" : "DATA");
  j.key("starttls").boolean(m.starttls);
  if (m.has_sha256) sha_member(j, "message_sha256", m.sha256);
  j.key("message_size").num(m.size);
  if (m.has_subject) j.key("subject").str(m.subject.view());
  if (m.has_message_id) j.key("message_id").str(m.message_id.view());
  if (m.header_from.len) j.key("header_from").str(m.header_from.view());
  if (m.header_to.len) j.key("header_to").str(m.header_to.view());
  if (m.header_cc.len) j.key("header_cc").str(m.header_cc.view());
  if (m.summary.present) {
    j.key("attachments").num(m.summary.attachments);
    j.key("mime_anomalies").begin_array();
    for (unsigned i = 0; i < static_cast<unsigned>(pipeline::MimeAnomaly::count_); ++i)
      if (m.summary.mime_anomalies & (1u << i)) j.str(pipeline::mime_anomaly_name(static_cast<pipeline::MimeAnomaly>(i)));
    j.end_array();
  }
  if (m.server_reply > 0)
    j.key("server_reply").num(m.server_reply);
  else
    j.key("server_reply").null();
  j.key("status").str(m.complete ? "complete" : "incomplete");
  if (const char* why = incomplete_reason_name(m.incomplete_reason)) j.key("incomplete_reason").str(why);
  if (m.detected) j.key("detected").str("content");
  j.end_object();
  return j.finish();
}

std::string_view EventRenderer::file(const FileRecord& f) noexcept {
  JsonLine j(buf_, kFileEventBytes);
  begin_file_event(j, f.timestamp_us, f.flow, f.transaction, f.reading, f.mime_reading);
  j.key("filename").str(f.filename.view());
  if (f.filename_alt.len) j.key("filename_alt").str(f.filename_alt.view());
  j.key("content_type").str(f.content_type.view());
  if (f.disposition.len) j.key("disposition").str(f.disposition.view());
  j.key("encoding").str(pipeline::transfer_encoding_name(static_cast<pipeline::TransferEncoding>(f.encoding)));
  j.key("size").num(f.size);
  if (f.hashed) sha_member(j, "sha256", f.sha256);
  if (f.has_message_sha256) sha_member(j, "message_sha256", f.message_sha256);
  j.key("mime_path").str(f.mime_path.view());
  if (f.uuencoded) j.key("uuencoded").boolean(true);
  j.key("status").str(f.truncated ? "truncated" : "complete");
  put_type(j, f.hashed, f.file_type, f.mismatch);
  if (f.members) j.key("members").num(f.members);
  if (f.unscannable) {
    j.key("unscannable").str(unscannable_of(f.unscannable));
    if (f.unscannable_detail.len) j.key("unscannable_detail").str(f.unscannable_detail.view());
  }
  put_verdict(j, f.verdict, endpoints_);
  // Last: a line too long for the buffer loses names, not the hash or the verdict.
  if (f.filenames.len) {
    j.key("filenames").begin_array();
    pipeline::for_each_name(f.filenames.view(), [&](std::string_view n) { j.str(n); });
    j.end_array();
  }
  j.end_object();
  return j.finish();
}

std::string_view EventRenderer::member(const MemberRecord& r) noexcept {
  JsonLine j(buf_, kFileEventBytes);
  begin_file_event(j, r.timestamp_us, r.flow, r.transaction, r.reading);
  j.key("filename").str(r.filename.view());
  j.key("size").num(r.size);
  if (r.hashed) sha_member(j, "sha256", r.sha256);
  sha_member(j, "parent_sha256", r.parent_sha256);
  j.key("depth").num(r.depth);
  if (r.has_message_sha256) sha_member(j, "message_sha256", r.message_sha256);
  j.key("mime_path").str(r.mime_path.view());
  j.key("archive_filename").str(r.archive_filename.view());
  put_type(j, r.hashed, r.file_type, r.mismatch);
  if (r.unscannable) j.key("unscannable").str(unscannable_of(r.unscannable));
  put_verdict(j, r.verdict, endpoints_);
  j.end_object();
  return j.finish();
}

std::string_view EventRenderer::verdict(const VerdictRecord& v) noexcept {
  JsonLine j(buf_, kSessionEventBytes);
  begin_event(j, "verdict", v.timestamp_us, &v.flow);
  j.key("transaction").num(v.transaction);
  j.key("verdict").begin_object();
  if (v.reading != records::Reading::primary) j.key("reading").str(records::reading_name(v.reading));
  if (v.has_message_sha256) sha_member(j, "message_sha256", v.message_sha256);
  j.key("disposition").str(disposition_name(v.disposition));
  j.key("action").str(action_name(v.action));
  if (v.enforcement != Enforcement::none) {
    j.key("enforcement").str(enforcement_name(v.enforcement));
    if (v.reference.len) j.key("reference").str(v.reference.view());
  }
  j.key("reasons").begin_array();
  for (unsigned u = 1; u < 32; ++u)
    if (v.unscannable_reasons & (1u << u)) j.str(unscannable_of(static_cast<uint8_t>(u)));
  for (unsigned e = 1; e < kLookupErrors; ++e)
    if (v.lookup_errors & (1u << e)) j.str(lookup_error_name(static_cast<LookupError>(e)));
  if (v.smuggling) j.str("smtp_smuggling");
  j.end_array();
  j.key("files_evaluated").num(v.files);
  if (v.pending) j.key("pending").num(v.pending);
  if (v.final_verdict) j.key("final").boolean(true);
  if (v.quarantine == QuarantineMark::released) {
    j.key("quarantine").begin_object();
    j.key("id").str(v.quarantine_id.view());
    j.key("released").boolean(true);
    j.end_object();
  } else if (v.quarantine == QuarantineMark::not_stored) {
    j.key("quarantine").str("not_stored");
  }
  if (v.reputation) {
    j.key("reputation").begin_object();
    j.key("malicious").num(v.malicious);
    j.key("clean").num(v.clean);
    j.key("unknown").num(v.unknown);
    j.end_object();
  }
  j.key("files").begin_array();
  for (unsigned i = 0; i < v.listed && i < kDecidingFiles; ++i) {
    const DecidingFile& d = v.decided_by[i];
    j.begin_object();
    j.key("filename").str(d.filename.view());
    if (d.hashed) sha_member(j, "sha256", d.sha256);
    if (d.member) j.key("member").boolean(true);
    if (d.reputation != Reputation::none) j.key("reputation").str(reputation_name(d.reputation));
    if (d.threat_name.len) j.key("threat_name").str(d.threat_name.view());
    if (d.unscannable) j.key("unscannable").str(unscannable_of(d.unscannable));
    if (d.error != LookupError::none) j.key("lookup_error").str(lookup_error_name(d.error));
    if (d.analysis != AnalysisStatus::none) j.key("analysis").str(analysis_status_name(d.analysis));
    j.end_object();
  }
  j.end_array();
  if (v.deciding > v.listed) j.key("files_deciding").num(v.deciding);
  j.end_object();
  return j.finish();
}

std::string_view EventRenderer::flow(const FlowRecord& f) noexcept {
  JsonLine j(buf_, kSessionEventBytes);
  begin_event(j, "flow", f.timestamp_us, &f.flow);
  j.key("app_proto").str(f.app == AppProto::smtp ? "smtp" : f.app == AppProto::smtps ? "smtps" : "unknown");
  j.key("flow").begin_object();
  j.key("pkts_toserver").num(f.packets[0]);
  j.key("pkts_toclient").num(f.packets[1]);
  j.key("bytes_toserver").num(f.bytes[0]);
  j.key("bytes_toclient").num(f.bytes[1]);
  char ts[40];
  format_rfc3339(f.start_us, ts);
  j.key("start").str(ts);
  format_rfc3339(f.end_us, ts);
  j.key("end").str(ts);
  j.key("reason").str(flow_end_name(f.reason));
  j.key("inspected").boolean(f.inspected);
  if (f.detected) j.key("detected").str("content");
  if (f.app == AppProto::smtps) j.key("encrypted").boolean(true);
  if (f.inspected) {
    j.key("starttls").boolean(f.starttls);
    j.key("messages").num(f.messages);
    j.key("tcp").begin_object();
    for (int d = 0; d < 2; ++d) {
      const StreamCounters& st = f.tcp[d];
      j.key(kDirections[d]).begin_object();
      j.key("bytes").num(st.bytes);
      j.key("retransmitted_bytes").num(st.retransmitted_bytes);
      j.key("out_of_order_segments").num(st.out_of_order_segments);
      j.key("overlap_conflicts").num(st.overlap_conflicts);
      j.key("gaps").num(st.gaps);
      j.key("gap_bytes").num(st.gap_bytes);
      j.key("memcap_flushes").num(st.memcap_flushes);
      j.end_object();
    }
    j.end_object();
    j.key("smtp_anomalies").begin_object();
    for (unsigned i = 0; i < kSmtpAnomalyKinds; ++i)
      if (f.smtp_anomalies[i])
        j.key(reassembly::smtp_anomaly_name(static_cast<reassembly::SmtpAnomaly>(i))).num(f.smtp_anomalies[i]);
    j.end_object();
  }
  j.end_object();
  return j.finish();
}

std::string_view EventRenderer::anomaly(const AnomalyRecord& a) noexcept {
  JsonLine j(buf_, kSessionEventBytes);
  begin_event(j, "anomaly", a.timestamp_us, &a.flow);
  j.key("anomaly").begin_object();
  j.key("layer").str(layer_name(a.layer));
  j.key("type").str(anomaly_name(a.layer, a.code));
  if (a.direction == 0 || a.direction == 1) j.key("direction").str(kDirections[a.direction]);
  j.end_object();
  return j.finish();
}

std::string EventRenderer::control_event(std::string_view type, const Json& body, int64_t timestamp_us,
                                         const FlowIdentity* flow) {
  const std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out(text.size() + 512 + type.size() * 6, '\0');
  JsonLine j(out.data(), out.size());
  begin_event(j, type, timestamp_us, flow);
  j.key(type).raw_value(text);
  out.resize(j.finish().size());
  return out;
}

Json stats_json(const dataplane::StatsSnapshot& s) {
  Json ports = Json::array(), lcores = Json::array();
  for (const auto& p : s.ports)
    ports.push_back({{"name", p.name}, {"device", p.device},
                     {"rx_packets", p.rx_packets}, {"rx_bytes", p.rx_bytes},
                     {"tx_packets", p.tx_packets}, {"tx_bytes", p.tx_bytes},
                     {"dropped", p.dropped}, {"rx_missed", p.rx_missed}, {"rx_errors", p.rx_errors},
                     {"tx_errors", p.tx_errors}, {"rx_nombuf", p.rx_nombuf},
                     {"symmetric_rss", p.symmetric_rss}, {"software_dispatch", p.software_dispatch}});
  for (const auto& l : s.lcores) {
    const auto& w = l.worker;
    Json worker = {{"chunks", w.chunks}, {"bytes", w.bytes}, {"attachments", w.attachments},
                   {"digests", w.digests}, {"archives", w.archives}, {"members", w.members}, {"in_flight_full", w.in_flight_full},
                   {"stray_chunks", w.stray_chunks}, {"decoder_memory_refused", w.decoder_memory_refused},
                   {"results_dropped", l.results_dropped}};
    Json unscannable = Json::object();
    for (unsigned u = 1; u < std::size(w.unscannable); ++u) {
      const auto name = pipeline::unscannable_name(static_cast<pipeline::Unscannable>(u));
      if (!name.empty()) unscannable[std::string(name)] = w.unscannable[u];
    }
    worker["unscannable"] = unscannable;
    if (l.role == "worker") {
      lcores.push_back({{"lcore", l.lcore}, {"role", l.role}, {"idle_sleeps", l.idle_sleeps}, {"worker", worker}});
      continue;
    }
    const auto& h = l.handoff;
    Json handoff = {{"files", h.files}, {"chunks", h.chunks}, {"bytes", h.bytes}, {"results", h.results},
                    {"overload", h.overload}, {"no_chunk", h.no_chunk}, {"ring_full", h.ring_full},
                    {"records_full", h.records_full}, {"members_unheld", h.members_unheld},
                    {"stale_results", h.stale_results}, {"readings", h.readings},
                    {"readings_same", h.readings_same}, {"digests", h.digests},
                    {"digests_inline", h.digests_inline}, {"digests_lost", h.digests_lost}};
    Json verdicts = {{"cache_hits", h.cache_hits}, {"cache_misses", h.cache_misses}, {"lookups", h.lookups},
                     {"answers", h.answers}, {"answers_stale", h.answers_stale},
                     {"lookups_queue_full", h.lookups_queue_full}, {"lookups_expired", h.lookups_expired},
                     {"clean", h.verdicts_clean}, {"malicious", h.verdicts_malicious},
                     {"unscannable", h.verdicts_unscannable}, {"pending", h.verdicts_pending},
                     {"analysis_asked", h.analysis_asked}, {"analysis_answers", h.analysis_answers},
                     {"analysis_queue_full", h.analysis_queue_full}, {"analysis_expired", h.analysis_expired},
                     {"spooled", h.spooled}, {"spool_misses", h.spool_misses}, {"spool_queue_full", h.spool_queue_full},
                     {"awaiting", h.awaiting}};
    Json files = Json::object();  // file events by reputation
    for (unsigned k = 0; k < std::size(h.files_by_reputation); ++k)
      files[std::string(records::reputation_name(static_cast<records::Reputation>(k)))] = h.files_by_reputation[k];
    verdicts["files"] = std::move(files);
    const auto& r = l.reassembly;
    lcores.push_back({{"lcore", l.lcore}, {"role", l.role},
                      {"rx_packets", l.rx_packets}, {"rx_bytes", l.rx_bytes},
                      {"tx_packets", l.tx_packets}, {"tx_bytes", l.tx_bytes},
                      {"dropped", l.dropped}, {"dispatched_out", l.dispatched_out},
                      {"events", l.events}, {"events_dropped", l.events_dropped},
                      {"idle_sleeps", l.idle_sleeps},
                      {"reassembly", {{"packets", r.packets}, {"flows", r.flows_created},
                                      {"flows_table_full", r.flows_table_full},
                                      {"sessions_pool_full", r.sessions_pool_full}, {"messages", r.messages},
                                      {"messages_incomplete", r.messages_incomplete},
                                      {"overlap_conflicts", r.overlap_conflicts}, {"gaps", r.gaps},
                                      {"memcap_flushes", r.memcap_flushes}, {"fragments", r.fragments},
                                      {"fragments_reassembled", r.fragments_reassembled},
                                      {"fragments_dropped", r.fragments_dropped},
                                      {"flows_evicted", r.flows_evicted}, {"syns_dropped", r.syns_dropped},
                                      {"emergency_entered", r.emergency_entered}, {"emergency", r.emergency != 0},
                                      {"sessions_active", r.sessions_active}, {"rst_ignored", r.rst_ignored},
                                      {"out_of_window_segments", r.out_of_window_segments},
                                      {"fragments_evicted", r.fragments_evicted},
                                      {"flows_unflushed", r.flows_unflushed},
                                      {"messages_unflushed", r.messages_unflushed},
                                      {"readings", r.readings}, {"readings_skipped", r.readings_skipped},
                                      {"readings_truncated", r.readings_truncated},
                                      {"detect_probed", r.detect_probed}, {"detect_smtp", r.detect_smtp},
                                      {"detect_not_smtp", r.detect_not_smtp},
                                      {"detect_undecided", r.detect_undecided},
                                      {"detect_evicted", r.detect_evicted},
                                      {"acked_holes_filled", r.acked_holes_filled},
                                      {"acked_holes_declared", r.acked_holes_declared},
                                      {"smtp_digest_waits", r.smtp_digest_waits},
                                      {"smtp_digest_unwaited", r.smtp_digest_unwaited}}},
                      {"handoff", handoff},
                      {"verdicts", verdicts},
                      {"hold", {{"held", l.hold.held}, {"released", l.hold.released}, {"expired", l.hold.expired},
                                {"cap_reached", l.hold.cap_reached}, {"in_queue", l.hold.in_queue},
                                {"dropped", l.hold_dropped}}}});
    if (l.enforcing) {
      const auto& e = l.enforce;
      lcores.back()["enforce"] = {{"messages_held", e.messages_held}, {"passed", e.passed}, {"rejected", e.rejected},
                                  {"deferred", e.deferred}, {"expired", e.expired}, {"not_held", e.not_held},
                                  {"queued_behind", e.queued_behind}, {"behind_dropped", e.behind_dropped},
                                  {"absorbed", e.absorbed}, {"aftermath_replies", e.aftermath_replies},
                                  {"injected", e.injected}, {"inject_failed", e.inject_failed},
                                  {"table_full", e.table_full}, {"watchdog_trips", e.watchdog_trips},
                                  {"watchdog_released", e.watchdog_released},
                                  {"watchdog_bypassed", e.watchdog_bypassed}, {"fail_open", e.fail_open != 0},
                                  {"starttls_masked", e.starttls_masked},
                                  {"starttls_blocked", e.starttls_blocked},
                                  {"verdicts_unwithheld", e.verdicts_unwithheld}, {"gated", e.gated},
                                  {"blocked", e.blocked}};
      // Added latency per held message: percentiles (the low edge of their bucket, within 19%) and
      // the non-empty buckets as [low_us, count].
      uint64_t settled = 0;
      for (uint64_t c : e.latency_us) settled += c;
      Json latency = {{"messages", settled}, {"sum_us", e.latency_sum_us}};
      Json buckets = Json::array();
      for (unsigned b = 0; b < dataplane::kLatencyBuckets; ++b)
        if (e.latency_us[b]) buckets.push_back({dataplane::latency_bucket_low(b), e.latency_us[b]});
      for (auto [name, q] : {std::pair{"p50_us", 0.50}, std::pair{"p99_us", 0.99}}) {
        uint64_t seen = 0;
        for (unsigned b = 0; b < dataplane::kLatencyBuckets && settled; ++b) {
          seen += e.latency_us[b];
          if (static_cast<double>(seen) >= q * static_cast<double>(settled)) {
            latency[name] = dataplane::latency_bucket_low(b);
            break;
          }
        }
      }
      latency["buckets"] = std::move(buckets);
      lcores.back()["enforce"]["latency"] = std::move(latency);
    }
    // Without worker lcores the RX lcore does the workers' job itself.
    if (l.runs_worker) lcores.back()["worker"] = worker;
  }
  return {{"ports", ports}, {"lcores", lcores}};
}

}  // namespace sluice::control
