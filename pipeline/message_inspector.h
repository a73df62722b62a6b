// The attachment pipeline's view of one SMTP session slot: it receives each message's content from
// the reassembler (reassembly::MessageObserver), parses its MIME structure as it streams by,
// hashes every attachment (SHA-256) and writes one `file` event per attachment when the message
// ends, with the message's SHA-256, its transaction and the part's MIME path.
//
// Runs on the RX lcore today (decoding and hashing where the parts are framed); the worker issue
// moves decoding and hashing to worker lcores behind the same events.
#pragma once

#include <memory>

#include "pipeline/mime_parser.h"
#include "reassembly/message_observer.h"

namespace sluice::pipeline {

struct InspectorLimits {
  MimeLimits mime;
  uint32_t max_file_records = 32;  // file events held per message until its SHA-256 is known;
                                   // beyond, the oldest is written at once without message_sha256
};

class MessageInspectorFactory final : public reassembly::MessageObserverFactory {
 public:
  explicit MessageInspectorFactory(const InspectorLimits& limits) : limits_(limits) {}
  std::unique_ptr<reassembly::MessageObserver> make(reassembly::EventOutput& out) override;

 private:
  InspectorLimits limits_;
};

}  // namespace sluice::pipeline
