"""How the default recipe treats every language: known-good documents, and degraded copies of them.

`python -m mixline.curation.lang.evaluate SENTENCES.jsonl.gz` groups each language's sentences
(records with `lang` and `text`; the odd-numbered half, which the shipped profiles were not
derived from) into documents of 10-20 sentences, makes four degraded copies of each, ingests
all of them as web text into a scratch store, runs a recipe (the default unless `--recipe`), and
prints per language: script, documents, the share of good documents kept, the share of each
kind of degraded copy dropped, the top drop reasons, the language identified, and PII
redactions per 1,000 words. Only filter decisions count: a good document that dedup drops as a
copy of its own degraded copy is not a quality verdict.

The degraded copies, each a kind of page that web crawls are full of:
- `wordlist`: the document's words, one a line (a dictionary or tag page);
- `repeated`: a few of its lines, each repeated many times (a template or a spam page);
- `menu`: navigation lines of short items joined by ` | ` and a copyright line;
- `fragments`: its words cut into lines of two to five, without their punctuation.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from mixline.curation.lang import scripts
from mixline.curation.lang.derive import documents, read_sentences, split
from mixline.curation.lang.text import WORD

VARIANTS = ("wordlist", "repeated", "menu", "fragments")
DEDUP = ("exact_dedup", "minhash_dedup", "semantic_dedup")


def _pieces(text: str, script: str, rng: random.Random) -> list[str]:
    """Word-like pieces: words, or runs of 2-4 characters in a script without spaces."""
    if not scripts.is_unspaced(script):
        return WORD.findall(text)
    out: list[str] = []
    for run in WORD.findall(text):
        i = 0
        while i < len(run):
            k = rng.randint(2, 4)
            out.append(run[i:i + k])
            i += k
    return out


def degrade(doc: str, variant: str, seed: int = 0) -> str:
    rng = random.Random(f"{seed}:{variant}:{len(doc)}")
    script = scripts.script_of(doc)
    words = _pieces(doc, script, rng)
    if variant == "wordlist":
        seen = list(dict.fromkeys(w.lower() for w in words))
        return "\n".join(seen)
    if variant == "repeated":
        lines = doc.split("\n")
        picked = lines[: max(1, min(3, len(lines)))]
        return "\n".join([*lines, *(picked * 4)])
    if variant == "menu":
        short = [w for w in words if len(w) <= 12] or words
        lines = [" | ".join(rng.choice(short) for _ in range(rng.randint(4, 7))) for _ in range(16)]
        return "\n".join([*lines, f"© {rng.randint(2005, 2025)} {rng.choice(short)}"])
    if variant == "fragments":
        out, i = [], 0
        while i < len(words):
            k = rng.randint(2, 5)
            out.append(" ".join(words[i:i + k]))
            i += k
        return "\n".join(out)
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")


def corpus(by_lang: dict[str, list[str]], docs_per_lang: int = 20, seed: int = 0, part: str = "eval",
           variants: tuple[str, ...] = VARIANTS) -> list[dict[str, Any]]:
    rows = []
    for lang, sentences in sorted(by_lang.items()):
        for n, doc in enumerate(list(documents(split(sentences, part), seed=seed + 1))[:docs_per_lang]):
            rows.append({"id": f"{lang}:{n}:good", "lang": lang, "variant": "good", "text": doc})
            for v in variants:
                rows.append({"id": f"{lang}:{n}:{v}", "lang": lang, "variant": v, "text": degrade(doc, v, seed)})
    return rows


def run(rows: list[dict[str, Any]], recipe: Any = None, workdir: str | Path | None = None) -> dict[str, Any]:
    """Ingest the rows as web text into a scratch store, curate, and gather verdicts per row."""
    from mixline.store.store import Store

    from mixline import api

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "docs.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        st = Store(Path(tmp) / "eval.duckdb")
        try:
            api.ingest(st, path, kind="web", source="eval", id_field="id")
            t0 = time.perf_counter()
            res = api.curate(st, recipe)
            seconds = time.perf_counter() - t0
            found = st.rows("""
                SELECT o.original_id AS id, s.lang, s.script, s.lang_score,
                       (SELECT any_value(d.step || ': ' || split_part(d.reason, ':', 1)) FROM decisions d
                         WHERE d.sample_id = s.sample_id AND d.verdict = 'dropped'
                           AND NOT list_contains(?, regexp_replace(d.step, '_v[0-9]+$', ''))) AS dropped_by,
                       (SELECT count(*) FROM redactions r JOIN edges e ON e.child_id = r.sample_id
                         WHERE e.parent_id = s.sample_id AND e.relation = 'scrubbed_from') AS redactions,
                       (SELECT list(DISTINCT r.entity_type) FROM redactions r JOIN edges e ON e.child_id = r.sample_id
                         WHERE e.parent_id = s.sample_id AND e.relation = 'scrubbed_from') AS redacted_types
                FROM samples s JOIN sample_origins o USING (sample_id)
                WHERE s.sample_id NOT IN (SELECT child_id FROM edges WHERE relation = 'scrubbed_from')""", [list(DEDUP)])
        finally:
            st.close()
    by_id = {r["id"]: r for r in found}
    out = []
    for r in rows:
        f = by_id.get(r["id"], {})
        out.append({**r, "found_lang": f.get("lang"), "script": f.get("script"), "dropped_by": f.get("dropped_by"),
                    "redactions": int(f.get("redactions") or 0), "redacted_types": f.get("redacted_types") or [],
                    "words": len(WORD.findall(r["text"]))})
    return {"rows": out, "seconds": seconds, "selected": res.selected}


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per language: kept share of good docs, dropped share per degraded kind, LID and PII."""
    per: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in result["rows"]:
        per[r["lang"]].append(r)
    out = []
    for lang, rs in sorted(per.items()):
        good = [r for r in rs if r["variant"] == "good"]
        row: dict[str, Any] = {
            "lang": lang, "script": Counter(r["script"] for r in good).most_common(1)[0][0] if good else None,
            "docs": len(good), "kept": sum(r["dropped_by"] is None for r in good) / max(1, len(good)),
            "lid_correct": sum(r["found_lang"] == lang for r in good) / max(1, len(good))}
        for v in VARIANTS:
            vs = [r for r in rs if r["variant"] == v]
            if vs:
                row[f"{v}_dropped"] = sum(r["dropped_by"] is not None for r in vs) / len(vs)
        reasons = Counter(r["dropped_by"] for r in good if r["dropped_by"])
        row["good_drop_reasons"] = ", ".join(f"{k} {n}" for k, n in reasons.most_common(2))
        degraded = Counter(r["dropped_by"] for r in rs if r["variant"] != "good" and r["dropped_by"])
        row["top_drop_reasons"] = ", ".join(f"{k.split(': ')[1]} {n}" for k, n in degraded.most_common(3))
        words = sum(r["words"] for r in good)
        row["redactions_per_1k_words"] = 1000 * sum(r["redactions"] for r in good) / max(1, words)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sentences", help="JSONL(.gz) with `lang` and `text` per record")
    ap.add_argument("--docs", type=int, default=20, help="good documents per language")
    ap.add_argument("--recipe", default=None, help="a recipe file (default: the built-in recipe)")
    args = ap.parse_args(argv)
    result = run(corpus(read_sentences(args.sentences), args.docs), args.recipe)
    rows = table(result)
    keys = list(rows[0])
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()))
    print(f"{result['selected']} documents curated in {result['seconds']:.1f} s")


if __name__ == "__main__":
    main()
