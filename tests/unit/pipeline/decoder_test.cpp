#include "pipeline/decoder.h"

#include <gtest/gtest.h>

#include "tests/unit/pipeline/decode_harness.h"

using namespace sluice::pipeline;
using namespace sluice::pipeline::test;

TEST(IdentityDecoder, PassesBytesAndCutsAtTheLimit) {
  IdentityDecoder d;
  Decoded r = decode_bytewise(d, "any\r\n=bytes\x80");
  EXPECT_EQ(r.out, "any\r\n=bytes\x80");
  EXPECT_EQ(r.status, DecodeStatus::ok);
  EXPECT_EQ(r.invalid, 0u);
  r = decode_split(d, "0123456789", {3, 7}, 5);
  EXPECT_EQ(r.out, "01234");
  EXPECT_EQ(r.produced, 5u);
  EXPECT_EQ(r.status, DecodeStatus::exceeded);
  r = decode(d, "01234", 5);
  EXPECT_EQ(r.status, DecodeStatus::ok);  // exactly the limit: nothing dropped
}
