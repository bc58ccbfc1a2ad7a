#!/usr/bin/env python3
# Writes tests/fixtures/tokenizers/{roberta-base,bert-base-uncased,llama2}.json: Hugging Face ids
# for real sentences and pairs from ../shared/data plus hand-written Unicode/whitespace edge cases.
"""Usage: python3 tools/make_tokenizer_goldens.py [--data ../shared/data] [--out tests/fixtures/tokenizers]

Needs (PyPI): tokenizers, transformers, sentencepiece, protobuf.

References, per tokenizer (the exact versions are written into each fixture):
  roberta-base       transformers.RobertaTokenizer.from_pretrained(dir with vocab.json + merges.txt);
                     its backend (a `tokenizers.Tokenizer`: ByteLevel BPE + RobertaProcessing) encodes
                     every case, with `enable_truncation(max_length, strategy="longest_first")` for
                     the truncation cases.
  bert-base-uncased  transformers.BertTokenizer.from_pretrained(dir with vocab.txt) (lower case,
                     accents stripped); its `tokenizers` backend encodes, as above.
  llama2             HF's slow Llama tokenizer: transformers' SentencePieceBackend with legacy=True
                     and LlamaTokenizer's templates (BOS prepended, no EOS; pair "<s> A <s> B",
                     B with type id 1; "<s>", "</s>", "<unk>" in text are special tokens). The
                     script asserts it equals `sentencepiece` itself on every case. HF's fast
                     tokenizer (BPE with byte fallback from transformers' converter, configured as
                     the Hub's meta-llama/Llama-2-7b-hf tokenizer.json) differs from sentencepiece
                     on some double spaces ("  It": [259, 3112] vs [29871, 739]); those counts are
                     recorded in the fixture (fast_tokenizer_mismatches,
                     transformers_v5_llama_mismatches). Truncation cases come from the fast
                     tokenizer's longest_first, kept only where its untruncated ids equal the slow
                     ones.
Decoding goldens use the backend's `decode(ids, skip_special_tokens=True)` (no
clean_up_tokenization_spaces), and `sentencepiece`'s decode for llama2 (lossless; HF's slow decode
trims white space).
Truncation follows HF tokenizers' longest_first (Rust), which differs from transformers' Python
rule when the first sequence is not the longer one and the budget is odd.
"""
import argparse
import csv
import json
import os
import random
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Hand-written cases: Unicode, emoji, control characters, odd white space, accents, CJK, long words.
EDGE_TEXTS = [
    "", " ", "  ", "\t", "\n", "\r\n", " \t\n\r ", "a", " a", "a ", "  leading and trailing  ",
    "Hello, world!", "hello   world", "tab\tseparated\tvalues", "line one\nline two\r\nline three",
    "carriage\rreturn", "no\u00a0break\u00a0space", "em\u2003space and ideographic\u3000space",
    "zero\u200bwidth\u200bspace", "zero\u200cwidth\u200dnon-joiner", "\ufeffbyte order mark",
    "line\u2028separator\u2029paragraph", "next\u0085line", "thin\u2009space\u202fnarrow",
    "vertical\x0btab and form\x0cfeed", "control \x00 nul \x01 soh \x07 bel \x1b esc \x7f del",
    "unit\x1fseparator\x1crecord", "soft\u00adhyphen", "replacement \ufffd char",
    "Café naïve résumé façade Ångström", "Cafe\u0301 decomposed e\u0301", "ÀÉÎÕÜ àéîõü ÇÑ",
    "Straße größer ÄÖÜ", "İstanbul ıi ŞĞ", "ΣΊΣΥΦΟΣ Ελληνικά σίσυφος ΟΔΟΣ", "Русский текст, ЁЖИК",
    "ﬁ ﬂ ligatures and ½ ² ③ Ⅻ", "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "ℌ𝔢𝔩𝔩𝔬 𝓌𝑜𝓇𝓁𝒹 𝟙𝟚𝟛",
    "中文分词测试：我爱北京天安门。", "日本語のテキスト、カタカナとひらがな。", "한국어 텍스트 입니다",
    "混合 mixed 文本 text 123", "العربية نص", "हिन्दी पाठ", "ภาษาไทย", "עברית",
    "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ ✨", "🤖robot🤖", "a😀b", "smile:) :-( <3 ^_^",
    "don't won't I'm you're we've they'll he'd it's", "DON'T I'M YOU'RE WE'VE THEY'LL HE'D IT'S",
    "rock 'n' roll 'tis ''quoted''", "‘curly’ “quotes” «guillemets» „low“",
    "numbers 3.14159 1,000,000 -42 +7 1e-10 0x1F 2024-01-31", "١٢٣ ٤٥٦ ໑໒໓ 一二三",
    "math ∑∫√∞ ≤ ≥ ≠ ± × ÷ → ←", "currency $100 €50 £30 ¥1000 ₹500 ₿", "symbols @#$%^&*()_+-=[]{}|;:,.<>?/~`",
    "https://example.com/path?query=1&b=2#frag", "user@example.org", "C:\\Windows\\path\\file.txt",
    "def f(x):\n    return x ** 2  # comment", "<html><body>tag</body></html>",
    "a" * 99, "b" * 100, "c" * 101, "supercalifragilisticexpialidocious" * 4,
    "Pneumonoultramicroscopicsilicovolcanoconiosis", "antidisestablishmentarianism's",
    "x" * 300 + " tail", "word " * 60, "!!!???...,,,;;;", "--- *** ___ ===", "...", "'s", "'",
    "''", "' s", "it 's a charming and often affecting journey . ",
    "<s>", "</s>", "<s>inside</s>", "text <s> more </s> end", "<mask> at start", "a <mask> b",
    "<pad><unk>", "[CLS] [SEP] [MASK] [PAD] [UNK]", "question [SEP] answer", "[cls] lower",
    "<<s>>", "</s></s>", "<s> <s>", "▁already▁has▁metaspace", "▁", "  ▁ ▁▁ ",
]

