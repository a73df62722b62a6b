#include "control/cloud/faults.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using sluice::cloud::FaultSet;
using sluice::cloud::Faults;
using nlohmann::json;

TEST(Faults, NoneByDefault) {
  Faults f;
  EXPECT_FALSE(f.take());
  EXPECT_EQ(f.to_json().dump(),
            R"({"delay_ms":0,"status":null,"close":null,"malformed":false,"oversized_mb":0,"count":null})");
}

TEST(Faults, UntilClearedOrForCountRequests) {
  Faults f;
  std::string error;
  ASSERT_TRUE(f.set(json{{"status", 503}, {"delay_ms", 50}}, error)) << error;
  for (int i = 0; i < 5; ++i) {
    auto t = f.take();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->status, 503u);
    EXPECT_EQ(t->delay_ms, 50u);
  }
  f.clear();
  EXPECT_FALSE(f.take());

  ASSERT_TRUE(f.set(json{{"close", "mid_answer"}, {"count", 2}}, error)) << error;
  EXPECT_EQ(f.to_json()["count"], 2);
  EXPECT_EQ(f.take()->close, FaultSet::Close::mid_answer);
  EXPECT_EQ(f.to_json()["count"], 1);
  EXPECT_EQ(f.take()->close, FaultSet::Close::mid_answer);
  EXPECT_FALSE(f.take());
  EXPECT_EQ(f.to_json()["close"], nullptr);
}

TEST(Faults, EachShape) {
  Faults f;
  std::string error;
  ASSERT_TRUE(f.set(json{{"close", "before_answer"}}, error));
  EXPECT_EQ(f.take()->close, FaultSet::Close::before_answer);
  ASSERT_TRUE(f.set(json{{"malformed", true}}, error));
  EXPECT_TRUE(f.take()->malformed);
  ASSERT_TRUE(f.set(json{{"oversized_mb", 4}}, error));
  EXPECT_EQ(f.take()->oversized_mb, 4u);
  ASSERT_TRUE(f.set(json::object(), error));  // {}: nothing
  EXPECT_FALSE(f.take());
}

TEST(Faults, RefusedBodiesKeepTheCurrentSet) {
  Faults f;
  std::string error;
  ASSERT_TRUE(f.set(json{{"status", 500}}, error));
  for (const json& bad : {json::array(), json{{"status", 200}}, json{{"status", "503"}}, json{{"delay_ms", 600001}},
                          json{{"oversized_mb", 257}}, json{{"count", -1}}, json{{"close", true}},
                          json{{"malformed", true}, {"close", "mid_answer"}}, json{{"what", 1}}}) {
    EXPECT_FALSE(f.set(bad, error)) << bad.dump();
    EXPECT_FALSE(error.empty());
  }
  EXPECT_EQ(f.take()->status, 500u);
}
