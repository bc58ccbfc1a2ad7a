// Philox4x32-10 known-answer vectors (Random123), and the random tensors and initialisers built on
// it: statistics, determinism for a fixed seed, and PyTorch's nn.Linear / kaiming bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "core/cpu/vec_math.h"
#include "core/ops.h"
#include "core/philox.h"
#include "tests/test_util.h"

using namespace ld;

namespace {

// philox4x32_10(ctr_lo, ctr_hi, seed) packs the 128-bit counter as words
// c0 = ctr_lo[31:0], c1 = ctr_lo[63:32], c2 = ctr_hi[31:0], c3 = ctr_hi[63:32] and the key as
// k0 = seed[31:0], k1 = seed[63:32] -- Random123's ctr = {c0, c1, c2, c3}, key = {k0, k1}.
Philox4 kat(const uint32_t c[4], const uint32_t k[2]) {
  uint64_t lo = uint64_t(c[0]) | (uint64_t(c[1]) << 32);
  uint64_t hi = uint64_t(c[2]) | (uint64_t(c[3]) << 32);
  uint64_t key = uint64_t(k[0]) | (uint64_t(k[1]) << 32);
  return philox4x32_10(lo, hi, key);
}

void expect_kat(const uint32_t c[4], const uint32_t k[2], const uint32_t want[4]) {
  Philox4 r = kat(c, k);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(r.v[i], want[i]) << fmt::format("word {}: got {:08x} want {:08x}", i, r.v[i],
                                              want[i]);
}

struct Stats {
  double mean = 0, var = 0, lo = 1e300, hi = -1e300;
};
Stats stats(const Tensor& t) {
  std::vector<double> v = t.to(DType::f64).to_vector<double>();
  Stats s;
  for (double x : v) {
    s.mean += x;
    s.lo = std::min(s.lo, x);
    s.hi = std::max(s.hi, x);
  }
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.var += (x - s.mean) * (x - s.mean);
  s.var /= static_cast<double>(v.size() - 1);
  return s;
}

}  // namespace

