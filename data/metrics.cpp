// Metric implementations; each mirrors the reference named in metrics.h (definitions read from the
// installed scikit-learn / scipy / sacrebleu / rouge-score / nltk sources).
#include "data/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <unordered_map>

#include "core/error.h"

namespace ld::data {

namespace {

void check_same_size(size_t a, size_t b, const char* what) {
  LD_CHECK(a == b, "{}: {} predictions but {} labels", what, a, b);
  LD_CHECK(a > 0, "{}: empty input", what);
}

// Decodes one UTF-8 code point at s[i]; returns its length (1 for an invalid byte, cp = 0xFFFD).
int decode_utf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    *cp = 0xFFFD;
    return 1;
  }
  uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) {
      *cp = 0xFFFD;
      return 1;
    }
    v = (v << 6) | (cc & 0x3F);
  }
  *cp = v;
  return len;
}

// Python's str.isspace() (the set str.split() and str.rstrip() use).
bool is_py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Python's s.split(): tokens between runs of whitespace.
std::vector<std::string> py_split(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_tok = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    int len = decode_utf8(s, i, &cp);
    if (is_py_space(cp)) {
      if (in_tok) out.push_back(std::move(cur));
      cur.clear();
      in_tok = false;
    } else {
      cur.append(s.substr(i, len));
      in_tok = true;
    }
    i += len;
  }
  if (in_tok) out.push_back(std::move(cur));
  return out;
}

