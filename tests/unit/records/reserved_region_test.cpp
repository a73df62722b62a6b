#include "records/reserved_region.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

#include "pipeline/message_records.h"

namespace sluice::records {
namespace {

TEST(ReservedRegion, WholePagesZeroFilledAndMovable) {
  ReservedRegion r(10000);
  ASSERT_NE(r.data(), nullptr);
  EXPECT_EQ(r.size() % 4096, 0u);
  EXPECT_GE(r.size(), 10000u);
  const auto* p = static_cast<const uint8_t*>(r.data());
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[9999], 0);
  ReservedRegion moved(std::move(r));
  EXPECT_EQ(r.data(), nullptr);
  EXPECT_EQ(moved.data(), p);
  EXPECT_EQ(ReservedRegion(0).data(), nullptr);
}

TEST(Carve, AlignedPiecesUntilUsedUp) {
  alignas(64) static char mem[256];
  Carve c(mem, sizeof mem);
  void* a = c.take(1);
  void* b = c.take(65);
  EXPECT_EQ(a, mem);
  EXPECT_EQ(b, mem + 64);
  EXPECT_EQ(c.left(), 64u);
  EXPECT_EQ(c.take(65), nullptr);  // does not fit: nothing taken
  EXPECT_EQ(c.take(64), mem + 192);
  EXPECT_EQ(c.left(), 0u);
}

}  // namespace
}  // namespace sluice::records

namespace sluice::pipeline {
namespace {

struct Counted {
  static inline int made = 0;
  int value = 7;
  Counted() { ++made; }
};

// Records are constructed the first time they are taken, in the order the old free list gave them:
// the last given back first, then ascending.
TEST(RecordPool, ConstructsOnFirstTakeInFreeListOrder) {
  Counted::made = 0;
  RecordPool<Counted> pool(3);
  EXPECT_EQ(Counted::made, 0);
  EXPECT_EQ(pool.built(), 0u);
  EXPECT_FALSE(pool.exhausted());
  EXPECT_EQ(pool.take(), 0u);
  EXPECT_EQ(pool.take(), 1u);
  EXPECT_EQ(Counted::made, 2);
  pool[1].value = 9;
  pool.put(1);
  EXPECT_EQ(pool.take(), 1u);  // given back last: taken first, not made again
  EXPECT_EQ(pool[1].value, 9);
  EXPECT_EQ(Counted::made, 2);
  EXPECT_EQ(pool.take(), 2u);
  EXPECT_TRUE(pool.exhausted());
  EXPECT_EQ(pool.take(), kNoRecord);
  EXPECT_EQ(pool.built(), 3u);
  pool.put(0);
  EXPECT_FALSE(pool.exhausted());
  EXPECT_EQ(pool.take(), 0u);
}

}  // namespace
}  // namespace sluice::pipeline
