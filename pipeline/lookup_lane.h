// One RX lcore's look-up lane (verdict_seam.h): a ring of requests from the lcore to the control
// plane and a ring of answers back, each single-producer/single-consumer (records/spsc_ring.h).
// The lcore uses it as its LookupChannel; the control plane (control/reputation_service.h) pops
// requests and pushes answers. Sized at construction; nothing allocates afterwards.
#pragma once

#include <cstddef>

#include "pipeline/verdict_seam.h"
#include "records/spsc_ring.h"

namespace sluice::pipeline {

class LookupLane final : public LookupChannel {
 public:
  LookupLane(std::size_t requests, std::size_t answers, std::size_t analysis = 256)
      : requests_(requests), answers_(answers), analysis_(analysis), messages_(analysis) {}
  ~LookupLane() override {
    AnalysisRequest rq;
    while (analysis_.pop(rq)) release_sample(rq.sample);
    MessageCopy c;
    while (messages_.pop(c)) release_sample(c.bytes);
  }

  // The lcore's side.
  bool ask(const records::LookupRequest& rq) noexcept override { return requests_.push(rq); }
  std::size_t poll(AnswerHandler& h, std::size_t max) noexcept override {
    std::size_t n = 0;
    records::LookupAnswer a;
    while (n < max && answers_.pop(a)) {
      h.on_answer(a);
      ++n;
    }
    return n;
  }

  bool ask_analysis(const AnalysisRequest& rq) noexcept override { return analysis_.push(rq); }
  bool send_message(const MessageCopy& c) noexcept override { return messages_.push(c); }

  // The control plane's side.
  bool pop_request(records::LookupRequest& rq) noexcept { return requests_.pop(rq); }
  bool pop_analysis(AnalysisRequest& rq) noexcept { return analysis_.pop(rq); }
  bool pop_message(MessageCopy& c) noexcept { return messages_.pop(c); }
  bool push_answer(const records::LookupAnswer& a) noexcept { return answers_.push(a); }

 private:
  records::SpscRing<records::LookupRequest> requests_;
  records::SpscRing<records::LookupAnswer> answers_;
  records::SpscRing<AnalysisRequest> analysis_;
  records::SpscRing<MessageCopy> messages_;
};

}  // namespace sluice::pipeline
