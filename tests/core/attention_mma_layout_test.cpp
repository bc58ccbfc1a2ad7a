// CPU check of the tensor-core fragment layout used by the attention kernels
// (core/cuda/mma_frag.h): the layout helpers against the PTX ISA tables (transcribed here
// independently, in the ISA's own if/else form), and an emulated warp-level mma.sync.m16n8k16 fed
// by the kernels' own fragment loaders over padded shared-memory-like tiles, compared with a plain
// matrix product: S = Q K^T, then O = P V with P taken from S's C fragments, the two shapes every
// attention product uses.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/cuda/attention_tiles.h"
#include "core/cuda/mma_frag.h"
#include "core/half.h"

namespace ld::cuda::mma {
namespace {

// ---- the PTX ISA tables for .bf16/.f16 m16n8k16, written out as the ISA states them ----
RowCol spec_a(int lane, int i) {
  const int groupID = lane >> 2, threadID_in_group = lane % 4;
  const int row = ((0 <= i && i < 2) || (4 <= i && i < 6)) ? groupID : groupID + 8;
  const int col =
      i < 4 ? (threadID_in_group * 2) + (i & 0x1) : (threadID_in_group * 2) + (i & 0x1) + 8;
  return {row, col};
}
RowCol spec_b(int lane, int i) {
  const int groupID = lane >> 2, threadID_in_group = lane % 4;
  const int row =
      i < 2 ? (threadID_in_group * 2) + (i & 0x1) : (threadID_in_group * 2) + (i & 0x1) + 8;
  return {row, groupID};
}
RowCol spec_c(int lane, int i) {
  const int groupID = lane >> 2, threadID_in_group = lane % 4;
  return {i < 2 ? groupID : groupID + 8, (threadID_in_group * 2) + (i & 0x1)};
}

enum class Ty { bf16, f16 };
void PrintTo(Ty ty, std::ostream* os) { *os << (ty == Ty::bf16 ? "bf16" : "f16"); }
float to_f(Ty ty, uint16_t b) {
  return ty == Ty::bf16 ? bf16_bits_to_float(b) : f16_bits_to_float(b);
}
uint16_t to_bits(Ty ty, float f) {
  return ty == Ty::bf16 ? float_to_bf16_bits(f) : float_to_f16_bits(f);
}
// Element i of a fragment of 16-bit values packed two to a register (lower index in the low half).
uint16_t half_of(const uint32_t* regs, int i) {
  return static_cast<uint16_t>((regs[i / 2] >> (16 * (i % 2))) & 0xffffu);
}

// One warp's mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32 d, a, b, c as the ISA
// defines it: the A, B, C matrices are read out of the 32 lanes' fragments through the ISA tables,
// D = A B + C is formed (double sums), and D goes back to the lanes through the C table.
void emulate_mma(Ty ty, float (&d)[32][4], const uint32_t (&a)[32][4], const uint32_t (&b)[32][2],
                 const float (&c)[32][4]) {
  double A[16][16], B[16][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i)
      A[spec_a(lane, i).row][spec_a(lane, i).col] = to_f(ty, half_of(a[lane], i));
    for (int i = 0; i < 4; ++i)
      B[spec_b(lane, i).row][spec_b(lane, i).col] = to_f(ty, half_of(b[lane], i));
    for (int i = 0; i < 4; ++i) C[spec_c(lane, i).row][spec_c(lane, i).col] = c[lane][i];
  }
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      const RowCol rc = spec_c(lane, i);
      double s = C[rc.row][rc.col];
      for (int k = 0; k < 16; ++k) s += A[rc.row][k] * B[k][rc.col];
      d[lane][i] = static_cast<float>(s);
    }
}

// A padded tile of 16-bit values, rows x ld (ld = cols + 8 as in the kernels' shared memory).
struct Tile {
  int rows, cols, ld;
  std::vector<uint16_t> bits;
  float at(Ty ty, int r, int c) const { return to_f(ty, bits[r * ld + c]); }
};
Tile random_tile(Ty ty, int rows, int cols, uint32_t seed) {
  Tile t{rows, cols, cols + 8, {}};
  t.bits.assign(static_cast<size_t>(rows) * t.ld, to_bits(ty, 1e30f));  // poison the padding
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) t.bits[r * t.ld + c] = to_bits(ty, nd(gen));
  return t;
}

