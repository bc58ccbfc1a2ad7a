// ld_make_sample_results FILE [SEED]: writes a synthetic, schema-complete results file (no model is
// run) so that tools/plot.py and its test have every kind of data to draw.
#include <cstdio>
#include <string>

#include "core/error.h"
#include "paper_repro/results.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr,
                 "usage: %s FILE [SEED]\n  writes synthetic results (for testing the plot tool)\n",
                 argv[0]);
    return argc >= 2 && std::string(argv[1]) == "--help" ? 0 : 2;
  }
  try {
    uint64_t seed = argc == 3 ? std::stoull(argv[2]) : 0;
    ld::repro::write_sample_results(argv[1], seed);
    ld::repro::validate_schema(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ld_make_sample_results: %s\n", e.what());
    return 1;
  }
  return 0;
}
