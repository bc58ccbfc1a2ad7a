// ld_bench_tokenizer: single-thread tokenisation throughput (MB/s of UTF-8 input) of one loradrop
// tokenizer over a text file, one text per line; tools/bench_tokenizers.py compares it with HF.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/tokenizer.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: ld_bench_tokenizer --tokenizer DIR --input FILE [--repeat N]\n"
               "  DIR holds vocab.json+merges.txt, tokenizer.json, tokenizer.model or vocab.txt;\n"
               "  FILE has one text per line. Prints one JSON line with MB/s (single thread).\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, input;
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (!std::strcmp(argv[i], "--tokenizer")) {
      dir = next();
    } else if (!std::strcmp(argv[i], "--input")) {
      input = next();
    } else if (!std::strcmp(argv[i], "--repeat")) {
      repeat = std::stoi(next());
    } else {
      usage();
      return 2;
    }
  }
  if (dir.empty() || input.empty() || repeat < 1) {
    usage();
    return 2;
  }
  try {
    std::ifstream in(input, std::ios::binary);
    LD_CHECK(in.good(), "{}: cannot open", input);
    std::vector<std::string> lines;
    size_t bytes = 0;
    for (std::string line; std::getline(in, line);) {
      bytes += line.size();
      lines.push_back(std::move(line));
    }
    const auto t_load0 = std::chrono::steady_clock::now();
    auto tok = ld::data::load_tokenizer(dir);
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load0).count();
    size_t tokens = 0;
    for (const auto& l : lines) tokens += tok->encode_ids(l).size();  // warm-up (fills caches)
    double best = 1e30;
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      size_t n = 0;
      for (const auto& l : lines) n += tok->encode_ids(l).size();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
      LD_CHECK(n == tokens, "token count changed between runs ({} vs {})", n, tokens);
    }
    std::printf(
        "{\"tokenizer\": \"%s\", \"kind\": \"%.*s\", \"lines\": %zu, \"bytes\": %zu, "
        "\"tokens\": %zu, \"seconds\": %.6f, \"mb_per_s\": %.3f, \"load_seconds\": %.4f}\n",
        dir.c_str(), static_cast<int>(tok->kind().size()), tok->kind().data(), lines.size(), bytes,
        tokens, best, bytes / 1e6 / best, load_s);
  } catch (const ld::Error& e) {
    std::fprintf(stderr, "ld_bench_tokenizer: %s\n", e.what());
    return 1;
  }
  return 0;
}
