// LoraLinear and attach_lora: the replace_child hook point used by the goldens.
#include "nn/lora_hook.h"

#include "core/nvtx.h"

namespace ld::nn {

LoraLinear::LoraLinear(const Linear& base, int64_t r, double alpha, double dropout, Generator& gen)
    : Linear("LoraLinear", base), r_(r), scale_(alpha / static_cast<double>(r)) {
  LD_CHECK(r > 0, "LoRA rank must be positive, got {}", r);
  DType dt = base.parameters()[0].dtype();
  Device dev = base.parameters()[0].device();
  auto a = register_module("lora_A", std::make_shared<Linear>(in_, r, false, dt));
  auto b = register_module("lora_B", std::make_shared<Linear>(r, out_, false, dt));
  {
    NoGradGuard ng;
    Tensor aw = Tensor::empty({r, in_}, DType::f32);
    kaiming_uniform_(aw, std::sqrt(5.0), gen);
    a->weight().copy_(aw);
  }
  if (!dev.is_cpu()) {
    a->to(dev);
    b->to(dev);
  }
  register_module("lora_dropout", std::make_shared<Dropout>(dropout));
}

Tensor LoraLinear::forward(const Tensor& x) {
  LD_NVTX_RANGE(range_name());
  Tensor y = linear(x, weight(), bias());
  Tensor u = child<Linear>("lora_A").forward(child<Dropout>("lora_dropout").forward(x));
  return mark_backward(y + child<Linear>("lora_B").forward(u) * scale_);
}

std::vector<std::string> attach_lora(Module& root, const std::string& pattern, int64_t r,
                                     double alpha, double dropout, Generator& gen) {
  std::vector<std::string> names;
  for (auto& [name, m] : root.find_modules(pattern)) {
    auto* lin = dynamic_cast<Linear*>(m.get());
    if (!lin || dynamic_cast<LoraLinear*>(m.get())) continue;
    root.replace_child(name, std::make_shared<LoraLinear>(*lin, r, alpha, dropout, gen));
    names.push_back(name);
  }
  LD_CHECK(!names.empty(), "attach_lora: no Linear module matches '{}'", pattern);
  return names;
}

}  // namespace ld::nn