EDGE_PAIRS = [
    ("", ""), ("a", ""), ("", "b"), ("Hello", "world"), ("  spaced  ", "\ttabbed\n"),
    ("Café", "CAFÉ"), ("中文", "日本語"), ("emoji 😀", "👍🏽 ok"), ("<s>", "</s>"),
    ("[SEP]", "[CLS]"), ("x" * 150, "y" * 150),
]


def read_tsv(path, header=True):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if header:
        lines = lines[1:]
    return [l.split("\t") for l in lines if l.strip()]


def real_texts(data):
    """(singles, pairs) of real text from ../shared/data, in a fixed order."""
    singles, pairs = [], []
    g = os.path.join(data, "glue")
    singles += [r[0] for r in read_tsv(os.path.join(g, "SST-2", "dev.tsv"))]
    singles += [r[3] for r in read_tsv(os.path.join(g, "CoLA", "dev.tsv"), header=False)]
    pairs += [(r[3], r[4]) for r in read_tsv(os.path.join(g, "MRPC", "dev.tsv")) if len(r) >= 5]
    pairs += [(r[7], r[8]) for r in read_tsv(os.path.join(g, "STS-B", "dev.tsv")) if len(r) >= 9]
    pairs += [(r[1], r[2]) for r in read_tsv(os.path.join(g, "QNLI", "dev.tsv")) if len(r) >= 3]
    pairs += [(r[1], r[2]) for r in read_tsv(os.path.join(g, "RTE", "dev.tsv")) if len(r) >= 3]
    with open(os.path.join(data, "e2e_nlg", "devset.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    e2e = [(r["mr"], r["ref"]) for r in rows]
    with open(os.path.join(data, "dart", "dart-v1.1.1-full-dev.json"), encoding="utf-8") as f:
        dart = json.load(f)
    dart_pairs = [(" | ".join(" : ".join(t) for t in d["tripleset"]), d["annotations"][0]["text"])
                  for d in dart if d["annotations"]]
    dsum = []
    with open(os.path.join(data, "dialogsum", "dialogsum.dev.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                dsum.append((d["dialogue"], d["summary"]))
    return singles, pairs, e2e, dart_pairs, dsum


def select_cases(data, seed=1234):
    rng = random.Random(seed)
    singles, pairs, e2e, dart, dsum = real_texts(data)
    cases = []
    for t in rng.sample(singles, 160):
        cases.append({"source": "glue-single", "text": t})
    for a, b in rng.sample(pairs, 160):
        cases.append({"source": "glue-pair", "text": a, "text_pair": b})
    for mr, ref in rng.sample(e2e, 40):
        cases.append({"source": "e2e", "text": mr})
        cases.append({"source": "e2e", "text": ref})
    for a, b in rng.sample(dart, 40):
        cases.append({"source": "dart", "text": a, "text_pair": b})
    for dlg, summ in rng.sample(dsum, 12):
        cases.append({"source": "dialogsum", "text": dlg, "text_pair": summ})
    for a, b in rng.sample(pairs, 50):  # truncation with longest_first
        cases.append({"source": "glue-pair-trunc", "text": a, "text_pair": b,
                      "max_length": rng.choice([6, 9, 16, 17, 24, 32])})
    for t in rng.sample(singles, 20):
        cases.append({"source": "glue-single-trunc", "text": t, "max_length": rng.choice([1, 3, 8, 12])})
    for dlg, summ in rng.sample(dsum, 6):
        cases.append({"source": "dialogsum-trunc", "text": dlg, "text_pair": summ, "max_length": 128})
    for t in EDGE_TEXTS:
        cases.append({"source": "edge", "text": t})
    for a, b in EDGE_PAIRS:
        cases.append({"source": "edge-pair", "text": a, "text_pair": b})
        cases.append({"source": "edge-pair-trunc", "text": a, "text_pair": b, "max_length": 7})
    cases.append({"source": "edge-trunc", "text": "x" * 50 + " tail", "max_length": 2})
    return cases


def run_backend(tok, cases, decode_fn=None):
    out = []
    for c in cases:
        if "max_length" in c:
            tok.enable_truncation(c["max_length"], strategy="longest_first")
        else:
            tok.no_truncation()
        enc = tok.encode(c["text"], c.get("text_pair"), add_special_tokens=True)
        r = dict(c)
        r["ids"] = enc.ids
        if "text_pair" in c:
            r["type_ids"] = enc.type_ids
        elif "max_length" not in c:
            r["decoded"] = decode_fn(enc.ids) if decode_fn else tok.decode(enc.ids, skip_special_tokens=True)
        out.append(r)
    tok.no_truncation()
    return out


def llama_fast_from_model(model_dir):
    """The Hub's Llama-2 tokenizer.json configuration on top of the converted BPE model."""
    from transformers import LlamaTokenizer
    from tokenizers import Tokenizer
    v5 = LlamaTokenizer.from_pretrained(model_dir)
    spec = json.loads(v5.backend_tokenizer.to_str())
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    spec["pre_tokenizer"] = None
    spec["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    return Tokenizer.from_str(json.dumps(spec)), v5


def make_slow_llama(model_file):
    """transformers' own slow SentencePiece tokenizer with LlamaTokenizer's legacy=True templates."""
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    class SlowLlama(SentencePieceBackend):
        def build_inputs_with_special_tokens(self, a, b=None):
            return [self.bos_token_id] + a + ([] if b is None else [self.bos_token_id] + b)

        def create_token_type_ids_from_sequences(self, a, b=None):
            return [0] * (len(a) + 1) + ([] if b is None else [1] * (len(b) + 1))

    return SlowLlama(vocab_file=model_file, legacy=True, bos_token="<s>", eos_token="</s>",
                     unk_token="<unk>")


def sp_reference(sp, text):
    """HF slow LlamaTokenizer (legacy=True) semantics on raw sentencepiece: specials split first."""
    import re
    ids = []
    for part in re.split(r"(<s>|</s>|<unk>)", text):
        if part in ("<s>", "</s>", "<unk>"):
            ids.append({"<unk>": 0, "<s>": 1, "</s>": 2}[part])
        elif part:
            ids += sp.encode(part)
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "tokenizers"))
    args = ap.parse_args()
    import tokenizers
    import transformers
    import sentencepiece as spm
    from transformers import BertTokenizer, RobertaTokenizer

    cases = select_cases(args.data)
    tokdir = os.path.join(args.data, "tokenizers")
    versions = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
                "sentencepiece": spm.__version__, "python": sys.version.split()[0]}
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        def stage(name):
            d = os.path.join(tmp, name)
            shutil.copytree(os.path.join(tokdir, name), d)
            return d

        meta = lambda name, files, ref: {"tokenizer": name, "files": files, "reference": ref,
                                         "versions": versions, "generator": "tools/make_tokenizer_goldens.py"}
        # RoBERTa.
        rob = RobertaTokenizer.from_pretrained(stage("roberta-base"))
        be = rob.backend_tokenizer
        res = run_backend(be, cases)
        for r in res:  # the transformers front end must agree with its backend
            if "max_length" not in r and r.get("text_pair") != "":  # "" means no pair there
                ids = rob(r["text"], r.get("text_pair"))["input_ids"]
                assert ids == r["ids"], (r["text"], ids, r["ids"])
        write(args.out, "roberta-base", meta("roberta-base", ["vocab.json", "merges.txt"],
              "transformers.RobertaTokenizer backend (tokenizers ByteLevel BPE + RobertaProcessing)"), res)
        # BERT.
        bert = BertTokenizer.from_pretrained(stage("bert-base-uncased"))
        be = bert.backend_tokenizer
        res = run_backend(be, cases)
        for r in res:
            if "max_length" not in r and r.get("text_pair") != "":
                enc = bert(r["text"], r.get("text_pair"))
                assert enc["input_ids"] == r["ids"], (r["text"], enc["input_ids"], r["ids"])
        write(args.out, "bert-base-uncased", meta("bert-base-uncased", ["vocab.txt"],
              "transformers.BertTokenizer backend (BertNormalizer lowercase+strip accents, "
              "BertPreTokenizer, WordPiece, [CLS] A [SEP] B [SEP])"), res)
        # Llama 2: HF's slow SentencePiece tokenizer (legacy=True) is the reference; the fast
        # configuration is used only for truncation, and only where it agrees with the slow one.
        ldir = stage("llama2")
        slow = make_slow_llama(os.path.join(ldir, "tokenizer.model"))
        fast, v5 = llama_fast_from_model(ldir)
        sp = spm.SentencePieceProcessor(model_file=os.path.join(ldir, "tokenizer.model"))
        res, fast_mismatch, v5_mismatch, skipped = [], [], 0, 0
        for c in cases:
            full = slow(c["text"], c.get("text_pair"), return_token_type_ids=True)
            ref = [1] + sp_reference(sp, c["text"])
            if "text_pair" in c:
                ref += [1] + sp_reference(sp, c["text_pair"])
            assert ref == full["input_ids"], ("sentencepiece disagrees", c, ref, full["input_ids"])
            fast.no_truncation()
            fenc = fast.encode(c["text"], c.get("text_pair"))
            agree = fenc.ids == full["input_ids"]
            if "max_length" not in c and not agree:
                fast_mismatch.append(c["text"][:80])
            if "text_pair" not in c and "max_length" not in c:
                v5_ids = v5(c["text"], add_special_tokens=False)["input_ids"]
                v5_mismatch += v5_ids != full["input_ids"][1:]
            r = dict(c)
            if "max_length" in c:
                if not agree:
                    skipped += 1
                    continue
                fast.enable_truncation(c["max_length"], strategy="longest_first")
                tenc = fast.encode(c["text"], c.get("text_pair"))
                r["ids"] = tenc.ids
                if "text_pair" in c:
                    r["type_ids"] = tenc.type_ids
            else:
                r["ids"] = full["input_ids"]
                if "text_pair" in c:
                    r["type_ids"] = full["token_type_ids"]
                else:
                    # sentencepiece's own decode: lossless; HF's slow decode trims white space.
                    r["decoded"] = sp.decode([i for i in full["input_ids"] if i > 2])
            res.append(r)
        m = meta("llama2", ["tokenizer.model"],
                 "HF slow LlamaTokenizer semantics (transformers SentencePieceBackend, legacy=True, "
                 "BOS prepended, pair <s> A <s> B with type ids 0/1), equal to sentencepiece on "
                 "every case; truncation cases from the Hub-configured fast tokenizer where its "
                 "untruncated ids equal the slow ones")
        m["fast_tokenizer_mismatches"] = len(fast_mismatch)
        m["fast_tokenizer_mismatch_examples"] = fast_mismatch[:5]
        m["transformers_v5_llama_mismatches"] = v5_mismatch
        m["truncation_cases_skipped_fast_slow_disagree"] = skipped
        write(args.out, "llama2", m, res)
        print("llama2: fast != slow on %d cases, transformers-5 LlamaTokenizer != slow on %d singles,"
              " %d truncation cases skipped" % (len(fast_mismatch), v5_mismatch, skipped))
    finally:
        shutil.rmtree(tmp)


def write(out_dir, name, meta, cases):
    meta = dict(meta)
    meta["num_cases"] = len(cases)
    meta["cases"] = cases
    path = os.path.join(out_dir, name + ".json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("%s: %d cases, %d bytes" % (path, len(cases), os.path.getsize(path)))


if __name__ == "__main__":
    main()
