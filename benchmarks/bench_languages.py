"""Curation in 75 languages: language identification, the default recipe per language, PII
outside English, and the English recipe's speed before and after languages.

    .venv/bin/python benchmarks/bench_languages.py [--before COMMIT] [--docs 40]

Input: ../shared/data/multilingual/leipzig_web_sentences_75.jsonl.gz (or $MIXLINE_REALDATA),
the odd-numbered half of each language's sentences (the shipped profiles were derived from the
even half), grouped into documents of 10-20 sentences; and the Common Crawl file for English.
Prints tables in the form benchmarks/RESULTS.md keeps.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, realdata  # noqa: E402
from _common import table as _table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REALDATA = realdata()
MULTI = REALDATA / "multilingual" / "leipzig_web_sentences_75.jsonl.gz"
CC = REALDATA / "web" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def table(rows: list[dict[str, object]]) -> None:
    print(_table(rows))


def lid(by: dict[str, list[str]]) -> None:
    from mixline.curation.lang.derive import documents, split
    from mixline.curation.lang.identify import CLOSE, Identifier

    docs = [(lang, d) for lang, ss in by.items() for d in documents(split(ss, "eval"), seed=1)]
    ident = Identifier()
    ident.identify([d for _, d in docs[:100]])  # lingua's models load on first use
    t0 = time.perf_counter()
    found = ident.identify([d for _, d in docs])
    secs = time.perf_counter() - t0
    exact = sum(f.lang == lang for (lang, _), f in zip(docs, found, strict=True)) / len(docs)
    close = sum(f.lang in next((g for g in CLOSE if lang in g), {lang}) for (lang, _), f in zip(docs, found, strict=True)) / len(docs)
    per: dict[str, list[bool]] = defaultdict(list)
    for (lang, _), f in zip(docs, found, strict=True):
        per[lang].append(f.lang == lang)
    confusions = Counter((lang, f.lang) for (lang, _), f in zip(docs, found, strict=True) if f.lang != lang)
    methods = Counter(f.method for f in found)
    sents = [(lang, ss[1::2][k]) for lang, ss in by.items() for k in range(20)]
    t1 = time.perf_counter()
    sf = ident.identify([s for _, s in sents])
    s_secs = time.perf_counter() - t1
    s_acc = sum(f.lang == lang for (lang, _), f in zip(sents, sf, strict=True)) / len(sents)
    print(f"\n## Language identification: {len(docs)} documents of 10-20 sentences in {len(by)} languages\n")
    table([{"texts": "documents (10-20 sentences)", "n": len(docs), "accuracy": exact,
            "accuracy, close pairs as one": close, "ms per text": 1000 * secs / len(docs)},
           {"texts": "single sentences", "n": len(sents), "accuracy": s_acc, "accuracy, close pairs as one": None,
            "ms per text": 1000 * s_secs / len(sents)}])
    print("\nby method: " + ", ".join(f"{k} {v}" for k, v in methods.most_common()))
    print("confusions: " + ", ".join(f"{a}->{b} {n}" for (a, b), n in confusions.most_common(10)))
    low = sorted((sum(v) / len(v), lang) for lang, v in per.items())[:6]
    print("lowest per language: " + ", ".join(f"{lang} {acc:.2f}" for acc, lang in low))


def curation(by: dict[str, list[str]], docs: int, seed: int) -> None:
    from mixline.curation.lang.derive import documents, split
    from mixline.curation.lang.evaluate import VARIANTS, corpus, run
    from mixline.curation.lang.evaluate import table as per_language
    from mixline.curation.lang.text import WORD
    from mixline.curation.pii.detectors import Detector

    result = run(corpus(by, docs_per_lang=docs, seed=seed))
    rows = per_language(result)
    det = Detector(names="lexicon")  # as the pii step scans conversations and synthetic text
    names = {}
    for lang, ss in by.items():
        ds = list(documents(split(ss, "eval"), seed=seed + 1))[:docs]
        spans = det.detect(ds, [lang] * len(ds))
        names[lang] = 1000 * sum(len(s) for s in spans) / max(1, sum(len(WORD.findall(d)) for d in ds))
    out = [{"lang": r["lang"], "script": r["script"], "docs": r["docs"], "kept": r["kept"],
            **{f"{v} dropped": r[f"{v}_dropped"] for v in VARIANTS},
            "top drop reasons (degraded)": r["top_drop_reasons"], "good docs dropped by": r["good_drop_reasons"] or "-",
            "PII /1k words (web)": r["redactions_per_1k_words"], "PII /1k words (names on)": names[r["lang"]]}
           for r in rows]
    print(f"\n## The default recipe in {len(rows)} languages ({result['selected']:,} documents, curated in "
          f"{result['seconds']:.1f} s, {1000 * result['seconds'] / result['selected']:.2f} ms per document)\n")
    table(out)
    keep = [r["kept"] for r in rows]
    print(f"\nkept: mean {statistics.mean(keep):.3f}, min {min(keep):.3f} ({min(rows, key=lambda r: r['kept'])['lang']}); "
          + ", ".join(f"{v} dropped min {min(r[f'{v}_dropped'] for r in rows):.3f}" for v in VARIANTS))


def _iban(country: str, bban: str) -> str:
    num = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(num) % 97:02d}{bban}"


PLANT = {  # per language: a region, and street-address templates in its format
    "de": ("DE", ["{street}straße {n}, {zip5} Berlin", "{street}weg {n}, {zip5} Hamburg"]),
    "fr": ("FR", ["{n} rue de la {street}, {zip5} Paris", "{n} avenue {street}, {zip5} Lyon"]),
    "es": ("ES", ["Calle {street} {n}, {zip5} Madrid", "Avenida de {street} {n}, {zip5} Sevilla"]),
    "it": ("IT", ["Via {street} {n}, {zip5} Roma", "Corso {street} {n}, {zip5} Milano"]),
    "nl": ("NL", ["{street}straat {n}, {zip4} AB Amsterdam", "{street}laan {n}, {zip4} CD Utrecht"]),
    "pl": ("PL", ["ul. {street} {n}, {zip2}-{zip3} Warszawa", "ul. {street} {n}, {zip2}-{zip3} Kraków"]),
    "pt": ("PT", ["Rua {street} {n}, {zip4}-{zip3} Lisboa", "Avenida {street} {n}, {zip4}-{zip3} Porto"]),
    "sv": ("SE", ["{street}gatan {n}, {zip3} {zip2} Stockholm", "{street}vägen {n}, {zip3} {zip2} Göteborg"]),
}
STREETS = ["Linden", "Rosen", "Garten", "Berg", "Paix", "Mayor", "Roma", "Kerk", "Nowa", "Augusta", "Stor", "Lind"]


def pii(by: dict[str, list[str]], seed: int = 11) -> None:
    """Planted values (email, national phone, IBAN, street address) in real sentences; precision and
    recall per language and type. A span over an unplanted value counts against precision."""
    import phonenumbers
    from mixline.curation.pii.detectors import Detector

    rng = random.Random(seed)
    det = Detector(names="none")
    out = []
    for lang, (region, templates) in PLANT.items():
        ss = by[lang][1::2]
        texts, truth = [], []
        for k in range(60):
            kind = ("EMAIL", "PHONE", "IBAN", "STREET_ADDRESS")[k % 4]
            if kind == "EMAIL":
                value = f"{rng.choice(['anna', 'jan', 'marie', 'luca'])}.{rng.choice(['weber', 'rossi', 'silva'])}{rng.randint(1, 99)}@{rng.choice(['mail', 'post', 'web'])}.{region.lower()}"
            elif kind == "PHONE":
                ex = phonenumbers.example_number_for_type(region, rng.choice(
                    [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
                for _ in range(50):  # the example number with its last four digits redrawn, still valid
                    digits = str(ex.national_number)
                    cand = phonenumbers.parse(digits[:-4] + f"{rng.randint(0, 9999):04d}", region)
                    if phonenumbers.is_valid_number(cand):
                        ex = cand
                        break
                value = phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.NATIONAL)
            elif kind == "IBAN":
                value = _iban(region, "".join(str(rng.randint(0, 9)) for _ in range(18)))
            else:
                value = rng.choice(templates).format(street=rng.choice(STREETS), n=rng.randint(1, 120),
                                                     zip5=f"{rng.randint(10000, 99999)}", zip4=f"{rng.randint(1000, 9999)}",
                                                     zip3=f"{rng.randint(100, 999)}", zip2=f"{rng.randint(10, 99)}")
            a, b = ss[2 * k % len(ss)], ss[(2 * k + 1) % len(ss)]
            text = f"{a} {value}. {b}" if kind != "STREET_ADDRESS" else f"{a}\n{value}\n{b}"
            start = text.index(value)
            texts.append(text)
            truth.append((kind, start, start + len(value)))
        found = det.detect(texts, [lang] * len(texts))
        for kind in ("EMAIL", "PHONE", "IBAN", "STREET_ADDRESS"):
            tp = fp = fn = 0
            for (tk, a, b), spans in zip(truth, found, strict=True):
                hit = [s for s in spans if s.entity_type == kind and s.start < b and s.end > a]
                other = [s for s in spans if s.entity_type == kind and not (s.start < b and s.end > a)]
                fp += len(other)
                if tk == kind:
                    tp += bool(hit)
                    fn += not hit
            out.append({"lang": lang, "type": kind, "planted": tp + fn, "found": tp, "recall": tp / max(1, tp + fn),
                        "precision": tp / max(1, tp + fp)})
    print("\n## PII planted in real sentences (8 languages; national formats)\n")
    table(out)


OLD_RUNNER = """
import json, sys, time
from mixline import api
from mixline.store.store import Store
st = Store(sys.argv[1])
t = time.perf_counter(); r = api.curate(st); s = time.perf_counter() - t
print(json.dumps({"seconds": s, "kept": r.kept, "selected": r.selected}))
"""


def english_speed(before: str, repeats: int = 3) -> None:
    """The default recipe on the Common Crawl file's English documents, at `before` and now."""
    from mixline.curation.lang.identify import Identifier

    web = [json.loads(line).get("text", "") for line in gzip.open(CC, "rt", encoding="utf-8")]
    web = [t for t in web if t.strip()]
    en = [t for t, f in zip(web, Identifier().identify(web), strict=True) if f.lang == "en"]
    docs = [f"{t}\n\n(copy {k})" if k else t for k in range(4) for t in en]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "en.jsonl"
        src.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs), encoding="utf-8")
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old / "src"), before],
                       check=True, capture_output=True)
        try:
            pkg = old / "pkg" / "mixline"
            pkg.mkdir(parents=True)
            for f in (old / "src" / "mixline").iterdir():
                (pkg / f.name).symlink_to(f)
            for d in ("store", "curation", "pipelines", "dashboards"):
                (pkg / d).symlink_to(old / "src" / d)
            rows = []
            for label, path in (("before", str(old / "pkg")), ("now", "")):
                env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
                times, kept = [], None
                for k in range(repeats):
                    store = Path(tmp) / f"{label}-{k}.duckdb"
                    ingest = ("from mixline import api; from mixline.store.store import Store; import sys; "
                              "st = Store(sys.argv[1]); api.ingest(st, sys.argv[2], kind='web', source='cc-en'); st.close()")
                    subprocess.run([sys.executable, "-c", ingest, str(store), str(src)], check=True, env=env, capture_output=True)
                    out = subprocess.run([sys.executable, "-c", OLD_RUNNER, str(store)], check=True, env=env,
                                         capture_output=True, text=True)
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    times.append(r["seconds"])
                    kept = r["kept"]
                rows.append({"code": f"{label} ({before[:10]})" if label == "before" else "now", "docs": len(docs),
                             "best s": min(times), "median s": statistics.median(times),
                             "ms per doc": 1000 * min(times) / len(docs), "kept": kept})
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old / "src")], capture_output=True)
    print(f"\n## The default recipe on English web text, before languages and now ({repeats} runs each, same input)\n")
    table(rows)
    print(f"\nratio now / before (best of {repeats}): {rows[1]['best s'] / rows[0]['best s']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=40, help="good documents per language (40: all of the half)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--before", default=None, help="commit to time the English recipe against (e.g. the one before languages)")
    ap.add_argument("--only", choices=["lid", "curation", "pii", "speed"], default=None)
    args = ap.parse_args()
    if not MULTI.exists():
        sys.exit(f"{MULTI} not found; set MIXLINE_REALDATA")
    from mixline.curation.lang.derive import read_sentences

    by = read_sentences(MULTI)
    print(f"machine: {machine()}")
    if args.only in (None, "lid"):
        lid(by)
    if args.only in (None, "curation"):
        curation(by, args.docs, args.seed)
    if args.only in (None, "pii"):
        pii(by)
    if args.before and args.only in (None, "speed"):
        english_speed(args.before)


if __name__ == "__main__":
    main()
