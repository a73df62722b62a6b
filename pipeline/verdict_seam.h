// The verdict seam (DESIGN.md section 1): where a message's verdict is assembled. The RX lcore that
// owns the flow holds the message's record (attachment_handoff.h) until every file result is in;
// then it asks a VerdictResponder what the message needs (per file a look-up answer: the control
// side's verdict cache and endpoints, over the lcore channels) and writes the message's events
// once the decision is there, or once its deadline has passed.
//
// In issue 9 no responder is installed: every message is decided `no_policy` at once, as before.
// The responder is installed by the data plane; tests install a fake one that answers late, out of
// order, never (the deadline decides), or after the message's flow has ended.
#pragma once

#include <cstdint>

#include "records/event_records.h"

namespace sluice::pipeline {

enum class MessageDecision : uint8_t {
  no_policy,  // nobody to ask: the message goes as it is (issue 9's only decision)
  pass,
  reject,
  defer,
  timeout,    // the responder did not answer before the deadline (the configured action applies)
  unasked,    // the question could not be asked (the responder's queue was full)
};

const char* message_decision_name(MessageDecision d) noexcept;

// Runs on the RX lcore: must not block, lock or allocate.
class VerdictResponder {
 public:
  virtual ~VerdictResponder() = default;
  // Asked once per message, when its last file result is in. `ticket` identifies the message in
  // the answer (AttachmentHandoff::on_verdict). False: the question could not be sent; the message
  // is decided `unasked` at once.
  virtual bool ask(uint64_t ticket, const records::MessageContext& message, uint32_t files) noexcept = 0;
  // The message's events are being written with this decision (the place where inline enforcement
  // will act on the held segment).
  virtual void decided(const records::MessageContext& message, MessageDecision decision) noexcept = 0;
};

}  // namespace sluice::pipeline
