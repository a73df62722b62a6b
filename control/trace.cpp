// Per-message traces (trace.h).
#include "control/trace.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sys/stat.h>

#include "control/hex.h"
#include "pipeline/archive.h"
#include "pipeline/file_type.h"
#include "pipeline/mime_parser.h"

namespace sluice::control {
namespace {

using records::AnalysisStatus;
using records::FileVerdict;
using records::LookupError;
using records::Reputation;
using records::UploadCriterion;

std::string line_text(const Json& j) {
  // Names and subjects come from the wire: invalid UTF-8 is replaced, never a reason to lose a line.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void append_line(std::string& out, const Json& j) {
  out.append(line_text(j)).push_back('\n');
}

std::string short_sha(std::string_view hex) {
  return std::string(hex.substr(0, 12)) + "…";
}

std::string in_quotes(std::string_view s) {
  std::string q = "\"";
  q.append(s.substr(0, 200));
  if (s.size() > 200) q += "…";
  return q + "\"";
}

std::string plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

const char* criterion_text(UploadCriterion c) {
  switch (c) {
    case UploadCriterion::type: return "no selected analysis group takes its file type";
    case UploadCriterion::size: return "it is over the analysis size limit";
    case UploadCriterion::memory: return "its worker's sample memory was full";
    case UploadCriterion::unreadable: return "there was no content to send";
    case UploadCriterion::not_dynamic: return "ClamAV pre-classification found no dynamic content";
    case UploadCriterion::preclass_error: return "pre-classification failed or its queue was full";
    case UploadCriterion::queue_full: return "the upload queue was full";
    case UploadCriterion::unreachable: return "no analysis endpoint answered";
    case UploadCriterion::timeout: return "no decision within analysis.decision_ms";
    case UploadCriterion::not_wanted: return "the reputation answer was not `unknown` with an upload wanted";
    case UploadCriterion::reading: return "it was found only in the other reading of an ambiguous DATA stream";
    case UploadCriterion::none: break;
  }
  return "no criterion recorded";
}

std::string analysis_text(AnalysisStatus s, UploadCriterion c) {
  switch (s) {
    case AnalysisStatus::submitted: return "Upload criteria met: uploaded for analysis; the message waits for the result.";
    case AnalysisStatus::waiting: return "An upload of the same file is pending: the message waits for its result.";
    case AnalysisStatus::already_known:
      return "The analysis service had the file already (another appliance sent it): not uploaded again; the "
             "message waits for the result.";
    case AnalysisStatus::analysed: return "Analysed through this appliance before: that result is used, not uploaded again.";
    case AnalysisStatus::rejected: return "The analysis service refused the file (its sample limit): the message goes on.";
    case AnalysisStatus::not_sent: return std::string("Not uploaded: ") + criterion_text(c) + ".";
    case AnalysisStatus::none: break;
  }
  return "";
}

// The value of `"key":"` in a line, without parsing it (keys written by TraceBuilder, values
// without quotes inside: refs and hex).
std::string_view quick_value(std::string_view line, std::string_view needle) {
  const std::size_t at = line.find(needle);
  if (at == std::string_view::npos) return {};
  const std::size_t from = at + needle.size();
  const std::size_t end = line.find('"', from);
  return end == std::string_view::npos ? std::string_view{} : line.substr(from, end - from);
}

}  // namespace

std::string trace_file(const std::string& path, unsigned k) {
  return k == 0 ? path : path + "." + std::to_string(k);
}

TraceBuilder::TraceBuilder(uint32_t instance, std::size_t max_lookups)
    : instance_(instance), max_lookups_(std::max<std::size_t>(1, max_lookups)) {}

std::string message_ref(uint32_t instance, uint64_t flow_id, uint64_t transaction) {
  char out[64];
  std::snprintf(out, sizeof out, "%08" PRIx32 "-%" PRIx64 "-%" PRIu64, instance, flow_id, transaction);
  return out;
}

std::string TraceBuilder::endpoint_name(int k) const {
  return k >= 0 && static_cast<std::size_t>(k) < endpoints_.size() ? endpoints_[k] : "endpoint " + std::to_string(k);
}

Json TraceBuilder::head(int64_t timestamp_us, const records::FlowIdentity& flow, uint64_t transaction,
                        std::string_view step) {
  // `text` right after `step`, whatever is filled in first.
  return Json{{"time", rfc3339(timestamp_us)}, {"ref", ref(flow.flow_id, transaction)}, {"flow_id", flow.flow_id},
              {"transaction", transaction}, {"step", step}, {"text", ""}};
}

void TraceBuilder::on_record(const void* record, std::size_t size, std::string& out) {
  if (size < 1) return;
  switch (*static_cast<const records::RecordType*>(record)) {
    case records::RecordType::message:
      if (size == sizeof(records::MessageRecord)) message(*static_cast<const records::MessageRecord*>(record), out);
      break;
    case records::RecordType::file:
      if (size == sizeof(records::FileRecord)) file(*static_cast<const records::FileRecord*>(record), out);
      break;
    case records::RecordType::member:
      if (size == sizeof(records::MemberRecord)) member(*static_cast<const records::MemberRecord*>(record), out);
      break;
    case records::RecordType::verdict:
      if (size == sizeof(records::VerdictRecord)) verdict(*static_cast<const records::VerdictRecord*>(record), out);
      break;
    default: break;
  }
}

void TraceBuilder::message(const records::MessageRecord& m, std::string& out) {
  Json j = head(m.timestamp_us, m.flow, m.transaction, "parsed");
  std::vector<std::string> rcpts;
  for (std::size_t at = 0; at < m.rcpt_bytes && rcpts.size() < m.rcpt_kept;) {
    const std::string_view r(m.rcpts + at, strnlen(m.rcpts + at, m.rcpt_bytes - at));
    rcpts.emplace_back(r);
    at += r.size() + 1;
  }
  std::vector<std::string> anomalies;
  for (unsigned i = 0; i < static_cast<unsigned>(pipeline::MimeAnomaly::count_); ++i)
    if (m.summary.mime_anomalies & (1u << i)) anomalies.emplace_back(pipeline::mime_anomaly_name(static_cast<pipeline::MimeAnomaly>(i)));
  const uint64_t rcpt_count = std::max<uint64_t>(m.rcpt_count, rcpts.size());
  std::string text = "Message ";
  if (m.has_message_id) text += std::string(m.message_id.view()) + " ";
  text += "from <" + std::string(m.mail_from.view()) + "> to " + plural(rcpt_count, "recipient", "recipients");
  if (m.has_subject) text += ", subject " + in_quotes(m.subject.view());
  text += ": " + std::to_string(m.size) + " bytes";
  if (m.summary.present) {
    text += ", " + plural(m.summary.attachments, "attachment", "attachments");
    if (!anomalies.empty()) {
      text += "; MIME anomalies:";
      for (std::size_t i = 0; i < anomalies.size(); ++i) text += (i ? ", " : " ") + anomalies[i];
    }
  }
  if (!m.complete) {
    const char* why = incomplete_reason_name(m.incomplete_reason);
    text += std::string("; incomplete (") + (why ? why : "unknown") + ")";
  }
  text += m.server_reply ? "; the end of data was answered " + std::to_string(m.server_reply) + "." : "; no reply to the end of data was seen.";
  j["text"] = text;
  if (m.has_message_id) j["message_id"] = std::string(m.message_id.view());
  if (m.has_sha256) j["message_sha256"] = hex_string(m.sha256, 32);
  if (m.has_subject) j["subject"] = std::string(m.subject.view());
  j["mail_from"] = std::string(m.mail_from.view());
  j["rcpt_to"] = rcpts;
  j["size"] = m.size;
  if (m.summary.present) {
    j["attachments"] = m.summary.attachments;
    j["mime_anomalies"] = anomalies;
  }
  if (m.server_reply) j["server_reply"] = m.server_reply;
  j["status"] = m.complete ? "complete" : "incomplete";
  append_line(out, j);
}

void TraceBuilder::file(const records::FileRecord& f, std::string& out) {
  Json j = head(f.timestamp_us, f.flow, f.transaction, "file");
  const std::string sha = f.hashed ? hex_string(f.sha256, 32) : "";
  std::string text = (f.uuencoded ? "Uuencoded file " : "Attachment ") + in_quotes(f.filename.view()) + " (part " +
                     std::string(f.mime_path.view());
  if (f.hashed) text += ", " + std::string(pipeline::file_type_name(static_cast<pipeline::FileType>(f.file_type)));
  text += ", " + std::to_string(f.size) + " bytes";
  if (f.hashed) text += ", SHA-256 " + short_sha(sha);
  text += ")";
  if (f.members) text += ": an archive of " + plural(f.members, "member", "members");
  if (f.unscannable) {
    text += std::string(f.members ? "; " : ": ") + "unscannable, " +
            std::string(pipeline::unscannable_name(static_cast<pipeline::Unscannable>(f.unscannable)));
    if (f.unscannable_detail.len) text += " (" + std::string(f.unscannable_detail.view()) + ")";
  }
  if (f.truncated) text += "; truncated: the message ended early";
  j["text"] = text + ".";
  j["filename"] = std::string(f.filename.view());
  if (f.filename_alt.len) j["filename_alt"] = std::string(f.filename_alt.view());
  if (f.filenames.len) {
    auto& a = j["filenames"] = nlohmann::json::array();
    pipeline::for_each_name(f.filenames.view(), [&](std::string_view n) { a.push_back(std::string(n)); });
  }
  if (f.hashed) {
    j["sha256"] = sha;
    j["file_type"] = pipeline::file_type_name(static_cast<pipeline::FileType>(f.file_type));
  }
  j["size"] = f.size;
  j["mime_path"] = std::string(f.mime_path.view());
  if (f.has_message_sha256) j["message_sha256"] = hex_string(f.message_sha256, 32);
  if (f.members) j["members"] = f.members;
  if (f.unscannable) j["unscannable"] = pipeline::unscannable_name(static_cast<pipeline::Unscannable>(f.unscannable));
  if (f.reading != records::Reading::primary) j["reading"] = records::reading_name(f.reading);
  if (f.mime_reading) {
    const char* mime = pipeline::mime_reading_name(static_cast<pipeline::MimeReading>(f.mime_reading));
    j["reading"] = f.reading != records::Reading::primary
                       ? std::string(records::reading_name(f.reading)) + "/" + mime : std::string(mime);
  }
  append_line(out, j);
  lookup_step(f.timestamp_us, f.flow, f.transaction, f.filename.view(), f.sha256, f.hashed, f.verdict, out);
}

void TraceBuilder::member(const records::MemberRecord& f, std::string& out) {
  Json j = head(f.timestamp_us, f.flow, f.transaction, "member");
  const std::string sha = f.hashed ? hex_string(f.sha256, 32) : "";
  std::string text = "Archive member " + in_quotes(f.filename.view()) + " of " + in_quotes(f.archive_filename.view()) +
                     " (depth " + std::to_string(f.depth);
  if (f.hashed) text += ", " + std::string(pipeline::file_type_name(static_cast<pipeline::FileType>(f.file_type)));
  text += ", " + std::to_string(f.size) + " bytes";
  if (f.hashed) text += ", SHA-256 " + short_sha(sha);
  text += ")";
  if (f.unscannable)
    text += ": unscannable, " + std::string(pipeline::unscannable_name(static_cast<pipeline::Unscannable>(f.unscannable)));
  j["text"] = text + ".";
  j["filename"] = std::string(f.filename.view());
  j["archive_filename"] = std::string(f.archive_filename.view());
  j["depth"] = f.depth;
  if (f.hashed) {
    j["sha256"] = sha;
    j["file_type"] = pipeline::file_type_name(static_cast<pipeline::FileType>(f.file_type));
    j["parent_sha256"] = hex_string(f.parent_sha256, 32);
  }
  j["size"] = f.size;
  if (f.has_message_sha256) j["message_sha256"] = hex_string(f.message_sha256, 32);
  if (f.unscannable) j["unscannable"] = pipeline::unscannable_name(static_cast<pipeline::Unscannable>(f.unscannable));
  append_line(out, j);
  lookup_step(f.timestamp_us, f.flow, f.transaction, f.filename.view(), f.sha256, f.hashed, f.verdict, out);
}

void TraceBuilder::lookup_step(int64_t timestamp_us, const records::FlowIdentity& flow, uint64_t transaction,
                               std::string_view name, const uint8_t (&sha)[32], bool hashed, const FileVerdict& v,
                               std::string& out) {
  if (!hashed || (v.reputation == Reputation::none && v.error == LookupError::none)) return;
  const std::string hex = hex_string(sha, 32);
  Json j = head(timestamp_us, flow, transaction, "lookup");
  std::string text = "Reputation of " + in_quotes(name) + ": ";
  j["sha256"] = hex;
  const Lookup* asked = nullptr;
  if (auto it = lookups_.find(hex); it != lookups_.end()) asked = &it->second;
  if (v.error != LookupError::none) {
    text += "no answer (" + std::string(records::lookup_error_name(v.error));
    if (asked && !asked->detail.empty()) text += ": " + asked->detail;
    text += ")";
    j["lookup_error"] = records::lookup_error_name(v.error);
    if (asked) {
      j["endpoint"] = endpoint_name(asked->endpoint);
      if (!asked->detail.empty()) j["detail"] = asked->detail;
    }
  } else {
    text += std::string(records::reputation_name(v.reputation));
    if (v.threat_name.len) text += " (" + std::string(v.threat_name.view()) + ")";
    j["reputation"] = records::reputation_name(v.reputation);
    if (v.threat_name.len) j["threat_name"] = std::string(v.threat_name.view());
    if (v.threat_score >= 0) j["threat_score"] = v.threat_score;
    if (v.source == records::kSourceCache) {
      text += ", from the verdict cache";
      j["source"] = "cache";
    } else if (v.source == records::kSourceOverride) {
      text += ", by a local override";
      j["source"] = "override";
    } else if (v.source >= records::kSourceEndpoint0) {
      const std::string ep = endpoint_name(v.source - records::kSourceEndpoint0);
      j["source"] = ep;
      text += ", answered by " + ep;
      if (asked) {
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.1f", asked->latency_ms);
        text += std::string(" in ") + ms + " ms";
        j["latency_ms"] = asked->latency_ms;
      }
    }
    if (v.upload_wanted) text += "; the cloud would like the file for analysis";
    j["upload_wanted"] = v.upload_wanted;
  }
  j["text"] = text + ".";
  append_line(out, j);
  if (v.analysis == AnalysisStatus::none) return;
  Json u = head(timestamp_us, flow, transaction, "upload");
  u["text"] = analysis_text(v.analysis, v.criterion);
  u["sha256"] = hex;
  u["analysis"] = records::analysis_status_name(v.analysis);
  if (v.criterion != UploadCriterion::none) u["upload_criterion"] = records::upload_criterion_name(v.criterion);
  append_line(out, u);
}

void TraceBuilder::verdict(const records::VerdictRecord& v, std::string& out) {
  Json j = head(v.timestamp_us, v.flow, v.transaction, v.final_verdict ? "final_verdict" : "verdict");
  std::vector<std::string> reasons;
  for (unsigned u = 1; u < pipeline::kUnscannableReasons; ++u)
    if (v.unscannable_reasons & (1u << u)) reasons.emplace_back(pipeline::unscannable_name(static_cast<pipeline::Unscannable>(u)));
  for (unsigned e = 1; e < records::kLookupErrors; ++e)
    if (v.lookup_errors & (1u << e)) reasons.emplace_back(records::lookup_error_name(static_cast<LookupError>(e)));
  if (v.smuggling) reasons.emplace_back("smtp_smuggling");
  const std::string disp(records::disposition_name(v.disposition)), action(records::action_name(v.action));
  std::string text = std::string(v.final_verdict ? "Final verdict" : "Verdict") + ": " + disp + ", action " + action;
  text += "; " + plural(v.files, "file", "files") + " evaluated";
  if (v.reputation)
    text += " (" + std::to_string(v.malicious) + " malicious, " + std::to_string(v.clean) + " clean, " +
            std::to_string(v.unknown) + " unknown)";
  if (!reasons.empty()) {
    text += "; reasons:";
    for (std::size_t i = 0; i < reasons.size(); ++i) text += (i ? ", " : " ") + reasons[i];
  }
  Json files = Json::array();
  for (uint8_t i = 0; i < v.listed && i < records::kDecidingFiles; ++i) {
    const records::DecidingFile& d = v.decided_by[i];
    Json f{{"filename", std::string(d.filename.view())}};
    if (d.hashed) f["sha256"] = hex_string(d.sha256, 32);
    if (d.member) f["member"] = true;
    if (d.reputation != Reputation::none) f["reputation"] = records::reputation_name(d.reputation);
    if (d.threat_name.len) f["threat_name"] = std::string(d.threat_name.view());
    if (d.unscannable) f["unscannable"] = pipeline::unscannable_name(static_cast<pipeline::Unscannable>(d.unscannable));
    if (d.error != LookupError::none) f["lookup_error"] = records::lookup_error_name(d.error);
    if (d.analysis != AnalysisStatus::none) f["analysis"] = records::analysis_status_name(d.analysis);
    files.push_back(std::move(f));
  }
  if (!files.empty() && v.disposition == records::Disposition::malicious) {
    text += "; decided by";
    for (std::size_t i = 0; i < files.size() && i < 3; ++i)
      text += (i ? ", " : " ") + in_quotes(files[i].value("filename", "")) +
              (files[i].contains("threat_name") ? " (" + files[i]["threat_name"].get<std::string>() + ")" : "");
  }
  if (v.pending) text += "; " + plural(v.pending, "file is", "files are") + " with the analysis service: the message is held back";
  switch (v.enforcement) {
    case records::Enforcement::released: text += "; on the wire: its held segment went on to the server"; break;
    case records::Enforcement::rejected:
      text += "; on the wire: the client got the 550 reply naming " + std::string(v.reference.view()) +
              ", the server a reset";
      break;
    case records::Enforcement::deferred:
      text += "; on the wire: the client got the 451 reply naming " + std::string(v.reference.view()) +
              ", the server a reset";
      break;
    case records::Enforcement::not_held: text += "; on the wire: nothing of it was held any more (a hold limit or deadline)"; break;
    case records::Enforcement::none: break;
  }
  if (v.quarantine == records::QuarantineMark::released)
    text += "; its quarantine entry " + std::string(v.quarantine_id.view()) + " is released";
  else if (v.quarantine == records::QuarantineMark::not_stored)
    text += "; it had not been stored in the quarantine";
  j["text"] = text + ".";
  if (v.has_message_sha256) j["message_sha256"] = hex_string(v.message_sha256, 32);
  j["disposition"] = disp;
  j["action"] = action;
  if (v.enforcement != records::Enforcement::none) {
    j["enforcement"] = enforcement_name(v.enforcement);
    j["reference"] = std::string(v.reference.view());
  }
  j["reasons"] = reasons;
  j["files_evaluated"] = v.files;
  if (v.pending) j["pending"] = v.pending;
  if (v.quarantine != records::QuarantineMark::none) {
    j["quarantine"] = v.quarantine == records::QuarantineMark::released ? "released" : "not_stored";
    if (v.quarantine_id.len) j["quarantine_id"] = std::string(v.quarantine_id.view());
  }
  j["files"] = std::move(files);
  if (v.reading != records::Reading::primary) j["reading"] = records::reading_name(v.reading);
  append_line(out, j);
}

void TraceBuilder::on_event(std::string_view type, const Json& body, const records::FlowIdentity* flow,
                            std::string& out) {
  if (type != "analysis" || !body.is_object()) return;
  const std::string status = body.value("status", "");
  const std::string sha = body.value("sha256", "");
  const std::string endpoint = body.value("endpoint", "");
  const int64_t now = now_unix_us();
  if (flow) {  // a step of one message
    const uint64_t transaction = body.value("transaction", uint64_t{0});
    Json j = head(now, *flow, transaction, "analysis");
    const std::string name = in_quotes(body.value("filename", ""));
    std::string text;
    if (status == "submitted") {
      text = "Submitted " + name + " to " + endpoint + " as sample " + body.value("sample_id", "");
      if (body.contains("dynamic") && body["dynamic"].is_array() && !body["dynamic"].empty()) {
        text += " (dynamic content:";
        bool first = true;
        for (const auto& d : body["dynamic"]) {
          text += (first ? " " : ", ") + (d.is_string() ? d.get<std::string>() : d.dump());
          first = false;
        }
        text += ")";
      }
    } else if (status == "waiting") {
      text = name + " joins an analysis already pending: the message waits for it";
    } else if (status == "already_known") {
      text = "The analysis service knew " + name + " already: not uploaded, the message waits for its result";
    } else if (status == "not_sent") {
      text = name + " not uploaded: " + body.value("upload_criterion", "") +
             (body.contains("detail") ? " (" + body.value("detail", "") + ")" : "");
    } else if (status == "rejected") {
      text = "The analysis service refused " + name + (body.contains("detail") ? " (" + body.value("detail", "") + ")" : "") +
             ": the message goes on";
    } else {
      text = name + ": " + status;
    }
    j["text"] = text + ".";
    j["sha256"] = sha;
    j["status"] = status;
    for (const char* k : {"endpoint", "sample_id", "upload_criterion", "detail", "dynamic"})
      if (body.contains(k)) j[k] = body[k];
    append_line(out, j);
    return;
  }
  if (status != "complete" && status != "expired") return;
  Json j{{"time", rfc3339(now)}, {"sha256", sha}, {"step", status}, {"text", ""}};
  std::string text;
  if (status == "expired") {
    text = "Analysis of " + short_sha(sha) + " expired: no result within analysis.max_age_h; the messages waiting on it "
           "take analysis.expired_action";
  } else if (body.value("state", "") == "fail" || body.contains("failed")) {
    text = "Analysis of " + short_sha(sha) + " at " + endpoint + " failed: no score";
  } else {
    text = "Analysis of " + short_sha(sha) + " at " + endpoint + " complete: score " +
           std::to_string(body.value("score", -1)) + ", " + body.value("disposition", "");
    if (body.contains("threat_name")) text += " (" + body.value("threat_name", "") + ")";
  }
  if (body.contains("messages")) text += "; " + plural(body.value("messages", uint64_t{0}), "message", "messages") + " waited on it";
  j["text"] = text + ".";
  for (const char* k : {"endpoint", "sample_id", "state", "score", "disposition", "threat_name", "messages"})
    if (body.contains(k)) j[k] = body[k];
  append_line(out, j);
}

void TraceBuilder::on_lookup(const std::array<uint8_t, 32>& sha256, int endpoint, double latency_ms,
                             std::string_view detail) {
  std::string hex = hex_string(sha256);
  auto [it, fresh] = lookups_.insert_or_assign(hex, Lookup{endpoint, latency_ms, std::string(detail.substr(0, 200))});
  if (!fresh) return;
  lookup_order_.push_back(std::move(hex));
  while (lookup_order_.size() > max_lookups_) {
    lookups_.erase(lookup_order_.front());
    lookup_order_.pop_front();
  }
}

void TraceBuilder::on_quarantine(const records::FlowIdentity& flow, uint64_t transaction, const std::string& id,
                                 const std::string& why, std::string& out) {
  Json j = head(now_unix_us(), flow, transaction, "quarantine");
  if (!id.empty()) {
    j["text"] = "Stored in the File Analysis quarantine as " + id + ".";
    j["quarantine_id"] = id;
  } else {
    j["text"] = "Not stored in the quarantine (" + why + "): it is still analysed.";
    j["not_stored"] = why;
  }
  append_line(out, j);
}

void TraceBuilder::on_poll(const std::string& sha256, const std::string& endpoint, const std::string& state,
                           const std::string& error, double latency_ms, std::string& out) {
  Json j{{"time", rfc3339(now_unix_us())}, {"sha256", sha256}, {"step", "poll"}, {"text", ""}};
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.1f", latency_ms);
  if (error.empty()) {
    j["text"] = "Polled " + endpoint + " for " + short_sha(sha256) + ": " + state + " (" + ms + " ms).";
    j["state"] = state;
  } else {
    j["text"] = "Poll of " + short_sha(sha256) + " at " + endpoint + " failed: " + error + "; asked again later.";
    j["error"] = error;
  }
  j["endpoint"] = endpoint;
  j["latency_ms"] = latency_ms;
  append_line(out, j);
}

// --- the log ---

TraceLog::~TraceLog() {
  if (out_) std::fclose(out_);
}

bool TraceLog::open(const TraceSettings& settings, std::string& error) {
  s_ = settings;
  if (s_.path.empty()) return true;
  out_ = std::fopen(s_.path.c_str(), "ae");
  if (!out_) {
    error = "trace.path '" + s_.path + "': " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  size_ = ::fstat(fileno(out_), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return true;
}

void TraceLog::rotate() {
  std::fclose(out_);
  out_ = nullptr;
  if (s_.max_files <= 1) {
    std::remove(s_.path.c_str());
  } else {
    std::remove(trace_file(s_.path, s_.max_files - 1).c_str());
    for (unsigned k = s_.max_files - 1; k >= 1; --k)
      std::rename(trace_file(s_.path, k - 1).c_str(), trace_file(s_.path, k).c_str());
  }
  ++rotations_;
  out_ = std::fopen(s_.path.c_str(), "ae");
  size_ = 0;
}

void TraceLog::write_block(std::string_view lines) {
  if (s_.path.empty() || lines.empty()) return;
  if (out_ && size_ > 0 && size_ + lines.size() > s_.max_file_bytes) rotate();
  if (!out_) {  // the new file could not be made, or a write failed: open it again
    out_ = std::fopen(s_.path.c_str(), "ae");
    if (!out_) return void(++write_errors_);
    struct stat st {};
    size_ = ::fstat(fileno(out_), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
  if (std::fwrite(lines.data(), 1, lines.size(), out_) != lines.size() || std::fflush(out_) != 0) {
    ++write_errors_;  // a full disk: the next block tries again in a file of its own
    std::fclose(out_);
    out_ = nullptr;
    return;
  }
  size_ += lines.size();
  lines_ += static_cast<uint64_t>(std::count(lines.begin(), lines.end(), '\n'));
}

// --- the search ---

namespace {

// Calls fn(line) for every complete line of the trace files, oldest file first.
template <typename Fn>
void each_line(const TraceSettings& s, Json& stats, Fn fn) {
  uint64_t files = 0, bytes = 0;
  for (unsigned k = s.max_files; k-- > 0;) {
    std::ifstream in(trace_file(s.path, k), std::ios::binary);
    if (!in) continue;
    ++files;
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline: a line being written
      bytes += line.size() + 1;
      fn(std::string_view(line));
    }
  }
  stats["files_read"] = files;
  stats["bytes_read"] = bytes;
}

}  // namespace

Json trace_search(const TraceSettings& s, const TraceQuery& q) {
  Json result{{"messages", Json::array()}};
  if (s.path.empty()) return result;
  Json stats;
  // Which messages: by reference at once, else the references of the lines that name the key.
  std::vector<std::string> refs;
  if (!q.ref.empty()) {
    refs.push_back(q.ref);
  } else {
    std::string needle;
    if (!q.message_id.empty())
      needle = "\"message_id\":" + Json(q.message_id).dump(-1, ' ', false, Json::error_handler_t::replace) + ",";
    else if (!q.message_sha256.empty())
      needle = "\"message_sha256\":\"" + q.message_sha256 + "\"";
    else if (q.flow_id && q.transaction)
      needle = "\"flow_id\":" + std::to_string(*q.flow_id) + ",\"transaction\":" + std::to_string(*q.transaction) + ",";
    else
      return result;
    std::set<std::string> seen;
    each_line(s, stats, [&](std::string_view line) {
      if (line.find(needle) == std::string_view::npos) return;
      const std::string_view r = quick_value(line, "\"ref\":\"");
      if (!r.empty() && seen.insert(std::string(r)).second) refs.emplace_back(r);
    });
    if (refs.size() > q.max_messages) refs.erase(refs.begin(), refs.end() - q.max_messages);
  }
  if (refs.empty()) {
    result["files_read"] = stats.value("files_read", uint64_t{0});
    result["bytes_read"] = stats.value("bytes_read", uint64_t{0});
    return result;
  }
  // Their lines, and those of the analysis samples they waited on (polls, completion), which name the
  // SHA-256 only and come after the file's line in the log.
  std::map<std::string, std::size_t> index;  // ref -> position in `messages`
  Json messages = Json::array();
  for (const auto& r : refs) {
    index.emplace(r, messages.size());
    messages.push_back({{"ref", r}, {"steps", Json::array()}});
  }
  std::map<std::string, std::vector<std::size_t>> samples;  // sha256 -> messages waiting on it
  each_line(s, stats, [&](std::string_view line) {
    const std::string_view head = line.substr(0, 80);
    const std::string_view r = quick_value(head, "\"ref\":\"");
    std::vector<std::size_t> to;
    if (!r.empty()) {
      auto it = index.find(std::string(r));
      if (it == index.end()) return;
      to.push_back(it->second);
    } else {
      const std::string_view sha = quick_value(line.substr(0, 140), "\"sha256\":\"");
      if (sha.empty()) return;
      auto it = samples.find(std::string(sha));
      if (it == samples.end()) return;
      to = it->second;
    }
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    for (std::size_t m : to) {
      Json& msg = messages[m];
      if (msg["steps"].size() >= q.max_steps) {
        msg["steps_truncated"] = true;
        continue;
      }
      if (!r.empty()) {
        if (!msg.contains("flow_id")) {
          msg["flow_id"] = j.value("flow_id", uint64_t{0});
          msg["transaction"] = j.value("transaction", uint64_t{0});
        }
        for (const char* k : {"message_id", "message_sha256", "subject"})
          if (j.contains(k) && !msg.contains(k)) msg[k] = j[k];
        const std::string step = j.value("step", "");
        const std::string status = j.value("analysis", j.value("status", ""));
        if ((step == "upload" || step == "analysis") &&
            (status == "submitted" || status == "waiting" || status == "already_known")) {
          auto& v = samples[j.value("sha256", "")];
          if (std::find(v.begin(), v.end(), m) == v.end()) v.push_back(m);
        }
      }
      msg["steps"].push_back(j);
    }
  });
  for (auto& m : messages)
    if (!m["steps"].empty()) {
      // Members in a fixed order, whatever line named them first.
      Json out{{"ref", m["ref"]}};
      for (const char* k : {"flow_id", "transaction", "message_id", "message_sha256", "subject"})
        out[k] = m.contains(k) ? m[k] : Json(nullptr);
      // In the order they were written (what happened first on the control plane comes first),
      // except: the `parsed` step first, as a person reads a message (it is written when the server
      // answers the end of data, after the verdict when enforcing); and a file's `analysis` step
      // (the submission, written when it was decided) after that file's `upload` step (written with
      // the file's line once the whole message is in), which it details.
      std::vector<Json> steps(m["steps"].begin(), m["steps"].end());
      std::stable_partition(steps.begin(), steps.end(), [](const Json& x) { return x.value("step", "") == "parsed"; });
      for (std::size_t i = 0; i < steps.size(); ++i) {
        if (steps[i].value("step", "") != "analysis") continue;
        const std::string sha = steps[i].value("sha256", "");
        for (std::size_t k = i + 1; k < steps.size(); ++k)
          if (steps[k].value("step", "") == "upload" && steps[k].value("sha256", "") == sha) {
            std::rotate(steps.begin() + static_cast<std::ptrdiff_t>(i), steps.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                        steps.begin() + static_cast<std::ptrdiff_t>(k) + 1);
            --i;  // the step now at i is another one: look at it too
            break;
          }
      }
      out["steps"] = steps;
      if (m.contains("steps_truncated")) out["steps_truncated"] = true;
      result["messages"].push_back(std::move(out));
    }
  result["files_read"] = stats.value("files_read", uint64_t{0});
  result["bytes_read"] = stats.value("bytes_read", uint64_t{0});
  return result;
}

}  // namespace sluice::control