TEST(MmaFragLayout, HelpersMatchPtxTables) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(a_elem(lane, i).row, spec_a(lane, i).row) << lane << " a" << i;
      EXPECT_EQ(a_elem(lane, i).col, spec_a(lane, i).col) << lane << " a" << i;
    }
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(b_elem(lane, i).row, spec_b(lane, i).row) << lane << " b" << i;
      EXPECT_EQ(b_elem(lane, i).col, spec_b(lane, i).col) << lane << " b" << i;
      EXPECT_EQ(c_elem(lane, i).row, spec_c(lane, i).row) << lane << " c" << i;
      EXPECT_EQ(c_elem(lane, i).col, spec_c(lane, i).col) << lane << " c" << i;
    }
  }
}

TEST(MmaFragLayout, EveryElementHeldByExactlyOneLane) {
  int A[16][16] = {}, B[16][8] = {}, C[16][8] = {};
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) ++A[a_elem(lane, i).row][a_elem(lane, i).col];
    for (int i = 0; i < 4; ++i) ++B[b_elem(lane, i).row][b_elem(lane, i).col];
    for (int i = 0; i < 4; ++i) ++C[c_elem(lane, i).row][c_elem(lane, i).col];
  }
  for (int r = 0; r < 16; ++r) {
    for (int c = 0; c < 16; ++c) EXPECT_EQ(A[r][c], 1) << r << "," << c;
    for (int c = 0; c < 8; ++c) EXPECT_EQ(B[r][c], 1) << r << "," << c;
    for (int c = 0; c < 8; ++c) EXPECT_EQ(C[r][c], 1) << r << "," << c;
  }
}

// The 32-bit loads need even offsets, and each register's two elements must be adjacent in memory.
TEST(MmaFragLayout, RegisterPairsAreAdjacentAndAligned) {
  for (int ld : {72, 136})
    for (int lane = 0; lane < 32; ++lane) {
      for (int r = 0; r < 4; ++r) {
        EXPECT_EQ(a_reg_offset(lane, r, ld) % 2, 0);
        EXPECT_EQ(a_elem(lane, 2 * r + 1).row, a_elem(lane, 2 * r).row);
        EXPECT_EQ(a_elem(lane, 2 * r + 1).col, a_elem(lane, 2 * r).col + 1);
      }
      for (int r = 0; r < 2; ++r) {
        EXPECT_EQ(b_reg_offset_nk(lane, r, ld) % 2, 0);
        EXPECT_EQ(b_elem(lane, 2 * r + 1).col, b_elem(lane, 2 * r).col);
        EXPECT_EQ(b_elem(lane, 2 * r + 1).row, b_elem(lane, 2 * r).row + 1);
      }
    }
}

class MmaFragEmulation : public ::testing::TestWithParam<std::tuple<Ty, int>> {};