// Python's s.rstrip().
std::string_view py_rstrip(std::string_view s) {
  size_t end = 0;  // one past the last non-space code point
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    int len = decode_utf8(s, i, &cp);
    i += len;
    if (!is_py_space(cp)) end = i;
  }
  return s.substr(0, end);
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out.append(to);
    pos = f + from.size();
  }
  if (pos == 0) return;
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The character class [\{-\~\[-\` -\&\(-\+\:-\@\/] of sacrebleu's TokenizerRegexp.
bool is_13a_punct(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// One left-to-right, non-overlapping pass of a two-character pattern `first second` -> replacement
// built by `emit`. Working on bytes equals Python's code-point regex here: the classes that
// match non-ASCII ([^0-9]) only copy the character through, and a match never starts inside a
// multi-byte sequence because the other half of every pattern is ASCII.
template <class First, class Second, class Emit>
std::string pair_pass(const std::string& s, First first, Second second, Emit emit) {
  std::string out;
  out.reserve(s.size() + 16);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

using NgramCounts = std::unordered_map<std::string, int64_t>;

// All 1..4-grams of a token list, keyed by the space-joined n-gram (tokens hold no spaces).
NgramCounts ngrams(const std::vector<std::string>& toks) {
  NgramCounts c;
  for (size_t n = 1; n <= 4; ++n) {
    for (size_t i = 0; i + n <= toks.size(); ++i) {
      std::string key = toks[i];
      for (size_t k = 1; k < n; ++k) key += ' ' + toks[i + k];
      ++c[key];
    }
  }
  return c;
}

size_t ngram_order(const std::string& key) {
  return static_cast<size_t>(std::count(key.begin(), key.end(), ' ')) + 1;
}

}  // namespace

// ---------------------------------------------------------------- classification / regression

double accuracy(const std::vector<int64_t>& pred, const std::vector<int64_t>& label) {
  check_same_size(pred.size(), label.size(), "accuracy");
  int64_t ok = 0;
  for (size_t i = 0; i < pred.size(); ++i) ok += pred[i] == label[i];
  return static_cast<double>(ok) / static_cast<double>(pred.size());
}

double f1_binary(const std::vector<int64_t>& pred, const std::vector<int64_t>& label) {
  check_same_size(pred.size(), label.size(), "f1_binary");
  int64_t tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    tp += pred[i] == 1 && label[i] == 1;
    fp += pred[i] == 1 && label[i] != 1;
    fn += pred[i] != 1 && label[i] == 1;
  }
  if (2 * tp + fp + fn == 0) return 0.0;
  return 2.0 * static_cast<double>(tp) / static_cast<double>(2 * tp + fp + fn);
}

double matthews_corr(const std::vector<int64_t>& pred, const std::vector<int64_t>& label) {
  check_same_size(pred.size(), label.size(), "matthews_corr");
  std::map<int64_t, std::pair<double, double>> sums;  // class -> (true count, predicted count)
  double correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    sums[label[i]].first += 1;
    sums[pred[i]].second += 1;
    correct += pred[i] == label[i];
  }
  const double n = static_cast<double>(pred.size());
  double tp_dot = 0, pp = 0, tt = 0;
  for (const auto& [cls, s] : sums) {
    tp_dot += s.first * s.second;
    pp += s.second * s.second;
    tt += s.first * s.first;
  }
  const double cov_tp = correct * n - tp_dot;
  const double cov_pp = n * n - pp;
  const double cov_tt = n * n - tt;
  if (cov_pp * cov_tt == 0) return 0.0;
  return cov_tp / std::sqrt(cov_tt * cov_pp);
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  LD_CHECK(x.size() == y.size(), "pearson: {} vs {} values", x.size(), y.size());
  LD_CHECK(x.size() >= 2, "pearson: needs at least 2 values, got {}", x.size());
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return std::numeric_limits<double>::quiet_NaN();
  const double r = sxy / (std::sqrt(sxx) * std::sqrt(syy));
  return std::clamp(r, -1.0, 1.0);
}

std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> rank(x.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
    const double r = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) rank[idx[k]] = r;
    i = j + 1;
  }
  return rank;
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  LD_CHECK(x.size() == y.size(), "spearman: {} vs {} values", x.size(), y.size());
  return pearson(average_ranks(x), average_ranks(y));
}

// ---------------------------------------------------------------- BLEU

std::string tokenize_13a(std::string_view line_in) {
  std::string line(py_rstrip(line_in));
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  std::string s;
  s.reserve(line.size() * 2 + 2);
  s += ' ';
  for (char c : line) {
    if (is_13a_punct(c)) {
      s += ' ';
      s += c;
      s += ' ';
    } else {
      s += c;
    }
  }
  s += ' ';
  auto dot_comma = [](char c) { return c == '.' || c == ','; };
  auto non_digit = [](char c) { return !is_digit(c); };
  s = pair_pass(s, non_digit, dot_comma, [](std::string& o, char a, char b) {
    o += a;
    o += ' ';
    o += b;
    o += ' ';
  });
  s = pair_pass(s, dot_comma, non_digit, [](std::string& o, char a, char b) {
    o += ' ';
    o += a;
    o += ' ';
    o += b;
  });
  s = pair_pass(
      s, is_digit, [](char c) { return c == '-'; },
      [](std::string& o, char a, char b) {
        o += a;
        o += ' ';
        o += b;
        o += ' ';
      });
  std::string out;
  for (const std::string& t : py_split(s)) {
    if (!out.empty()) out += ' ';
    out += t;
  }
  return out;
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references) {
  LD_CHECK(hypotheses.size() == references.size(),
           "corpus_bleu: {} hypotheses but {} reference sets", hypotheses.size(),
           references.size());
  BleuScore b;
  std::array<int64_t, 4> correct{}, total{};
  for (size_t s = 0; s < hypotheses.size(); ++s) {
    LD_CHECK(!references[s].empty(), "corpus_bleu: hypothesis {} has no reference", s);
    NgramCounts ref_max;
    std::vector<int64_t> ref_lens;
    for (const std::string& r : references[s]) {
      std::vector<std::string> toks = py_split(tokenize_13a(r));
      ref_lens.push_back(static_cast<int64_t>(toks.size()));
      for (const auto& [g, c] : ngrams(toks)) {
        int64_t& m = ref_max[g];
        m = std::max(m, c);
      }
    }
    std::vector<std::string> hyp = py_split(tokenize_13a(hypotheses[s]));
    const auto hyp_len = static_cast<int64_t>(hyp.size());
    int64_t closest_diff = -1, closest_len = -1;
    for (int64_t rl : ref_lens) {
      const int64_t diff = std::abs(hyp_len - rl);
      if (closest_diff == -1 || diff < closest_diff) {
        closest_diff = diff;
        closest_len = rl;
      } else if (diff == closest_diff && rl < closest_len) {
        closest_len = rl;
      }
    }
    b.sys_len += hyp_len;
    b.ref_len += closest_len;
    for (const auto& [g, c] : ngrams(hyp)) {
      const size_t n = ngram_order(g) - 1;
      total[n] += c;
      auto it = ref_max.find(g);
      if (it != ref_max.end()) correct[n] += std::min(c, it->second);
    }
  }
  b.counts = correct;
  b.totals = total;
  if (b.sys_len < b.ref_len)
    b.bp = b.sys_len > 0
               ? std::exp(1.0 - static_cast<double>(b.ref_len) / static_cast<double>(b.sys_len))
               : 0.0;
  if (std::all_of(correct.begin(), correct.end(), [](int64_t c) { return c == 0; })) {
    b.score = 0.0;
    return b;
  }
  double smooth = 1.0;
  for (int n = 0; n < 4; ++n) {
    if (total[n] == 0) break;
    if (correct[n] == 0) {
      smooth *= 2;
      b.precisions[n] = 100.0 / (smooth * static_cast<double>(total[n]));
    } else {
      b.precisions[n] = 100.0 * static_cast<double>(correct[n]) / static_cast<double>(total[n]);
    }
  }
  double log_sum = 0;
  for (double p : b.precisions) log_sum += p == 0.0 ? -9999999999.0 : std::log(p);
  b.score = b.bp * std::exp(log_sum / 4.0);
  return b;
}

// ---------------------------------------------------------------- ROUGE-L

namespace {

struct Porter {
  std::string_view w_;  // unused; kept simple: all helpers take the word explicitly

  static bool vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

  // NLTK's _is_consonant: a 'y' toggles over a run of preceding 'y's.
  static bool is_consonant(const std::string& w, size_t i) {
    if (vowel(w[i])) return false;
    if (w[i] == 'y') {
      bool negate = false;
      while (i > 0 && w[i] == 'y') {
        negate = !negate;
        --i;
      }
      return (!vowel(w[i])) != negate;
    }
    return true;
  }
  // NLTK's _consonant_flags (used by measure and contains_vowel).
  static std::vector<bool> flags(const std::string& w) {
    std::vector<bool> f(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      if (vowel(w[i]))
        f[i] = false;
      else if (w[i] == 'y')
        f[i] = i == 0 ? true : !f[i - 1];
      else
        f[i] = true;
    }
    return f;
  }
  static int measure(const std::string& s) {
    std::vector<bool> f = flags(s);
    int m = 0;
    for (size_t i = 0; i + 1 < f.size(); ++i) m += !f[i] && f[i + 1];
    return m;
  }
  static bool contains_vowel(const std::string& s) {
    for (bool c : flags(s))
      if (!c) return true;
    return false;
  }
  static bool ends_double_consonant(const std::string& w) {
    return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
  }
  static bool ends_cvc(const std::string& w) {
    const size_t n = w.size();
    return (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) &&
            w[n - 1] != 'w' && w[n - 1] != 'x' && w[n - 1] != 'y') ||
           (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1));
  }
  static bool ends_with(const std::string& w, std::string_view suf) {
    return w.size() >= suf.size() && std::string_view(w).substr(w.size() - suf.size()) == suf;
  }
  static std::string cut(const std::string& w, std::string_view suf) {
    return w.substr(0, w.size() - suf.size());
  }

  using Cond = bool (*)(const std::string&);
  struct Rule {
    std::string_view suffix, repl;
    Cond cond;  // nullptr = always
  };
  // NLTK's _apply_rule_list for rules without the "*d" form: the first matching suffix decides.
  static std::string apply(const std::string& w, const std::vector<Rule>& rules) {
    for (const Rule& r : rules) {
      if (ends_with(w, r.suffix)) {
        std::string stem = cut(w, r.suffix);
        if (!r.cond || r.cond(stem)) return stem + std::string(r.repl);
        return w;
      }
    }
    return w;
  }
  static bool m_pos(const std::string& s) { return measure(s) > 0; }
  static bool m_gt1(const std::string& s) { return measure(s) > 1; }

  static std::string step1a(const std::string& w) {
    if (ends_with(w, "ies") && w.size() == 4) return cut(w, "ies") + "ie";
    return apply(w, {{"sses", "ss", nullptr},
                     {"ies", "i", nullptr},
                     {"ss", "ss", nullptr},
                     {"s", "", nullptr}});
  }
  static std::string step1b(const std::string& w) {
    if (ends_with(w, "ied")) return cut(w, "ied") + (w.size() == 4 ? "ie" : "i");
    if (ends_with(w, "eed")) {
      std::string stem = cut(w, "eed");
      return measure(stem) > 0 ? stem + "ee" : w;
    }
    std::string inter;
    bool ok = false;
    for (std::string_view suf : {std::string_view("ed"), std::string_view("ing")}) {
      if (ends_with(w, suf)) {
        inter = cut(w, suf);
        if (contains_vowel(inter)) {
          ok = true;
          break;
        }
      }
    }
    if (!ok) return w;
    // Rules on the intermediate stem: at->ate, bl->ble, iz->ize, *d (undouble unless l/s/z),
    // '' -> 'e' when m == 1 and cvc. The first that matches decides.
    for (auto [suf, rep] : {std::pair<std::string_view, std::string_view>{"at", "ate"},
                            {"bl", "ble"},
                            {"iz", "ize"}}) {
      if (ends_with(inter, suf)) return cut(inter, suf) + std::string(rep);
    }
    if (ends_double_consonant(inter)) {
      const char last = inter.back();
      if (last != 'l' && last != 's' && last != 'z')
        return inter.substr(0, inter.size() - 2) + last;
      return inter;
    }
    if (measure(inter) == 1 && ends_cvc(inter)) return inter + "e";
    return inter;
  }
  static std::string step1c(const std::string& w) {
    if (ends_with(w, "y")) {
      std::string stem = cut(w, "y");
      if (stem.size() > 1 && is_consonant(stem, stem.size() - 1)) return stem + "i";
      return w;
    }
    return w;
  }
  static std::string step2(const std::string& w) {
    if (ends_with(w, "alli") && m_pos(cut(w, "alli"))) return step2(cut(w, "alli") + "al");
    static const std::vector<Rule> rules = {
        {"ational", "ate", m_pos}, {"tional", "tion", m_pos}, {"enci", "ence", m_pos},
        {"anci", "ance", m_pos},   {"izer", "ize", m_pos},    {"bli", "ble", m_pos},
        {"alli", "al", m_pos},     {"entli", "ent", m_pos},   {"eli", "e", m_pos},
        {"ousli", "ous", m_pos},   {"ization", "ize", m_pos}, {"ation", "ate", m_pos},
        {"ator", "ate", m_pos},    {"alism", "al", m_pos},    {"iveness", "ive", m_pos},
        {"fulness", "ful", m_pos}, {"ousness", "ous", m_pos}, {"aliti", "al", m_pos},
        {"iviti", "ive", m_pos},   {"biliti", "ble", m_pos},  {"fulli", "ful", m_pos}};
    for (const Rule& r : rules) {
      if (ends_with(w, r.suffix)) {
        std::string stem = cut(w, r.suffix);
        return r.cond(stem) ? stem + std::string(r.repl) : w;
      }
    }
    // NLTK extension: "logi" -> "log" when the word minus "ogi" has positive measure.
    if (ends_with(w, "logi")) return m_pos(w.substr(0, w.size() - 3)) ? cut(w, "logi") + "log" : w;
    return w;
  }
  static std::string step3(const std::string& w) {
    return apply(w, {{"icate", "ic", m_pos},
                     {"ative", "", m_pos},
                     {"alize", "al", m_pos},
                     {"iciti", "ic", m_pos},
                     {"ical", "ic", m_pos},
                     {"ful", "", m_pos},
                     {"ness", "", m_pos}});
  }
  static bool ion_cond(const std::string& s) {
    return measure(s) > 1 && !s.empty() && (s.back() == 's' || s.back() == 't');
  }
  static std::string step4(const std::string& w) {
    return apply(w, {{"al", "", m_gt1},
                     {"ance", "", m_gt1},
                     {"ence", "", m_gt1},
                     {"er", "", m_gt1},
                     {"ic", "", m_gt1},
                     {"able", "", m_gt1},
                     {"ible", "", m_gt1},
                     {"ant", "", m_gt1},
                     {"ement", "", m_gt1},
                     {"ment", "", m_gt1},
                     {"ent", "", m_gt1},
                     {"ion", "", ion_cond},
                     {"ou", "", m_gt1},
                     {"ism", "", m_gt1},
                     {"ate", "", m_gt1},
                     {"iti", "", m_gt1},
                     {"ous", "", m_gt1},
                     {"ive", "", m_gt1},
                     {"ize", "", m_gt1}});
  }
  static std::string step5a(const std::string& w) {
    if (ends_with(w, "e")) {
      std::string stem = cut(w, "e");
      const int m = measure(stem);
      if (m > 1) return stem;
      if (m == 1 && !ends_cvc(stem)) return stem;
    }
    return w;
  }
  static std::string step5b(const std::string& w) {
    if (ends_with(w, "ll")) return measure(w.substr(0, w.size() - 1)) > 1 ? cut(w, "ll") + "l" : w;
    return w;
  }
};

}  // namespace

std::string porter_stem(std::string_view word_in) {
  std::string w;
  for (char c : word_in) w += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  static const std::unordered_map<std::string, std::string> pool = {
      {"sky", "sky"},        {"skies", "sky"},        {"dying", "die"},
      {"lying", "lie"},      {"tying", "tie"},        {"news", "news"},
      {"innings", "inning"}, {"inning", "inning"},    {"outings", "outing"},
      {"outing", "outing"},  {"cannings", "canning"}, {"canning", "canning"},
      {"howe", "howe"},      {"proceed", "proceed"},  {"exceed", "exceed"},
      {"succeed", "succeed"}};
  if (auto it = pool.find(w); it != pool.end()) return it->second;
  if (word_in.size() <= 2) return w;
  w = Porter::step1a(w);
  w = Porter::step1b(w);
  w = Porter::step1c(w);
  w = Porter::step2(w);
  w = Porter::step3(w);
  w = Porter::step4(w);
  w = Porter::step5a(w);
  w = Porter::step5b(w);
  return w;
}

std::vector<std::string> rouge_tokenize(std::string_view text, bool stem) {
  // Python's lower() followed by re.sub("[^a-z0-9]+", " "): only ASCII letters/digits survive,
  // plus the two non-ASCII code points whose lower case contains one (U+0130 -> "i\u0307",
  // U+212A KELVIN SIGN -> "k").
  std::vector<std::string> toks;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) {
      toks.push_back(stem && cur.size() > 3 ? porter_stem(cur) : cur);
      if (toks.back().empty()) toks.pop_back();
    }
    cur.clear();
  };
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    int len = decode_utf8(text, i, &cp);
    i += len;
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
      cur += static_cast<char>(cp);
    } else if (cp >= 'A' && cp <= 'Z') {
      cur += static_cast<char>(cp - 'A' + 'a');
    } else if (cp == 0x212A) {
      cur += 'k';
    } else if (cp == 0x130) {
      cur += 'i';
      flush();
    } else {
      flush();
    }
  }
  flush();
  return toks;
}

RougeScore rouge_l(std::string_view target, std::string_view prediction, bool stem) {
  const std::vector<std::string> t = rouge_tokenize(target, stem);
  const std::vector<std::string> p = rouge_tokenize(prediction, stem);
  RougeScore s;
  if (t.empty() || p.empty()) return s;
  std::vector<int64_t> prev(p.size() + 1, 0), cur(p.size() + 1, 0);
  for (size_t i = 1; i <= t.size(); ++i) {
    for (size_t j = 1; j <= p.size(); ++j)
      cur[j] = t[i - 1] == p[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  const auto lcs = static_cast<double>(prev[p.size()]);
  s.precision = lcs / static_cast<double>(p.size());
  s.recall = lcs / static_cast<double>(t.size());
  s.fmeasure =
      s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

RougeScore rouge_l_multi(const std::vector<std::string>& targets, std::string_view prediction,
                         bool stem) {
  LD_CHECK(!targets.empty(), "rouge_l_multi: no targets");
  RougeScore best;
  bool first = true;
  for (const std::string& t : targets) {
    RougeScore s = rouge_l(t, prediction, stem);
    if (first || s.fmeasure > best.fmeasure) best = s;
    first = false;
  }
  return best;
}

double corpus_rouge_l(const std::vector<std::string>& predictions,
                      const std::vector<std::vector<std::string>>& references, bool stem) {
  LD_CHECK(predictions.size() == references.size(),
           "corpus_rouge_l: {} predictions but {} reference sets", predictions.size(),
           references.size());
  LD_CHECK(!predictions.empty(), "corpus_rouge_l: empty input");
  double sum = 0;
  for (size_t i = 0; i < predictions.size(); ++i)
    sum += rouge_l_multi(references[i], predictions[i], stem).fmeasure;
  return sum / static_cast<double>(predictions.size());
}

}  // namespace ld::data
