// Shared helpers for the Hugging Face golden tests: fixture paths, PEFT -> loradrop names, and the
// 3-step AdamW training loop the goldens were made with (tools/make_goldens.py).
#pragma once
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "nn/optim.h"
#include "nn/safetensors.h"
#include "tests/test_util.h"

namespace ld::test {

inline std::string fixture(const std::string& model, const std::string& file = "") {
  std::string d = std::string(LD_SOURCE_DIR) + "/tests/fixtures/models/" + model;
  return file.empty() ? d : d + "/" + file;
}

inline nlohmann::json golden_meta(const std::string& model) {
  std::ifstream in(fixture(model, "golden.json"));
  return nlohmann::json::parse(in);
}

// "base_model.model.roberta.x.lora_A.default.weight" -> "roberta.x.lora_A.weight"
inline std::string peft_to_ld(std::string n) {
  if (n.rfind("base_model.model.", 0) == 0) n = n.substr(17);
  size_t p = n.find(".default.");
  if (p != std::string::npos) n.replace(p, 9, ".");
  return n;
}

// Compares the gradients of every trainable parameter, then runs the goldens' 3 AdamW steps
// (linear warmup schedule, clip_grad_norm_) and compares the parameters and per-step losses.
// `loss_fn` runs a forward on the golden batch and returns the loss.
inline void check_grads_and_steps(nn::Module& model, const std::string& fixture_name,
                                  const std::function<Tensor()>& loss_fn, double tol) {
  nn::SafetensorsCheckpoint g(fixture(fixture_name, "golden.safetensors"));
  nlohmann::json meta = golden_meta(fixture_name);
  std::vector<std::pair<std::string, Tensor>> params;
  for (auto& n : meta["trainable"]) {
    std::string name = peft_to_ld(n.get<std::string>());
    params.emplace_back(name, model.parameter(name));
  }
  ASSERT_EQ(static_cast<int64_t>(params.size()),
            static_cast<int64_t>(model.parameters(true).size()))
      << "trainable parameter sets differ";
  for (auto& [n, p] : params) p.zero_grad();
  Tensor loss = loss_fn();
  loss.backward();
  for (auto& n : meta["trainable"]) {
    std::string name = n.get<std::string>();
    Tensor p = model.parameter(peft_to_ld(name));
    ASSERT_TRUE(p.grad().defined()) << name << " got no gradient";
    std::string m = close_msg(p.grad(), g.get("grad." + name), tol, tol);
    EXPECT_TRUE(m.empty()) << "gradient of " << name << ": " << m;
  }
  auto& o = meta["opt"];
  nn::AdamWOptions ao;
  ao.lr = o["lr"];
  ao.beta1 = o["betas"][0];
  ao.beta2 = o["betas"][1];
  ao.eps = o["eps"];
  ao.weight_decay = o["weight_decay"];
  nn::AdamW opt(params, ao);
  std::vector<Tensor> ps;
  for (auto& [n, p] : params) ps.push_back(p);
  std::vector<float> losses;
  for (int s = 0; s < o["steps"].get<int>(); ++s) {
    opt.zero_grad();
    opt.set_lr(ao.lr * nn::linear_warmup_factor(s, o["warmup"], o["total"]));
    Tensor l = loss_fn();
    losses.push_back(static_cast<float>(l.item()));
    l.backward();
    nn::clip_grad_norm_(ps, o["max_grad_norm"]);
    opt.step();
  }
  EXPECT_CLOSE(Tensor::from_vector(losses, {static_cast<int64_t>(losses.size())}),
               g.get("step_losses"), tol, tol);
  for (auto& n : meta["trainable"]) {
    std::string name = n.get<std::string>();
    std::string m = close_msg(model.parameter(peft_to_ld(name)), g.get("step3." + name), tol, tol);
    EXPECT_TRUE(m.empty()) << "after 3 AdamW steps, " << name << ": " << m;
  }
}

}  // namespace ld::test
