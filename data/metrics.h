// Evaluation metrics, each equal to a named reference implementation: accuracy, binary F1 and
// Matthews correlation (scikit-learn), Pearson and Spearman (scipy), corpus BLEU (sacrebleu 2.x
// defaults) and ROUGE-L (rouge-score 0.1.2, with NLTK's Porter stemmer as the option).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ld::data {

// ---- classification / regression (predictions and labels of equal, nonzero length) ----
double accuracy(const std::vector<int64_t>& pred, const std::vector<int64_t>& label);
// Binary F1 of class 1 (sklearn f1_score, zero_division -> 0): 2tp / (2tp + fp + fn).
double f1_binary(const std::vector<int64_t>& pred, const std::vector<int64_t>& label);
// Matthews correlation, multiclass form (sklearn matthews_corrcoef); 0 when undefined.
double matthews_corr(const std::vector<int64_t>& pred, const std::vector<int64_t>& label);
// Pearson r (scipy.stats.pearsonr); NaN when either input is constant.
double pearson(const std::vector<double>& x, const std::vector<double>& y);
// Ranks 1..n with ties given their average rank (scipy.stats.rankdata method='average').
std::vector<double> average_ranks(const std::vector<double>& x);
// Spearman rho = Pearson of the average ranks (scipy.stats.spearmanr); NaN for constant input.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

// ---- BLEU ----
// sacrebleu's 13a tokenisation (mteval-v13a): rstrip, drop "<skipped>", join "-\n", unescape
// &quot; &amp; &lt; &gt;, pad punctuation, split periods/commas not next to digits, split a dash
// after a digit, collapse (Unicode) whitespace. Input is UTF-8.
std::string tokenize_13a(std::string_view line);

struct BleuScore {
  double score = 0;                    // 0..100
  std::array<int64_t, 4> counts{};     // matching n-grams, n = 1..4
  std::array<int64_t, 4> totals{};     // hypothesis n-grams
  std::array<double, 4> precisions{};  // percent, after exponential smoothing
  double bp = 1;                       // brevity penalty
  int64_t sys_len = 0, ref_len = 0;    // ref_len: sum of the closest reference lengths
};

// Corpus BLEU as sacrebleu.corpus_bleu with defaults: 13a, mixed case, exponential smoothing
// (mteval: the k-th zero-match order gets precision 100 / (2^k * total)), max order 4, no
// effective order; references[i] holds the references of hypotheses[i] (any number, >= 1; n-gram
// counts clipped by the max count over references; reference length = closest to the hypothesis,
// the shorter on a tie).
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references);

// ---- ROUGE-L ----
// rouge-score's tokenizer: lower-case, every run of characters outside [a-z0-9] becomes a space,
// split; with `stem`, tokens longer than 3 characters go through the Porter stemmer.
std::vector<std::string> rouge_tokenize(std::string_view text, bool stem = false);
// NLTK's PorterStemmer in its default NLTK_EXTENSIONS mode (the one rouge-score instantiates).
std::string porter_stem(std::string_view word);

struct RougeScore {
  double precision = 0, recall = 0, fmeasure = 0;
};
// ROUGE-L of one prediction against one target (rouge_scorer._score_lcs).
RougeScore rouge_l(std::string_view target, std::string_view prediction, bool stem = false);
// Against several targets: the score with the highest F (first on ties), as score_multi.
RougeScore rouge_l_multi(const std::vector<std::string>& targets, std::string_view prediction,
                         bool stem = false);
// Corpus ROUGE-L F: mean over examples of rouge_l_multi(...).fmeasure.
double corpus_rouge_l(const std::vector<std::string>& predictions,
                      const std::vector<std::vector<std::string>>& references, bool stem = false);

}  // namespace ld::data
