// Neural-network ops: embedding, normalisation, softmax, dropout, losses, attention, RoPE.
// Shapes in brackets; B batch, T tokens, H heads, D head dim, C classes.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ld {

// weight [V, d], ids i64 [...] -> [..., d]; rows with id == padding_idx get no gradient.
// Out-of-range ids throw naming the id and the vocabulary size.
Tensor embedding(const Tensor& weight, const Tensor& ids, int64_t padding_idx = -1);

// Over the last dim; w and b [n] (either may be undefined).
Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps);
Tensor rms_norm(const Tensor& x, const Tensor& w, double eps);

// Over `dim` (last by default); `mask` is additive (e.g. -inf / large negative on masked keys)
// and broadcastable to x; undefined for none. A row whose logits are all -inf after masking gives
// softmax 0 and log_softmax -inf (torch gives nan), with zero gradient.
Tensor softmax(const Tensor& x, int64_t dim = -1, const Tensor& mask = Tensor());
Tensor log_softmax(const Tensor& x, int64_t dim = -1, const Tensor& mask = Tensor());

// Inverted dropout with Philox: element i of x is kept iff philox_uniform(seed, offset, i) >= p.
// Identity when !training or p == 0; p == 1 gives zeros. Kept elements are scaled by 1/(1-p).
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset);

// Mean cross-entropy over rows whose target != ignore_index; logits [N, C], targets i64 [N].
// When every row is ignored the result is nan, as in torch, so a masking bug cannot hide.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);
Tensor mse_loss(const Tensor& input, const Tensor& target);  // mean

// Scaled dot-product attention. q [B, Hq, Tq, D], k/v [B, Hkv, Tk, D] with Hq % Hkv == 0
// (grouped K/V heads). key_padding_mask: bool [B, Tk], true = real token (undefined: none).
// causal: query i attends keys j <= i + (Tk - Tq). scale defaults to 1/sqrt(D) when <= 0.
// v may have its own last dim Dv; the result is [B, Hq, Tq, Dv]. A query row with no key to
// attend (all padded, or causal with Tq > Tk) outputs 0, not nan, and passes no gradient.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_padding_mask = Tensor(), bool causal = false,
                                    double scale = -1.0);

// Rotary position embedding, Llama's rotate-half convention: x [B, H, T, D] (D even),
// positions i64 [B, T] or [T]; inv_freq_j = theta^(-2j/D); out = x*cos + rotate_half(x)*sin with
// cos/sin of pos*inv_freq duplicated over both halves (HF apply_rotary_pos_emb).
Tensor rope(const Tensor& x, const Tensor& positions, double theta = 10000.0);

}  // namespace ld
