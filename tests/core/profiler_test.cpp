// Tests of the op profiler (core/profiler.h): op scopes and "<op>_bwd" backward scopes with their
// call counts, total vs self time of nested scopes, the table and JSON, and that nothing is
// recorded while it is off.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "core/ops.h"
#include "core/profiler.h"
#include "tests/test_util.h"

namespace ld {
namespace {

// Each case starts from an empty, disabled profiler and leaves it so (LD_PROFILE may be set).
class ProfilerGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    Profiler::enable(false);
    Profiler::reset();
  }
  void TearDown() override {
    Profiler::enable(false);
    Profiler::reset();
  }
};

std::map<std::string, ProfileRow> by_name() {
  std::map<std::string, ProfileRow> m;
  for (const ProfileRow& r : Profiler::rows()) m[r.name] = r;
  return m;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

TEST_F(ProfilerGolden, MatmulSoftmaxBackwardNamesAndCounts) {
  Tensor a = test::randn({4, 5}, 1, DType::f32).set_requires_grad(true);
  Tensor b = test::randn({5, 6}, 2, DType::f32).set_requires_grad(true);
  Profiler::enable();
  for (int i = 0; i < 3; ++i) {
    Tensor y = softmax(matmul(a, b));
    sum(y).backward();
  }
  Profiler::enable(false);
  auto rows = by_name();
  for (const char* name : {"matmul", "softmax", "sum", "matmul_bwd", "softmax_bwd", "sum_bwd"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(rows.count(name)) << Profiler::table();
    EXPECT_EQ(rows[name].calls, 3);
    EXPECT_GE(rows[name].total_ms, rows[name].self_ms);
    EXPECT_GE(rows[name].self_ms, 0.0);
  }
  // The second and third backward accumulate into the leaves' existing .grad: add_ twice each.
  ASSERT_TRUE(rows.count("add_"));
  EXPECT_EQ(rows["add_"].calls, 4);
  // No stray names: every row is an op of this graph.
  EXPECT_EQ(rows.size(), 7u) << Profiler::table();
  const std::string t = Profiler::table();
  for (const char* col : {"calls", "total ms", "self ms", "share", "matmul_bwd"})
    EXPECT_NE(t.find(col), std::string::npos) << col << " missing from\n" << t;
  const std::string j = Profiler::json();
  EXPECT_NE(j.find("\"name\": \"softmax_bwd\", \"calls\": 3"), std::string::npos) << j;
}

TEST_F(ProfilerGolden, DisabledRecordsNothing) {
  Tensor a = test::randn({4, 5}, 1, DType::f32).set_requires_grad(true);
  Tensor b = test::randn({5, 6}, 2, DType::f32);
  sum(softmax(matmul(a, b))).backward();
  { LD_PROFILE_SCOPE("manual"); }
  EXPECT_TRUE(Profiler::rows().empty()) << Profiler::table();
  EXPECT_EQ(Profiler::json(), "{\"unit\": \"ms\", \"ops\": []}\n");
  // Enabling later does not see the earlier calls; reset clears.
  Profiler::enable();
  Tensor m = matmul(a, b);
  EXPECT_EQ(by_name()["matmul"].calls, 1);
  Profiler::reset();
  EXPECT_TRUE(Profiler::rows().empty());
}

TEST_F(ProfilerGolden, NestedScopesSelfTimeExcludesChildren) {
  Profiler::enable();
  {
    LD_PROFILE_SCOPE("outer");
    sleep_ms(20);
    {
      LD_PROFILE_SCOPE("inner");
      sleep_ms(30);
    }
    {
      LD_PROFILE_SCOPE("inner");
      sleep_ms(10);
    }
  }
  auto rows = by_name();
  const ProfileRow &o = rows["outer"], &in = rows["inner"];
  EXPECT_EQ(o.calls, 1);
  EXPECT_EQ(in.calls, 2);
  EXPECT_GE(o.total_ms, 60.0);
  EXPECT_GE(in.total_ms, 40.0);
  EXPECT_DOUBLE_EQ(in.self_ms, in.total_ms);  // a leaf: self = total
  // outer's self is its total minus the inner scopes' totals (about 20 ms, not 60).
  EXPECT_NEAR(o.self_ms, o.total_ms - in.total_ms, 1e-6);
  EXPECT_GE(o.self_ms, 20.0);
  EXPECT_LT(o.self_ms, 40.0);
  // Self times add up to the outermost scope's total: nothing is counted twice.
  EXPECT_NEAR(o.self_ms + in.self_ms, o.total_ms, 1e-6);

  // Ops nest the same way: linear's total includes its matmul and bias add, its self does not.
  Profiler::reset();
  Tensor x = test::randn({64, 32}, 3, DType::f32), w = test::randn({16, 32}, 4, DType::f32);
  Tensor bias = test::randn({16}, 5, DType::f32);
  Tensor y = linear(x, w, bias);
  rows = by_name();
  ASSERT_TRUE(rows.count("linear") && rows.count("matmul") && rows.count("add"))
      << Profiler::table();
  EXPECT_NEAR(rows["linear"].self_ms,
              rows["linear"].total_ms - rows["matmul"].total_ms - rows["add"].total_ms, 1e-6);
  EXPECT_EQ(rows["matmul"].calls, 1);
}

TEST_F(ProfilerGolden, RecordedNameAndBackwardNameAreStable) {
  Profiler::enable();
  Profiler::record("external", 2.5);
  Profiler::record("external", 0.5);
  auto rows = by_name();
  EXPECT_EQ(rows["external"].calls, 2);
  EXPECT_DOUBLE_EQ(rows["external"].total_ms, 3.0);
  EXPECT_DOUBLE_EQ(rows["external"].max_ms, 2.5);
  // One string per name, whatever the call site.
  EXPECT_EQ(std::string(backward_name("layer_norm")), "layer_norm_bwd");
  EXPECT_EQ(backward_name("layer_norm"), backward_name("layer_norm"));
}

}  // namespace
}  // namespace ld
