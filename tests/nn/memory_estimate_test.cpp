// The Llama2-7b LoRA memory arithmetic of docs/memory.md, checked by hand computation.
#include <gtest/gtest.h>

#include "nn/memory_estimate.h"

namespace ld {
namespace {

TEST(MemoryEstimate, TinyConfigByHand) {
  nn::MemoryInputs in;
  in.d = {2, 8, 2, 1, 12, 10};  // L h heads kv i V
  in.lora_r = 2;
  in.batch = 3;
  in.seq = 5;
  auto e = nn::estimate_lora_memory(in);
  // per layer: 2*64 + 2*8*4 + 3*8*12 + 16 = 128 + 64 + 288 + 16 = 496; *2 + 2*10*8 + 8 = 1160
  EXPECT_EQ(e.base_params, 1160);
  EXPECT_EQ(e.lora_params, 2 * 2 * 2 * 16);  // 128
  EXPECT_DOUBLE_EQ(e.lora_state_b, 128 * 16.0);
  // per layer elems: 7*15*8 + 4*15*12 + 2*3*25 + 2*3*5*2 = 840 + 720 + 150 + 60 = 1770
  EXPECT_DOUBLE_EQ(e.activations_b, 2 * 1770 * 2.0);
  in.checkpointing = true;
  EXPECT_DOUBLE_EQ(nn::estimate_lora_memory(in).activations_b, 2 * 15 * 8 * 2.0 + 1770 * 2.0);
}

TEST(MemoryEstimate, Llama2_7bFitsOn80GB) {
  nn::MemoryInputs in;
  in.d = nn::llama2_7b();
  auto e = nn::estimate_lora_memory(in);
  EXPECT_EQ(e.base_params, 6738415616);  // the published 6.74B
  EXPECT_EQ(e.lora_params, 4194304);     // r=8 on q,v: 32 * 2 * 8 * 8192
  EXPECT_LT(e.total_b, 80e9);            // batch 4, seq 512, no checkpointing
  in.checkpointing = true;
  in.batch = 16;
  in.seq = 1024;
  EXPECT_LT(nn::estimate_lora_memory(in).total_b, 80e9);
  in.checkpointing = false;
  EXPECT_GT(nn::estimate_lora_memory(in).total_b, 80e9);  // the same without it does not fit
}

}  // namespace
}  // namespace ld
