// Per-lane fragment layout of the warp-level tensor-core MMA `mma.sync.aligned.m16n8k16.row.col`
// with 16-bit (bf16/f16) A/B and f32 C/D, and the shared-memory fragment loaders built on it.
// Plain __host__ __device__ C++ with no CUDA headers, so the CPU test
// (tests/core/attention_mma_layout_test.cpp) runs the very functions the attention kernels use.
//
// PTX ISA, "Matrix fragments for mma.m16n8k16 with floating point type" (.f16/.bf16):
//   groupID = laneid >> 2, threadID_in_group = laneid % 4 (below: g and t).
//   A, 16x16 (M x K), row-major, 8 elements a0..a7 in four .b32 registers (two each, the lower
//     index in the lower 16 bits):
//       row = g      for a0, a1, a4, a5;     row = g + 8 for a2, a3, a6, a7
//       col = 2t + (i & 1) for i < 4;        col = 2t + (i & 1) + 8 for i >= 4
//   B, 16x8 (K x N), "col" (each column of B, i.e. a run of K, is what a lane pairs up),
//     4 elements b0..b3 in two .b32 registers:
//       row (k) = 2t + (i & 1) for i < 2;   row (k) = 2t + (i & 1) + 8 for i >= 2;   col (n) = g
//   C and D, 16x8, f32, 4 elements c0..c3 in four .f32 registers:
//       row = g for i < 2; row = g + 8 for i >= 2;   col = 2t + (i & 1)
//
// So a lane's two A (or B) elements of one register are adjacent in K: for a row-major A tile and
// for a B operand stored as [n][k] (k contiguous, e.g. K rows for S = Q K^T) one register is one
// aligned 32-bit load. A B operand stored as [k][n] (e.g. V for O = P V) needs two 16-bit loads.
// C fragments of two neighbouring n-tiles form the A fragment of one k-step (a_from_c): the
// attention kernels feed the softmax probabilities P (a C result) straight into P V this way.
//
// Why inline-PTX mma.sync rather than nvcuda::wmma: wmma's fragment layout is unspecified
// ("opaque"), so the C -> A register reuse above and the per-element masking of scores by (row,
// col) would need a round trip through shared memory; mma.sync's layout is documented, which also
// lets this file be checked on the CPU.
#pragma once
#include <cstdint>

#include "core/half.h"

namespace ld::cuda::mma {

inline constexpr int kM = 16, kN = 8, kK = 16;  // the m16n8k16 shape

struct RowCol {
  int row, col;
};

LD_HD constexpr int group_id(int lane) { return lane >> 2; }
LD_HD constexpr int thread_in_group(int lane) { return lane & 3; }

// (row, col) in the 16x16 A tile of element e in [0, 8) held by `lane`.
LD_HD constexpr RowCol a_elem(int lane, int e) {
  return {group_id(lane) + 8 * ((e >> 1) & 1), 2 * thread_in_group(lane) + (e & 1) + 8 * (e >> 2)};
}
// (k, n) in the 16x8 B tile of element e in [0, 4) held by `lane`.
LD_HD constexpr RowCol b_elem(int lane, int e) {
  return {2 * thread_in_group(lane) + (e & 1) + 8 * (e >> 1), group_id(lane)};
}
// (row, col) in the 16x8 C/D tile of element e in [0, 4) held by `lane`.
LD_HD constexpr RowCol c_elem(int lane, int e) {
  return {group_id(lane) + 8 * (e >> 1), 2 * thread_in_group(lane) + (e & 1)};
}

// Element offset, in a row-major tile with leading dimension ld (elements), of the first (low)
// element of A register r in [0, 4); the second element is the next one.
LD_HD constexpr int a_reg_offset(int lane, int r, int ld) {
  return a_elem(lane, 2 * r).row * ld + a_elem(lane, 2 * r).col;
}
// Offset of the low element of B register r in [0, 2) when B is stored as [n][k] (k contiguous).
LD_HD constexpr int b_reg_offset_nk(int lane, int r, int ld) {
  return b_elem(lane, 2 * r).col * ld + b_elem(lane, 2 * r).row;
}
// Offset of B element e in [0, 4) when B is stored as [k][n] (n contiguous).
LD_HD constexpr int b_elem_offset_kn(int lane, int e, int ld) {
  return b_elem(lane, e).row * ld + b_elem(lane, e).col;
}

LD_HD inline uint32_t pack_u16(uint16_t lo, uint16_t hi) {
  return uint32_t(lo) | (uint32_t(hi) << 16);
}
// Two adjacent 16-bit values as one register, the first in the low half (needs p 4-byte aligned:
// every offset above is even when ld is even).
LD_HD inline uint32_t load_pair(const uint16_t* p) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const uint32_t*>(p);
#else
  return pack_u16(p[0], p[1]);
#endif
}

// A fragment of the 16x16 tile whose top-left element is tile[0] (row-major, leading dim ld).
// (Written out register by register, here and below: the kernels keep fragments in registers,
// which needs every index to be a compile-time constant.)
LD_HD inline void load_a(uint32_t (&a)[4], const uint16_t* tile, int ld, int lane) {
  a[0] = load_pair(tile + a_reg_offset(lane, 0, ld));
  a[1] = load_pair(tile + a_reg_offset(lane, 1, ld));
  a[2] = load_pair(tile + a_reg_offset(lane, 2, ld));
  a[3] = load_pair(tile + a_reg_offset(lane, 3, ld));
}
// B fragment of the 16(k) x 8(n) tile stored as [n][k] from tile[0] (leading dim ld).
LD_HD inline void load_b_nk(uint32_t (&b)[2], const uint16_t* tile, int ld, int lane) {
  b[0] = load_pair(tile + b_reg_offset_nk(lane, 0, ld));
  b[1] = load_pair(tile + b_reg_offset_nk(lane, 1, ld));
}
// B fragment of the 16(k) x 8(n) tile stored as [k][n] from tile[0] (leading dim ld).
LD_HD inline void load_b_kn(uint32_t (&b)[2], const uint16_t* tile, int ld, int lane) {
  b[0] = pack_u16(tile[b_elem_offset_kn(lane, 0, ld)], tile[b_elem_offset_kn(lane, 1, ld)]);
  b[1] = pack_u16(tile[b_elem_offset_kn(lane, 2, ld)], tile[b_elem_offset_kn(lane, 3, ld)]);
}

// A fragment (16 rows x 16 k) from the C fragments of the two 16x8 n-tiles covering those k:
// lo = columns 0..7, hi = columns 8..15. A element e sits at (row g + 8((e >> 1) & 1), col 2t +
// (e & 1) + 8(e >> 2)), which is C element (e & 3) of n-tile (e >> 2); so register r (elements 2r,
// 2r + 1) = C elements 2(r & 1), 2(r & 1) + 1 of tile (r >> 1). `pack(lo, hi)` rounds two f32 to
// the 16-bit type and packs them as load_pair would.
template <class Pack>
LD_HD inline void a_from_c(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4],
                           Pack pack) {
  a[0] = pack(lo[0], lo[1]);
  a[1] = pack(lo[2], lo[3]);
  a[2] = pack(hi[0], hi[1]);
  a[3] = pack(hi[2], hi[3]);
}

}  // namespace ld::cuda::mma