// One warp of the forward kernel: rows [16w, 16w + 16) of a 64 x D query tile times a 64 x D key
// tile, S = Q K^T (A row-major from Q, B as [n][k] from K), then O = P V with P = the rounded S
// taken from S's C fragments (a_from_c) and V as [k][n]. Both checked against plain products.
TEST_P(MmaFragEmulation, ScoresThenProbabilitiesTimesValuesMatchMatmul) {
  const auto [ty, D] = GetParam();
  constexpr int kRows = 64, kKeys = 64;
  const Tile Q = random_tile(ty, kRows, D, 1), K = random_tile(ty, kKeys, D, 2),
             V = random_tile(ty, kKeys, D, 3);
  auto pack = [ty](float lo, float hi) { return pack_u16(to_bits(ty, lo), to_bits(ty, hi)); };
  for (int warp : {0, 3}) {
    SCOPED_TRACE("warp " + std::to_string(warp) + " D " + std::to_string(D));
    // ---- S = Q K^T: kKeys / 8 n-tiles, D / 16 k-steps ----
    std::vector<std::array<std::array<float, 4>, 32>> S(kKeys / 8);
    for (int nt = 0; nt < kKeys / 8; ++nt) {
      float acc[32][4] = {};
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t a[32][4], b[32][2];
        for (int lane = 0; lane < 32; ++lane) {
          load_a(a[lane], Q.bits.data() + warp * 16 * Q.ld + kk * 16, Q.ld, lane);
          load_b_nk(b[lane], K.bits.data() + nt * 8 * K.ld + kk * 16, K.ld, lane);
        }
        float d[32][4];
        emulate_mma(ty, d, a, b, acc);
        std::memcpy(acc, d, sizeof acc);
      }
      for (int lane = 0; lane < 32; ++lane)
        for (int e = 0; e < 4; ++e) {
          S[nt][lane][e] = acc[lane][e];
          const RowCol rc = c_elem(lane, e);
          const int i = warp * 16 + rc.row, j = nt * 8 + rc.col;
          double ref = 0;
          for (int k = 0; k < D; ++k) ref += double(Q.at(ty, i, k)) * K.at(ty, j, k);
          ASSERT_NEAR(acc[lane][e], ref, 1e-4 * (1 + std::fabs(ref))) << "S " << i << "," << j;
        }
    }
    // ---- O = P V with P = S (scaled down to probability-like magnitudes) ----
    for (auto& t : S)
      for (auto& l : t)
        for (float& x : l) x *= 0.125f;
    for (int dt = 0; dt < D / 8; ++dt) {
      float acc[32][4] = {};
      for (int ks = 0; ks < kKeys / 16; ++ks) {
        uint32_t a[32][4], b[32][2];
        for (int lane = 0; lane < 32; ++lane) {
          float lo[4], hi[4];
          for (int e = 0; e < 4; ++e) {
            lo[e] = S[2 * ks][lane][e];
            hi[e] = S[2 * ks + 1][lane][e];
          }
          a_from_c(a[lane], lo, hi, pack);
          load_b_kn(b[lane], V.bits.data() + ks * 16 * V.ld + dt * 8, V.ld, lane);
        }
        float d[32][4];
        emulate_mma(ty, d, a, b, acc);
        std::memcpy(acc, d, sizeof acc);
      }
      for (int lane = 0; lane < 32; ++lane)
        for (int e = 0; e < 4; ++e) {
          const RowCol rc = c_elem(lane, e);
          const int i = rc.row, d = dt * 8 + rc.col;  // i: row within the warp's 16
          double ref = 0;
          for (int j = 0; j < kKeys; ++j) {
            // P[i][j] as the kernel has it: S's C element for (i, j), rounded to 16 bits.
            float pij = 0;
            for (int l = 0; l < 32; ++l)
              for (int f = 0; f < 4; ++f)
                if (c_elem(l, f).row == i && c_elem(l, f).col == j % 8) pij = S[j / 8][l][f];
            ref += double(to_f(ty, to_bits(ty, pij))) * V.at(ty, j, d);
          }
          ASSERT_NEAR(acc[lane][e], ref, 1e-4 * (1 + std::fabs(ref))) << "O " << i << "," << d;
        }
    }
  }
}

// key_end / query_begin bound the loops of the forward and dQ kernels (keys a block of query rows
// may see) and of the dK/dV kernel (queries a block of keys may be seen by): they must cover every
// visible (query, key) pair, and are exact, so no tile past them is ever loaded for nothing.
TEST(AttentionTiles, CausalBlockBoundsAreExact) {
  const int64_t lens[] = {1, 2, 5, 31, 33, 37, 64, 65, 70, 130, 131, 200};
  for (bool causal : {false, true})
    for (int64_t Tq : lens)
      for (int64_t Tk : lens)
        for (int64_t block : {32, 64}) {
          SCOPED_TRACE(::testing::Message() << "causal " << causal << " Tq " << Tq << " Tk " << Tk
                                            << " block " << block);
          for (int64_t m0 = 0; m0 < Tq; m0 += block) {
            int64_t last_visible = -1;
            for (int64_t i = m0; i < std::min(m0 + block, Tq); ++i)
              for (int64_t j = 0; j < Tk; ++j)
                if (attn::causal_visible(causal, Tq, Tk, i, j))
                  last_visible = std::max(last_visible, j);
            EXPECT_EQ(attn::key_end(causal, Tq, Tk, m0, block), last_visible + 1) << "m0 " << m0;
          }
          for (int64_t n0 = 0; n0 < Tk; n0 += block) {
            int64_t first_visible = Tq;
            for (int64_t j = n0; j < std::min(n0 + block, Tk); ++j)
              for (int64_t i = 0; i < Tq; ++i)
                if (attn::causal_visible(causal, Tq, Tk, i, j))
                  first_visible = std::min(first_visible, i);
            const int64_t qb = attn::query_begin(causal, Tq, Tk, n0);
            if (first_visible < Tq)
              EXPECT_EQ(qb, first_visible) << "n0 " << n0;
            else
              EXPECT_GE(qb, Tq) << "n0 " << n0;  // no query sees the block: no tile loaded
          }
        }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MmaFragEmulation,
                         ::testing::Combine(::testing::Values(Ty::bf16, Ty::f16),
                                            ::testing::Values(64, 128)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == Ty::bf16 ? "bf16"
                                                                                  : "f16") +
                                  "_D" + std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace ld::cuda::mma
