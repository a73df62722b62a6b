// scripts/bench-workers: what one worker lcore does per second, and what the RX -> worker hand-off
// carries, from memory (no packets):
//   worker   SHA-256 + typing of 256 KiB random attachments fed as 4 KiB chunks (AttachmentWorker)
//   decode   base64 decoding (what the RX lcore does in the MIME parse) + chunking + the worker,
//            on one core: the cost if decoding moved to the worker
//   ring     chunks through the real rings and pools (dataplane/worker_rings.h) from lcore 1 to
//            lcore 2 and back to the pool, the worker only touching the chunk: hand-off rate
//   ring+sha the same with the worker hashing and typing: RX -> worker throughput
// Times are thread CPU time of the measuring lcore for the single-core modes, wall time for the
// two-lcore modes. Usage: bench_workers ROUNDS [EAL args...]
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "dataplane/worker_rings.h"
#include "pipeline/attachment_worker.h"
#include "pipeline/base64.h"

namespace {

using namespace sluice;

constexpr std::size_t kAttachment = 256 * 1024;
constexpr std::size_t kAttachments = 256;  // 64 MiB per round
constexpr unsigned kWorkerLcore = 1;       // the main lcore (0) plays the RX lcore

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct NullOutput final : pipeline::ResultOutput {
  uint64_t results = 0;
  void put(const pipeline::WorkResult&) noexcept override { ++results; }
};

std::vector<uint8_t> payload(std::size_t n) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> b(n);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

std::vector<uint8_t> base64_lines(const std::vector<uint8_t>& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uint8_t> out;
  std::size_t col = 0;
  for (std::size_t i = 0; i + 2 < in.size(); i += 3) {
    const uint32_t v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
    for (int k = 3; k >= 0; --k) out.push_back(t[(v >> (6 * k)) & 63]);
    if ((col += 4) == 76) {
      out.push_back('\r');
      out.push_back('\n');
      col = 0;
    }
  }
  return out;
}

// Feeds one attachment as chunks, the way AttachmentHandoff fills them.
struct Chunker final : pipeline::ByteSink {
  pipeline::AttachmentWorker* worker;
  pipeline::ResultOutput* out;
  pipeline::WorkChunk chunk{};
  bool first = true;
  void on_bytes(const uint8_t* p, std::size_t n) noexcept override {
    while (n) {
      const std::size_t k = std::min(n, pipeline::kChunkData - chunk.len);
      std::memcpy(chunk.data + chunk.len, p, k);
      chunk.len += static_cast<uint32_t>(k);
      p += k;
      n -= k;
      if (chunk.len == pipeline::kChunkData) send(false);
    }
  }
  void send(bool last) noexcept {
    chunk.flags = static_cast<uint8_t>((first ? pipeline::kChunkFirst : 0) | (last ? pipeline::kChunkLast : 0));
    worker->on_chunk(chunk, *out);
    chunk.len = 0;
    first = false;
  }
};

void bench_worker(unsigned rounds, const std::vector<uint8_t>& data, const std::vector<uint8_t>& encoded) {
  pipeline::AttachmentWorker worker(pipeline::WorkerLimits{});
  NullOutput out;
  double best_plain = 1e9, best_decode = 1e9;
  uint64_t id = 1;
  for (unsigned r = 0; r < rounds; ++r) {
    double t0 = cpu_seconds();
    for (std::size_t a = 0; a < kAttachments; ++a) {
      Chunker c;
      c.worker = &worker;
      c.out = &out;
      c.chunk.attachment = id++;
      c.on_bytes(data.data(), data.size());
      c.send(true);
    }
    best_plain = std::min(best_plain, cpu_seconds() - t0);
    pipeline::Base64Decoder dec;
    t0 = cpu_seconds();
    for (std::size_t a = 0; a < kAttachments; ++a) {
      Chunker c;
      c.worker = &worker;
      c.out = &out;
      c.chunk.attachment = id++;
      dec.reset();
      for (std::size_t at = 0; at < encoded.size(); at += 1460)  // as TCP delivers it
        dec.feed(encoded.data() + at, std::min<std::size_t>(1460, encoded.size() - at), c);
      dec.finish(c);
      c.send(true);
    }
    best_decode = std::min(best_decode, cpu_seconds() - t0);
  }
  const double bytes = double(kAttachments) * data.size();
  std::printf("worker    SHA-256 + typing, 4 KiB chunks      %6.2f Gbit/s decoded  (LIMITS SHA-256 14.9)\n",
              bytes * 8 / best_plain / 1e9);
  std::printf("decode    base64 + chunks + SHA-256 + typing  %6.2f Gbit/s decoded, %6.2f Gbit/s encoded"
              "  (LIMITS chain with scalar base64: 9.1)\n",
              bytes * 8 / best_decode / 1e9, double(kAttachments) * encoded.size() * 8 / best_decode / 1e9);
}

// ---- two lcores: the real rings and pools ----
dataplane::WorkerTable table;
std::atomic<bool> rx_done_flag{false};
std::atomic<bool> hash_on_worker{false};
std::atomic<uint64_t> consumed{0};
const std::vector<uint8_t>* g_data;

pipeline::AttachmentWorker* g_worker;

int consumer(void*) {
  pipeline::AttachmentWorker& worker = *g_worker;
  NullOutput out;
  void* got[dataplane::kStage];
  uint64_t n_total = 0;
  for (;;) {
    const bool done = rx_done_flag.load(std::memory_order_acquire);
    const unsigned n = rte_ring_dequeue_burst(table.chunk_ring[0][0], got, dataplane::kStage, nullptr);
    for (unsigned k = 0; k < n; ++k) {
      auto* c = static_cast<pipeline::WorkChunk*>(got[k]);
      if (hash_on_worker.load(std::memory_order_relaxed))
        worker.on_chunk(*c, out);
      else
        n_total += c->data[0];  // touch the chunk: its cache lines cross
    }
    if (n) table.chunks[0]->give_back(got, n);
    consumed.fetch_add(n, std::memory_order_release);
    if (!n && done) break;
  }
  return static_cast<int>(n_total & 1);
}

struct NoResults final : pipeline::ResultHandler {
  void on_result(const pipeline::WorkResult&) noexcept override {}
};

void bench_ring(unsigned rounds, bool hash) {
  hash_on_worker = hash;
  double best = 1e9;
  const unsigned per_attachment = static_cast<unsigned>((g_data->size() + pipeline::kChunkData - 1) / pipeline::kChunkData);
  uint64_t id = 1;
  for (unsigned r = 0; r < rounds; ++r) {
    rx_done_flag = false;
    consumed = 0;
    rte_eal_remote_launch(consumer, nullptr, kWorkerLcore);
    dataplane::RingChannel ch(table, 0);
    NoResults none;
    const double t0 = wall_seconds();
    uint64_t sent = 0;
    for (std::size_t a = 0; a < kAttachments; ++a, ++id) {
      for (unsigned k = 0; k < per_attachment; ++k) {
        pipeline::WorkChunk* c;
        while (!(c = ch.alloc())) ch.flush();
        const std::size_t off = std::size_t{k} * pipeline::kChunkData;
        c->attachment = id;
        c->len = static_cast<uint32_t>(std::min(pipeline::kChunkData, g_data->size() - off));
        std::memcpy(c->data, g_data->data() + off, c->len);  // the RX lcore copies decoded bytes in
        c->flags = static_cast<uint8_t>((k == 0 ? pipeline::kChunkFirst : 0) | (k + 1 == per_attachment ? pipeline::kChunkLast : 0));
        c->end = pipeline::AttachmentEnd::complete;
        while (!ch.send(0, c)) ch.flush();
        ++sent;
      }
      ch.poll(none);
    }
    while (!ch.flush()) {
    }
    rx_done_flag.store(true, std::memory_order_release);
    rte_eal_wait_lcore(kWorkerLcore);
    best = std::min(best, wall_seconds() - t0);
    if (consumed.load() != sent) std::printf("ring: lost chunks (%lu of %lu)\n", consumed.load(), sent);
  }
  const double chunks = double(kAttachments) * per_attachment;
  const double bytes = double(kAttachments) * g_data->size();
  if (hash)
    std::printf("ring+sha  RX copy -> ring -> worker SHA-256    %6.2f Gbit/s decoded, %.2f M chunks/s\n",
                bytes * 8 / best / 1e9, chunks / best / 1e6);
  else
    std::printf("ring      RX copy -> ring -> worker (touch)   %6.2f Gbit/s, %.2f M chunks/s of 4 KiB"
                "  (LIMITS rte_ring burst 32: 440 M pointers/s)\n",
                bytes * 8 / best / 1e9, chunks / best / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned rounds = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 5;
  if (argc > 1) argv[1] = argv[0];
  if (rte_eal_init(argc - 1, argv + 1) < 0) {
    std::fprintf(stderr, "bench_workers: EAL init failed (give EAL args: --no-huge -m 1024 -l 0-1 --no-pci)\n");
    return 1;
  }
  const auto data = payload(kAttachment);
  const auto encoded = base64_lines(data);
  g_data = &data;
  std::printf("bench_workers: %zu attachments of %zu KiB per round, best of %u rounds\n", kAttachments,
              kAttachment / 1024, rounds);
  bench_worker(rounds, data, encoded);
  if (!rte_lcore_is_enabled(kWorkerLcore)) {
    std::printf("ring: needs lcores 0-1 (-l 0-1)\n");
    return 0;
  }
  pipeline::AttachmentWorker worker(pipeline::WorkerLimits{});
  g_worker = &worker;
  table.n_rx = 1;
  table.n_workers = 1;
  std::string error;
  auto chunks = dataplane::ChunkPool::create("bench_chunks", 8191, static_cast<int>(rte_socket_id()), error);
  table.chunks[0] = chunks.get();
  table.chunk_ring[0][0] = rte_ring_create("bench_ring", 1024, static_cast<int>(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
  table.results[0] = rte_mempool_create("bench_results", 1023, sizeof(pipeline::WorkResult), 32, 0, nullptr, nullptr,
                                        nullptr, nullptr, static_cast<int>(rte_socket_id()), 0);
  table.result_ring[0][0] = rte_ring_create("bench_results", 1024, static_cast<int>(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (!table.chunks[0] || !table.chunk_ring[0][0] || !table.results[0] || !table.result_ring[0][0]) {
    std::fprintf(stderr, "bench_workers: pools/rings failed (raise -m)\n");
    return 1;
  }
  bench_ring(rounds, false);
  bench_ring(rounds, true);
  chunks.reset();
  rte_eal_cleanup();
  return 0;
}
