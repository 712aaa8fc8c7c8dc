"""Derive per-language profiles from reference text, as FineWeb-2 does: `python -m mixline.curation.lang.derive`.

Reference text is JSONL (optionally gzipped) with `lang` and `text`, one sentence or paragraph a
record. Records of a language are grouped into documents of 10-20 sentences (paragraphs of a few
sentences each), and each language gets:

- `stop_words`: its most frequent function words (the frequent words of the reference that
  spaCy's stop-word list for the language also holds, or the most frequent words where spaCy has
  no list); scripts without spaces count them as substrings.
- `lid_words`: its most frequent words, which the fast path of language identification scores.
- Gopher's word-length bounds scaled from English's 3-10 by the ratio of median word lengths.
- `min_line_punct_ratio`: FineWeb's 0.12 where the reference's lines end in punctuation, or off
  (null) where they mostly do not (Thai, Lao, Khmer).
- the share of reference documents each rule would drop, so a user sees what a value costs.

The shipped `profiles.json` was derived from the even-numbered sentences of the Leipzig web
sentences in 75 languages (see `benchmarks/bench_languages.py`, which evaluates on the odd ones).
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import random
import statistics
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mixline.curation.lang import scripts
from mixline.curation.lang.text import alpha_ratio, line_punct_share, stop_hits, units, word_tokens

HERE = Path(__file__).parent
PROFILES = HERE / "profiles.json"


def read_sentences(path: str | Path) -> dict[str, list[str]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    by: dict[str, list[str]] = defaultdict(list)
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                by[str(rec["lang"])].append(str(rec["text"]))
            except (json.JSONDecodeError, KeyError) as exc:
                raise SystemExit(f"{path}:line {n}: needs a JSON object with `lang` and `text` ({exc})") from None
    return by


def documents(sentences: list[str], seed: int = 0, low: int = 10, high: int = 20) -> Iterator[str]:
    """Sentences grouped into documents of `low`-`high` sentences, in paragraphs of 2-5.

    The sentences are shuffled first (with `seed`): sentence lists such as Leipzig's are sorted,
    and neighbours share their first words, which would read as repeated n-grams."""
    rng = random.Random(seed)
    sentences = list(sentences)
    rng.shuffle(sentences)
    i = 0
    while i + low <= len(sentences):
        n = rng.randint(low, high)
        chunk = sentences[i:i + n]
        i += n
        paras, j = [], 0
        while j < len(chunk):
            k = rng.randint(2, 5)
            sep = "" if scripts.script_of(chunk[0]) in ("Hani", "Jpan") else " "
            paras.append(sep.join(s.strip() for s in chunk[j:j + k]))
            j += k
        yield "\n".join(paras)


def split(sentences: list[str], part: str) -> list[str]:
    """The reference half (even positions) or the evaluation half (odd positions)."""
    return sentences[0::2] if part == "reference" else sentences[1::2]


def _spacy_stop_words(lang: str) -> set[str]:
    try:
        return set(importlib.import_module(f"spacy.lang.{lang}.stop_words").STOP_WORDS)
    except (ImportError, AttributeError):
        return set()


def derive_one(lang: str, sentences: list[str], en_median: float) -> dict[str, Any]:
    docs = list(documents(sentences))
    script = scripts.main_script(scripts.script_counts(" ".join(sentences[:50])))[0]
    unspaced = scripts.is_unspaced(script)
    # Korean writes its particles onto the word before ("학생이"): count them as substrings too.
    substrings = unspaced or script in ("Hang", "Kore")
    freq: Counter[str] = Counter()
    for s in sentences:
        freq.update(w.lower() for w in word_tokens(s))
    spacy_list = _spacy_stop_words(lang)
    if substrings:
        # Function words of a script without spaces (or particles glued to words), counted as substrings of the reference.
        joined = "\n".join(sentences)
        shortest = 1 if script in ("Hani", "Jpan", "Hang", "Kore") else 2  # one Thai letter is a part of most words
        cands = {w: joined.count(w) for w in spacy_list
                 if shortest <= len(w) <= 3 and all(unicodedata.category(c)[0] in "LM" for c in w) and not w.isascii()}
        stop = [w for w, n in sorted(cands.items(), key=lambda x: (-x[1], x[0])) if n][:20]
        if len(stop) < 10:
            chars = Counter(c for c in joined if scripts.UNSPACED_CHAR.match(c))
            stop += [c for c, _ in chars.most_common(40) if c not in stop][: 20 - len(stop)]
        lid = stop[:]
        if not unspaced:
            lid = [w for w, _ in freq.most_common(40)]
    else:
        words = [w for w, _ in freq.most_common(400) if any(c.isalpha() for c in w)]
        stop = [w for w in words if w in spacy_list][:20] if spacy_list else []
        if len(stop) < 8:
            stop = words[:20]
        lid = words[:40]
    med = statistics.median(_avg_word(d) for d in docs) if not unspaced else None
    ratio = (med / en_median) if med and lang != "en" else 1.0  # English keeps Gopher's 3-10
    punct = sorted(line_punct_share(d) for d in docs)
    q05 = punct[max(0, int(0.05 * len(punct)) - 1)] if punct else 0.0
    profile: dict[str, Any] = {
        "script": script,
        "stop_words": stop,
        "stop_words_as_substrings": substrings,
        "min_stop_words": 2,
        "min_avg_word_length": None if unspaced else round(3 * ratio, 2),
        "max_avg_word_length": None if unspaced else round(10 * ratio, 2),
        "min_line_punct_ratio": 0.12 if q05 >= 0.3 else None,
        "lid_words": lid,
    }
    # Gopher's 0.8, or lower where the reference's punctuation is denser (Urdu, Chinese): 0.05 under its 1st percentile.
    alphas = sorted(alpha_ratio(d, script) for d in docs)
    profile["min_alpha_words_ratio"] = round(min(0.8, alphas[max(0, int(0.01 * len(alphas)) - 1)] - 0.05), 2) if alphas else 0.8
    hits = [stop_hits(d, profile["stop_words"], substrings) for d in docs]
    profile["reference"] = {
        "docs": len(docs), "median_avg_word_length": round(med, 2) if med else None,
        "median_units": statistics.median(units(d, script) for d in docs) if docs else 0,
        "median_stop_hits": statistics.median(hits) if hits else 0,
        "q05_line_punct_share": round(q05, 3),
        "dropped_by_stop_words": round(sum(h < 2 for h in hits) / max(1, len(hits)), 4),
    }
    return profile


def _avg_word(doc: str) -> float:
    ws = [w for w in word_tokens(doc) if any(c.isalpha() for c in w)]
    return sum(map(len, ws)) / len(ws) if ws else 0.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reference", help="JSONL(.gz) with `lang` and `text` per record")
    ap.add_argument("--out", default=str(PROFILES), help="where to write the profiles (JSON)")
    ap.add_argument("--all", action="store_true", help="use every record, not the even-numbered half")
    args = ap.parse_args(argv)
    by = read_sentences(args.reference)
    part = {lang: ss if args.all else split(ss, "reference") for lang, ss in sorted(by.items())}
    if "en" not in part:
        raise SystemExit(f"{args.reference}: needs English records (lang = en): word-length bounds are scaled from English's")
    en_median = statistics.median(_avg_word(d) for d in documents(part["en"]))
    out = {lang: derive_one(lang, ss, en_median) for lang, ss in part.items()}
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(out)} language profiles to {args.out}")


if __name__ == "__main__":
    main()
