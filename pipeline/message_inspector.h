// The attachment pipeline's view of one SMTP session slot: it receives each message's content from
// the reassembler (reassembly::MessageObserver), parses its MIME structure as it streams by
// (decoding on the RX lcore, in the same pass that frames the parts) and hands every attachment's
// decoded bytes to the RX lcore's AttachmentHandoff, which sends them to a worker for SHA-256,
// typing and archives, and writes the `file` events once the message and its results are complete.
#pragma once

#include <memory>
#include <vector>

#include "pipeline/attachment_handoff.h"
#include "pipeline/mime_parser.h"
#include "reassembly/message_observer.h"

namespace sluice::pipeline {

class MessageInspectorFactory final : public reassembly::MessageObserverFactory {
 public:
  // `handoffs[i]`: the hand-off of RX lcore i (owned by the caller, outliving the factory's
  // products). With `body_scan`, parsers skip bodies with Hyperscan (mime_body_scan.h), using
  // `scratches[i]` on RX lcore i; without, with their SSE2 scan.
  MessageInspectorFactory(const MimeLimits& limits, std::vector<AttachmentHandoff*> handoffs,
                          const MimeBodyScan* body_scan = nullptr, std::vector<MimeBodyScan::Scratch*> scratches = {})
      : limits_(limits), handoffs_(std::move(handoffs)), body_scan_(body_scan), scratches_(std::move(scratches)) {
    // The header_lenient reading's parser of each RX lcore (mime_readings.h), made on first use.
    for (std::size_t i = 0; i < handoffs_.size(); ++i) pools_.push_back(std::make_shared<SingleParserPool>(limits_));
  }
  std::unique_ptr<reassembly::MessageObserver> make(records::RecordSink& out, unsigned lcore) override;
  // An inspector with its MIME parser, the parser's child parsers and buffers, in one piece.
  std::size_t footprint() const noexcept override;
  reassembly::MessageObserver* make_at(void* memory, records::RecordSink& out, unsigned lcore) noexcept override;
  // Debug (`hold.debug_hold_every_message`): every inspector asks for the frame ending each of its
  // messages to be held (MessageObserver::hold_end), so that the hold path runs without a policy.
  // Start-up only, before the first make().
  void hold_every_message_end(bool on) noexcept { hold_ends_ = on; }

 private:
  MimeLimits limits_;
  std::vector<AttachmentHandoff*> handoffs_;
  const MimeBodyScan* body_scan_;
  std::vector<MimeBodyScan::Scratch*> scratches_;
  std::vector<std::shared_ptr<SingleParserPool>> pools_;
  bool hold_ends_ = false;
};

}  // namespace sluice::pipeline
