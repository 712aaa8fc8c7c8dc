"""Curation in every language: identification, rules per language, dedup and decontamination in
scripts without spaces, toxicity only where its model fits, PII outside English, and languages in
mixes and cards. The real-data tests use ../shared/data/multilingual (75 languages)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from mixline.curation.lang.derive import documents, read_sentences, split
from mixline.curation.lang.identify import CLOSE, Identifier
from mixline.curation.recipe import Recipe
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.store.store import Store

from mixline import api

MULTI = "multilingual/leipzig_web_sentences_75.jsonl.gz"


@pytest.fixture(scope="module")
def sentences(realdata: Path) -> dict[str, list[str]]:
    return read_sentences(realdata / MULTI)


def write(path: Path, texts: list[str], **extra: object) -> Path:
    path.write_text("".join(json.dumps({"text": t, **extra}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return path


def test_language_of_documents_in_75_languages(sentences: dict[str, list[str]]) -> None:
    """At least 95% right on documents of 10-20 sentences (the half the profiles were not derived from)."""
    docs = [(lang, d) for lang, ss in sentences.items() for d in list(documents(split(ss, "eval"), seed=3))[:12]]
    found = Identifier().identify([d for _, d in docs])
    right = [f.lang == lang for (lang, _), f in zip(docs, found, strict=True)]
    assert len(sentences) == 75 and sum(right) / len(right) >= 0.95
    per: dict[str, list[bool]] = {}
    for (lang, _), f in zip(docs, found, strict=True):
        close = next((g for g in CLOSE if lang in g), {lang})
        per.setdefault(lang, []).append(f.lang in close)  # Malay/Indonesian, Bosnian/Croatian/Serbian
    weak = {lang: sum(v) / len(v) for lang, v in per.items() if sum(v) / len(v) < 0.9}
    assert weak == {}
    assert all(f.script and 0 < f.score <= 1 for f in found)
    scripts = {f.script for f in found}
    assert {"Latn", "Cyrl", "Arab", "Deva", "Hani", "Jpan", "Thai", "Grek", "Hebr", "Geor", "Armn"} <= scripts
    assert scripts & {"Hang", "Kore"}


def test_short_texts_mixed_documents_and_code(sentences: dict[str, list[str]]) -> None:
    ident = Identifier()
    short = [(lang, ss[1]) for lang, ss in sentences.items()]
    found = ident.identify([s for _, s in short])
    assert sum(f.lang == lang for (lang, _), f in zip(short, found, strict=True)) / len(short) >= 0.85
    assert ident.identify(["ok"])[0].lang == "und" and ident.identify(["1234 5678 -- 99"])[0].lang == "zxx"
    de = "\n".join(" ".join(sentences["de"][i:i + 4]) for i in range(0, 24, 4))
    en = "\n".join(" ".join(sentences["en"][i:i + 4]) for i in range(0, 8, 4))
    mixed = ident.identify([de + "\n" + en])[0]
    assert mixed.lang == "de" and 0.1 <= mixed.mix.get("en", 0) <= 0.5
    ru_ja = "\n".join(" ".join(sentences["ru"][i:i + 3]) for i in range(0, 12, 3)) + "\n" + "".join(sentences["ja"][:8])
    r = ident.identify([ru_ja])[0]
    assert r.lang == "ru" and r.mix.get("ja", 0) > 0.1
    code = "def area(r):\n    import math\n    return math.pi * r ** 2\n\nclass Shape:\n    x = 1\n    def f(self):\n        return self.x\n"
    c = ident.identify([code])[0]
    assert (c.lang, c.method) == ("zxx", "code")


def test_default_recipe_keeps_good_text_and_drops_degraded_copies_in_every_language(sentences: dict[str, list[str]],
                                                                                      tmp_path: Path) -> None:
    """The issue's bar: >= 95% of known-good documents kept in each of the 75 languages, and >= 90%
    of each kind of degraded copy (word lists, repeated lines, menus, fragments) dropped."""
    from mixline.curation.lang.evaluate import VARIANTS, corpus, run, table

    result = run(corpus(sentences, docs_per_lang=40, seed=5), workdir=tmp_path)  # every evaluation document
    rows = table(result)
    assert len(rows) == 75
    # English keeps datatrove's Gopher rules verdict for verdict (99% agreement on Common Crawl is
    # the other bar), and those drop a few of these documents for HTML entities and citations.
    bad = [(r["lang"], r["kept"], r["good_drop_reasons"]) for r in rows if r["kept"] < (0.9 if r["lang"] == "en" else 0.95)]
    assert bad == []
    assert sum(r["kept"] for r in rows) / len(rows) >= 0.98
    for v in VARIANTS:
        weak = [(r["lang"], r[f"{v}_dropped"]) for r in rows if r[f"{v}_dropped"] < 0.9]
        assert weak == [], v
    # Every sample has a language and a script recorded; good documents are identified right.
    assert sum(r["lid_correct"] for r in rows) / len(rows) >= 0.95
    assert all(r["found_lang"] and r["script"] for r in result["rows"])


def test_language_is_recorded_and_reaches_scrubbed_children(tmp_path: Path, sentences: dict[str, list[str]]) -> None:
    st = Store(tmp_path / "s.duckdb")
    de = " ".join(sentences["de"][:14]) + " Rufen Sie uns unter 030 12345678 an oder schreiben Sie an info@beispiel-firma.de."
    zh = "".join(sentences["zh"][:14])
    api.ingest(st, write(tmp_path / "w.jsonl", [de, zh]), kind="web", source="w")
    api.curate(st)
    rows = {r["lang"]: r for r in st.rows("SELECT sample_id, lang, script, lang_score, lang_mix FROM samples")}
    assert set(rows) == {"de", "zh"} and rows["zh"]["script"] == "Hani" and rows["de"]["lang_score"] > 0.5
    child = st.rows("""SELECT c.lang, c.script, c.text FROM edges e JOIN samples c ON c.sample_id = e.child_id
                       WHERE e.relation = 'scrubbed_from'""")
    assert len(child) == 1 and child[0]["lang"] == "de" and child[0]["script"] == "Latn"
    assert "<PHONE>" in child[0]["text"] and "12345678" not in child[0]["text"]
    status = dict(st.execute("SELECT lang, count(*) FROM samples s JOIN sample_status USING (sample_id) "
                             "WHERE status = 'kept' GROUP BY 1").fetchall())
    assert status == {"de": 1, "zh": 1}  # the scrubbed German child, and the Chinese text
    st.close()


def test_a_recipe_changes_a_language_s_values(tmp_path: Path, sentences: dict[str, list[str]]) -> None:
    st = Store(tmp_path / "s.duckdb")
    docs = list(documents(split(sentences["de"], "eval")))[:3] + list(documents(split(sentences["fr"], "eval")))[:3]
    api.ingest(st, write(tmp_path / "w.jsonl", docs), kind="web", source="w")
    rec = Recipe.parse({"name": "strict-de", "steps": [
        {"type": "language"},
        {"type": "gopher_quality", "languages": {"de": {"min_stop_words": 500}, "fr": {"off": ["min_avg_word_length"]}}}]},
        "test")
    cfg = rec.build()[1].config()["languages"]
    assert cfg["de"]["min_stop_words"] == 500 and cfg["fr"]["min_avg_word_length"] is None and "der" in cfg["de"]["stop_words"]
    api.curate(st, rec)
    verdicts = dict(st.execute("""SELECT s.lang, string_agg(DISTINCT d.reason, ',') FROM decisions d JOIN samples s USING (sample_id)
                                  WHERE d.step = 'gopher_quality_v2' GROUP BY 1""").fetchall())
    assert verdicts == {"de": "few_stop_words", "fr": None}
    with pytest.raises(Exception, match="unknown keys"):
        Recipe.parse({"name": "x", "steps": [{"type": "gopher_quality", "languages": {"de": {"min_stops": 1}}}]}, "t").build()
    st.close()


def test_english_keeps_datatrove_rules_unless_a_recipe_gives_it_a_table() -> None:
    import pyarrow as pa
    from mixline.curation.filters.gopher import GopherQuality

    # Numbers and quotes: under datatrove's 0.8 alphabetic-word bar, over 0.6.
    text = " ".join(f'"In {1990 + i}, {123456 + i} residents of the city voted, and {98765 + i} households '
                    f'agreed," officials reported on {20240101 + i}.' for i in range(12))
    batch = pa.table({"text": [text], "lang": ["en"], "script": ["Latn"]})
    assert GopherQuality().decide(batch).reasons == ["few_alpha_words"]
    own = GopherQuality(languages={"en": {"min_alpha_words_ratio": 0.3, "stop_words": ["the", "of", "to"]}})
    assert own.decide(batch).reasons == [None]


def test_a_language_without_a_profile_is_not_judged_by_english_stop_words() -> None:
    from mixline.curation.filters.gopher import GopherQuality

    g = GopherQuality()
    khmer = ("ព្រះរាជាណាចក្រកម្ពុជា គឺជាប្រទេសមួយនៅអាស៊ីអាគ្នេយ៍ ដែលមានប្រជាជនប្រមាណ ១៦ លាននាក់ និងរាជធានីភ្នំពេញ។ " * 3
             + "ភាសាខ្មែរ គឺជាភាសាផ្លូវការរបស់ប្រទេស ហើយត្រូវបានប្រើក្នុងការអប់រំ និងរដ្ឋបាល។ ") * 4
    assert g.reason(khmer) is not None  # the English rules would drop it
    assert g.reason_in(khmer, "km", "Khmr") is None
    assert g.reason_in("ខ្មែរ\n" * 5, "km", "Khmr") == "short_doc"  # the rules that do not depend on language still hold


def test_toxicity_scores_only_languages_its_model_fits(tmp_path: Path) -> None:
    st = Store(tmp_path / "s.duckdb")
    en_toxic = "You are a stupid idiot and a worthless piece of shit, shut up you moron, nobody wants you here at all."
    af = ("Die Universele Verklaring van Menseregte is aangeneem deur die Verenigde Nasies. Almal is vry en gelyk "
          "gebore in waardigheid en regte. Hulle het rede en gewete en behoort teenoor mekaar in 'n gees van broederskap op te tree.")
    api.ingest(st, write(tmp_path / "c.jsonl", [en_toxic, af]), kind="domain", source="c")
    api.curate(st, Recipe.parse({"name": "t", "steps": [{"type": "language"}, {"type": "toxicity", "mode": "drop"}]}, "t"))
    rows = {r["lang"]: r for r in st.rows("""SELECT s.lang, d.verdict, d.reason, d.score FROM decisions d
                                             JOIN samples s USING (sample_id) WHERE d.step LIKE 'toxicity%'""")}
    assert rows["en"]["verdict"] == "dropped" and rows["en"]["reason"] == "toxic" and rows["en"]["score"] > 0.9
    assert rows["af"] == {"lang": "af", "verdict": "kept", "reason": "unscored", "score": None}
    st.close()


def _near_copy(text: str, rng: random.Random, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        i = rng.randrange(len(chars))
        chars[i] = chars[rng.randrange(len(chars))]
    return "".join(chars)


@pytest.mark.parametrize("lang", ["zh", "ja", "th"])
def test_near_dedup_and_decontamination_without_spaces(lang: str, sentences: dict[str, list[str]], tmp_path: Path) -> None:
    """Character shingles: near-copies in Chinese, Japanese and Thai are found, unrelated texts and
    translations are not; planted benchmark items are found by character n-grams."""
    rng = random.Random(7)
    ss = split(sentences[lang], "eval")  # Japanese has 206 of them: 100 for documents, the rest for planting
    sep = " " if lang == "th" else ""
    originals = [sep.join(ss[i * 10:(i + 1) * 10]) for i in range(10)]
    copies = [_near_copy(t, rng, max(2, len(t) // 100)) for t in originals[:6]]
    translation = " ".join(split(sentences["en"], "eval")[:10])
    st = Store(tmp_path / "s.duckdb")
    api.ingest(st, write(tmp_path / "o.jsonl", originals + [translation]), kind="domain", source="orig")
    api.ingest(st, write(tmp_path / "c.jsonl", copies), kind="domain", source="copy")
    items = [ss[150 + k] for k in range(5)]
    api.ingest(st, write(tmp_path / "e.jsonl", items), kind="eval", source="bench")
    hosts = [sep.join(ss[100 + 5 * k:100 + 5 * k + 5]) for k in range(5)]
    planted = [h[: len(h) // 2] + sep + item + sep + h[len(h) // 2:] for h, item in zip(hosts, items, strict=True)]
    api.ingest(st, write(tmp_path / "p.jsonl", planted + [sep.join(ss[130:136])]), kind="domain", source="planted")
    api.curate(st, Recipe.parse({"name": "t", "steps": [{"type": "language"}, {"type": "decontaminate"},
                                                       {"type": "minhash_dedup"}]}, "t"))
    dropped = Counter((r["source"], r["step"]) for r in st.rows(
        """SELECT s.source, regexp_replace(d.step, '_v[0-9]+$', '') AS step FROM decisions d JOIN samples s USING (sample_id)
           WHERE d.verdict = 'dropped'"""))
    clusters = st.scalar("SELECT count(DISTINCT cluster_id) FROM clusters WHERE method = 'minhash'")
    assert dropped[("copy", "minhash_dedup")] + dropped[("orig", "minhash_dedup")] == 6 == clusters, dropped  # recall 6/6
    assert dropped[("copy", "decontaminate")] == 0
    kept = {r[0] for r in st.execute("""SELECT s.text FROM samples s JOIN sample_status USING (sample_id)
                                        WHERE status = 'kept' AND source = 'orig'""").fetchall()}
    assert all(t in kept for t in originals[6:]) and translation in kept  # unrelated texts and translations stay
    assert dropped[("planted", "decontaminate")] == 5  # every planted item found, the clean host kept
    st.close()


def test_national_phone_formats_and_no_false_names(sentences: dict[str, list[str]]) -> None:
    from mixline.curation.lang.text import WORD
    from mixline.curation.pii.detectors import Detector

    det = Detector(names="lexicon")
    numbers = {"de": "030 12345678", "fr": "01 42 68 53 00", "es": "912 345 678", "it": "06 6982 1234",
               "nl": "020 624 1111", "pl": "22 123 45 67", "sv": "08-123 456 78"}
    for lang, number in numbers.items():
        text = f"{sentences[lang][3]} {number}. {sentences[lang][4]}"
        spans = det.detect([text], [lang])[0]
        assert any(s.entity_type == "PHONE" and text[s.start:s.end].strip() == number for s in spans), (lang, spans)
    # German capitalises every noun: names per 1,000 words stay near English's, not dozens more.
    rates = {}
    for lang in ("de", "en", "nl", "vi", "ms"):
        docs = list(documents(split(sentences[lang], "eval"), seed=1))[:15]
        spans = det.detect(docs, [lang] * len(docs))
        words = sum(len(WORD.findall(d)) for d in docs)
        rates[lang] = 1000 * sum(s.entity_type == "PERSON" for sp in spans for s in sp) / words
    assert rates["de"] <= max(8.0, 1.5 * rates["en"]) and all(r < 15 for r in rates.values()), rates


def test_languages_in_mixes_cards_and_caps(tmp_path: Path, sentences: dict[str, list[str]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from mixline.pipelines.mix import MixRecipe

    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    st = Store(tmp_path / "s.duckdb")
    docs = {lang: list(documents(split(sentences[lang], "eval")))[:6] for lang in ("en", "de", "ja")}
    api.ingest(st, write(tmp_path / "w.jsonl", [d for ds in docs.values() for d in ds]), kind="domain", source="w")
    api.curate(st, Recipe.parse({"name": "t", "steps": [{"type": "language"}]}, "t"))
    mix = api.build_mix(st, MixRecipe.parse({"name": "m", "groups": [{"name": "all"}], "max_docs_per_lang": {"en": 2}}))
    by = {r["key"]: r["docs"] for r in mix.summary["by_lang"]}
    assert by == {"en": 2, "de": 6, "ja": 6}
    capped = api.build_mix(st, MixRecipe.parse({"name": "m2", "groups": [{"name": "de", "where": "lang = 'de'", "docs": 3},
                                                                          {"name": "rest", "where": "lang <> 'de'"}],
                                                "max_docs_per_lang": 4}))
    assert {r["key"]: r["docs"] for r in capped.summary["by_lang"]} == {"en": 4, "de": 3, "ja": 4}
    out = api.export_mix(st, mix.mix_id, tmp_path / "export")
    folder = Path(out.folder)
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Languages" in card and "| ja |" in card and "language:" in card
    croissant = json.loads((folder / "croissant.json").read_text(encoding="utf-8"))
    assert set(croissant["inLanguage"]) == {"en", "de", "ja"}
    assert {x["lang"] for x in croissant["mixline:languages"]} == {"en", "de", "ja"}
    st.close()


def test_ingest_of_every_script_records_and_curates(tmp_path: Path, sentences: dict[str, list[str]]) -> None:
    """One document per language through ingest and the default recipe, in one run: none is lost."""
    st = Store(tmp_path / "s.duckdb")
    texts = [next(documents(split(ss, "eval"), seed=9)) for _, ss in sorted(sentences.items())]
    ingest(st, write(tmp_path / "all.jsonl", texts), IngestOptions(kind="web", source="all"))
    res = api.curate(st)
    assert res.selected == 75 and res.kept >= 72
    assert st.scalar("SELECT count(DISTINCT lang) FROM samples") >= 70
    st.close()