TEST(PhiloxGolden, Random123KnownAnswers) {
  {
    const uint32_t c[4] = {0, 0, 0, 0}, k[2] = {0, 0};
    const uint32_t w[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    expect_kat(c, k, w);
  }
  {
    const uint32_t c[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t k[2] = {0xffffffffu, 0xffffffffu};
    const uint32_t w[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    expect_kat(c, k, w);
  }
  {
    const uint32_t c[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    const uint32_t k[2] = {0xa4093822u, 0x299f31d0u};
    const uint32_t w[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    expect_kat(c, k, w);
  }
}

// philox_u32(seed, offset, i) is word (i % 4) of block (ctr_lo = i / 4, ctr_hi = offset).
TEST(PhiloxGolden, StreamIndexingMatchesBlocks) {
  Philox4 b0 = philox4x32_10(0, 0, 0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(philox_u32(0, 0, i), b0.v[i]);
  Philox4 b5 = philox4x32_10(5, 7, 42);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(philox_u32(42, 7, 20 + i), b5.v[i]);
  float u = philox_uniform(1, 2, 3);
  EXPECT_GE(u, 0.0f);
  EXPECT_LT(u, 1.0f);
  EXPECT_EQ(u, static_cast<float>(philox_u32(1, 2, 3) >> 8) / 16777216.0f);
}

TEST(Random, UniformStatistics) {
  Generator g(7);
  const int64_t n = 200000;
  Stats s = stats(rand_uniform({n}, -2.0, 3.0, g, DType::f64));
  const double var = 25.0 / 12.0;
  EXPECT_NEAR(s.mean, 0.5, 5 * std::sqrt(var / n));
  EXPECT_NEAR(s.var, var, 0.02 * var);
  EXPECT_GE(s.lo, -2.0);
  EXPECT_LT(s.hi, 3.0);
  EXPECT_LT(s.lo, -1.99);
  EXPECT_GT(s.hi, 2.99);
}

TEST(Random, NormalStatistics) {
  Generator g(11);
  const int64_t n = 200000;
  Stats s = stats(rand_normal({n}, 1.5, 0.5, g, DType::f32));
  EXPECT_NEAR(s.mean, 1.5, 5 * 0.5 / std::sqrt(double(n)));
  EXPECT_NEAR(s.var, 0.25, 0.02 * 0.25);
  // Tails exist but are not absurd: 5 sigma is ~3e-7 per draw.
  EXPECT_LT(s.lo, 1.5 - 3 * 0.5);
  EXPECT_GT(s.lo, 1.5 - 7 * 0.5);
  Tensor z = rand_normal({n}, 0.0, 1.0, g, DType::f64);
  std::vector<double> v = z.to_vector<double>();
  int64_t within1 = 0;
  for (double x : v) within1 += std::fabs(x) < 1.0;
  EXPECT_NEAR(double(within1) / n, 0.682689, 0.005);
}

TEST(Random, BernoulliStatistics) {
  Generator g(3);
  const int64_t n = 200000;
  Tensor b = rand_bernoulli({n}, 0.3, g);
  EXPECT_EQ(b.dtype(), DType::b8);
  Stats s = stats(b);
  EXPECT_NEAR(s.mean, 0.3, 5 * std::sqrt(0.3 * 0.7 / n));
  EXPECT_EQ(stats(rand_bernoulli({1000}, 0.0, g)).hi, 0.0);
  EXPECT_EQ(stats(rand_bernoulli({1000}, 1.0, g)).lo, 1.0);
}

TEST(Random, DeterministicForAFixedSeed) {
  Generator g1(123), g2(123), g3(124);
  Tensor a1 = rand_normal({5, 7}, 0, 1, g1), a2 = rand_normal({5, 7}, 0, 1, g2);
  Tensor b1 = rand_uniform({5, 7}, 0, 1, g1), b2 = rand_uniform({5, 7}, 0, 1, g2);
  EXPECT_EQ(a1.to_vector<float>(), a2.to_vector<float>());
  EXPECT_EQ(b1.to_vector<float>(), b2.to_vector<float>());
  // Successive draws advance the offset; another seed gives other numbers.
  EXPECT_NE(rand_normal({5, 7}, 0, 1, g1).to_vector<float>(), a1.to_vector<float>());
  EXPECT_NE(rand_normal({5, 7}, 0, 1, g3).to_vector<float>(), a1.to_vector<float>());
  EXPECT_EQ(g1.offset(), 3u);
  // No repeated values in a draw (a stuck counter would repeat).
  std::vector<float> v = rand_uniform({4096}, 0, 1, g1).to_vector<float>();
  EXPECT_GT(std::set<float>(v.begin(), v.end()).size(), 4000u);
  // set_state rewinds.
  Generator g4(0);
  g4.set_state(123, 0);
  EXPECT_EQ(rand_normal({5, 7}, 0, 1, g4).to_vector<float>(), a1.to_vector<float>());
}

TEST(Random, InPlaceInitialisersKeepLayoutAndRecordNothing) {
  Generator g(5);
  Tensor w = Tensor::zeros({6, 4});
  w.set_requires_grad(true);
  normal_(w, 0.0, 0.02, g);
  EXPECT_TRUE(w.is_leaf());
  Stats s = stats(w);
  EXPECT_GT(s.hi, 0.0);
  EXPECT_LT(std::max(-s.lo, s.hi), 0.02 * 6);
  // A non-contiguous view is filled through its strides; the rest of the storage is untouched.
  Tensor base = Tensor::zeros({4, 6});
  Tensor v = base.t();
  uniform_(v, 1.0, 2.0, g);
  EXPECT_GE(stats(base).lo, 1.0);
  Tensor base2 = Tensor::zeros({4, 6});
  Tensor c2 = base2.narrow(1, 2, 1);
  uniform_(c2, 1.0, 2.0, g);
  EXPECT_GE(stats(c2).lo, 1.0);
  EXPECT_EQ(stats(base2.narrow(1, 0, 2)).hi, 0.0);
  EXPECT_EQ(stats(base2.narrow(1, 3, 3)).hi, 0.0);
}

// torch.nn.Linear: weight ~ kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
TEST(Random, LinearInitMatchesTorchBounds) {
  Generator g(9);
  const int64_t out = 64, in = 300;
  Tensor w = Tensor::empty({out, in}), b = Tensor::empty({out});
  linear_init_(w, b, g);
  const double bound = 1.0 / std::sqrt(double(in));
  Stats sw = stats(w), sb = stats(b);
  EXPECT_LE(sw.hi, bound);
  EXPECT_GE(sw.lo, -bound);
  EXPECT_GT(sw.hi, 0.99 * bound);
  EXPECT_LT(sw.lo, -0.99 * bound);
  EXPECT_NEAR(sw.var, bound * bound / 3, 0.05 * bound * bound / 3);
  EXPECT_LE(sb.hi, bound);
  EXPECT_GE(sb.lo, -bound);
  EXPECT_GT(sb.hi, 0.8 * bound);
  Tensor none;
  Tensor w2 = Tensor::empty({3, 5});
  linear_init_(w2, none, g);
  EXPECT_LE(stats(w2).hi, 1.0 / std::sqrt(5.0));
}

TEST(Random, KaimingUniformFanInAndGain) {
  Generator g(10);
  Tensor w = Tensor::empty({16, 3, 5, 5}, DType::f64);
  EXPECT_EQ(fan_in(w), 75);
  kaiming_uniform_(w, 0.0, g);  // gain sqrt(2): bound sqrt(6 / fan_in)
  const double bound = std::sqrt(6.0 / 75.0);
  Stats s = stats(w);
  EXPECT_LE(s.hi, bound);
  EXPECT_GE(s.lo, -bound);
  EXPECT_GT(s.hi, 0.98 * bound);
  kaiming_uniform_(w, std::sqrt(5.0), g);
  EXPECT_LE(stats(w).hi, 1.0 / std::sqrt(75.0));
  Tensor v = Tensor::empty({7});
  EXPECT_THROW(kaiming_uniform_(v, 0.0, g), Error);
}

// philox_fill (the CPU dropout's words): every instruction set gives core/philox.h's words, for
// block ranges of any length and start (the counter's low word wrapping into the high one too).
TEST(PhiloxFill, SameWordsOnEveryPath) {
  const std::vector<cpu::VecIsa> isas = cpu::supported_vec_isas();
  for (uint64_t first :
       {uint64_t(0), uint64_t(5), (uint64_t(1) << 32) - 3, uint64_t(0x123456789ab)})
    for (int64_t nb : {1, 7, 8, 9, 16, 37})
      for (uint64_t seed : {uint64_t(0), uint64_t(0xdeadbeefcafef00dULL)})
        for (uint64_t offset : {uint64_t(0), uint64_t(77), uint64_t(1) << 40}) {
          std::vector<uint32_t> want(static_cast<size_t>(4 * nb));
          for (int64_t j = 0; j < nb; ++j)
            for (int w = 0; w < 4; ++w)
              want[4 * j + w] =
                  philox_u32(seed, offset, 4 * (first + static_cast<uint64_t>(j)) + w);
          for (cpu::VecIsa isa : isas) {
            std::vector<uint32_t> got(want.size());
            cpu::philox_fill(first, nb, offset, seed, got.data(), isa);
            ASSERT_EQ(got, want) << cpu::vec_isa_name(isa) << " first " << first << " n " << nb;
          }
        }
}
