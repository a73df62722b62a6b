// File analysis in sluiced (DESIGN.md section 1, steps 3-4), as the daemon sees it: the ClamAV
// pre-classifier and its pool of scan threads, the analysis endpoint client, the submission store
// in `state.dir`, and the AnalysisService that decides the lcores' candidates, submits, polls and
// writes the final verdicts; alerts when an analysis endpoint becomes unreachable or recovers; the
// `analysis` part of the `stats` event.
//
// Without analysis endpoints nothing here runs: the lcores offer no candidates.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/alert.h"
#include "control/analysis_client.h"
#include "control/analysis_service.h"
#include "control/config.h"
#include "control/service_loop.h"

namespace sluice::pipeline {
class LookupLane;
class Preclassifier;
class VerdictCache;
}  // namespace sluice::pipeline

namespace sluice::control {

class PreclassPool;
class QuarantineStore;
class SubmissionStore;

class FileAnalysis {
 public:
  // Opens the submission store and creates the pre-classifier (tens of milliseconds). What stops
  // the start is in error(); what the operator must know (a store that was refused) in alerts().
  FileAnalysis(const Config& config, ServiceLoop& loop);
  ~FileAnalysis();

  bool enabled() const noexcept { return enabled_; }
  // Set when analysis is configured but cannot run (the pre-classifier could not be created).
  const std::string& error() const noexcept { return error_; }
  std::vector<Alert> take_alerts() { return std::move(startup_alerts_); }
  const std::string& summary() const noexcept { return summary_; }

  struct Outputs {
    std::function<void(const std::string& type, Json body, const records::FlowIdentity* flow)> event;
    std::function<void(const records::VerdictRecord&)> verdict;  // a final verdict, to be rendered
    std::function<void(const Alert&)> alert;
    std::function<const pipeline::VerdictPolicy&()> policy;    // the running actions
    decltype(AnalysisHooks::quarantined) quarantined;          // traces (optional): AnalysisHooks
    decltype(AnalysisHooks::polled) polled;
  };
  // Once the data plane runs: its lanes and the verdict cache the completions write.
  void start(std::vector<pipeline::LookupLane*> lanes, pipeline::VerdictCache* cache, Outputs out);
  void poll();  // on the loop, every millisecond
  void tick();  // on the loop, every second
  // Every record the lcores write, as it is rendered: verdicts of messages that wait for analysis.
  void on_record(const void* record, std::size_t size);
  std::size_t unfinished() const noexcept { return service_ ? service_->unfinished() : 0; }
  Json stats() const;
  // Cancels what is in flight, stops the scan threads (at exit, after the data plane stopped).
  void stop();

  // The management API (api_routes.cpp), on the loop. Runs `job` on the quarantine store in the
  // order of the store's other writes (the ordered pool); false (dropped) without a quarantine, or
  // when the pool is full or stopped.
  bool quarantine_job(std::function<void(QuarantineStore&)> job);
  bool has_quarantine() const noexcept { return quarantine_ != nullptr; }
  // The analysis endpoints and their health (as FileReputation::endpoints_status()).
  Json endpoints_status() const;
  // At run time, until sluiced stops (as FileReputation's): "" or why not; false: no such endpoint.
  // A removed endpoint's pending analyses end as failed at their next poll (not_found), and the
  // messages that waited for them get their final verdicts.
  std::string add_endpoint(const EndpointConfig& e);
  bool remove_endpoint(const std::string& name);
  bool test_endpoint(const std::string& name, std::function<void(Json)> done);

 private:
  const Config& config_;
  ServiceLoop& loop_;
  bool enabled_ = false;
  std::string error_, summary_;
  std::vector<Alert> startup_alerts_;
  std::unique_ptr<pipeline::Preclassifier> preclassifier_;
  std::unique_ptr<PreclassPool> pool_;
  std::unique_ptr<SubmissionStore> store_;
  std::unique_ptr<QuarantineStore> quarantine_;
  std::unique_ptr<AnalysisClient> client_;
  std::unique_ptr<AnalysisService> service_;
  std::function<void(const Alert&)> alert_;
  struct Registered {
    std::string name, url;
    bool added = false, removed = false;
  };
  std::vector<Registered> endpoints_;  // by the client's index
  Json final_stats_;
  bool stopped_ = false;
};

}  // namespace sluice::control
