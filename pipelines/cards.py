"""What an export says about itself, in the formats the ecosystem reads.

- `README.md`: a Hugging Face dataset card, made with `huggingface_hub`'s `DatasetCard` and
  `DatasetCardData` (licences, configs and tags in the YAML header), with the provenance,
  licences per source, synthetic share, PII handling, curation steps and the mix recipe.
- `croissant.json`: Croissant 1.1 metadata (`mlcroissant` loads it and reads the records),
  with the Responsible AI fields: data collection, preprocessing (the curation steps),
  personal and sensitive information (what was scrubbed and how), biases (toxicity tags),
  and synthetic data in a `mixline:` namespace, where RAI has no field for it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mixline.store.store import Store

CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "mixline": "https://github.com/mixline/mixline/ns#",
    "citeAs": "cr:citeAs", "column": "cr:column", "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format",
    "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
    "samplingRate": "cr:samplingRate", "equivalentProperty": "cr:equivalentProperty",
}
# Columns of every export file, with their Croissant data types.
FIELDS = (("sample_id", "sc:Text"), ("text", "sc:Text"), ("kind", "sc:Text"), ("source", "sc:Text"),
          ("domain", "sc:Text"), ("synth_depth", "sc:Integer"), ("content_hash", "sc:Text"))


def rai_facts(store: Store, mix_id: str) -> dict[str, Any]:
    """What the RAI fields say, from the store: redactions, generators and depths, toxicity tags."""
    members = "SELECT sample_id FROM mix_members WHERE mix_id = ?"
    pii = store.rows(f"""SELECT entity_type, policy, count(*) AS spans, count(DISTINCT sample_id) AS samples
                         FROM redactions WHERE sample_id IN ({members}) GROUP BY 1, 2 ORDER BY 1, 2""", [mix_id])
    # A scrubbed child names its generator through the generated sample it was scrubbed from.
    generators = store.rows(f"""
        WITH m AS ({members}),
             origin AS (SELECT sample_id, sample_id AS src FROM m
                        UNION ALL SELECT e.child_id, e.parent_id FROM edges e JOIN m ON e.child_id = m.sample_id
                        WHERE e.relation = 'scrubbed_from')
        SELECT g.model_id, count(DISTINCT o.sample_id) AS samples FROM origin o JOIN generations g ON g.sample_id = o.src
        GROUP BY 1 ORDER BY 2 DESC, 1""", [mix_id])
    depths = store.rows(f"""SELECT synth_depth AS depth, count(*) AS samples FROM samples WHERE sample_id IN ({members})
                            GROUP BY 1 ORDER BY 1""", [mix_id])
    toxic = store.one(f"""SELECT count(*) FILTER (WHERE reason = 'toxic'), count(*) FROM sample_scores
                          WHERE step = 'toxicity' AND sample_id IN ({members})""", [mix_id])
    from mixline.curation.classifier import mix_classifiers
    from mixline.pipelines.search import for_mix

    return {"pii": pii, "generators": generators, "depths": depths,
            "toxicity": {"tagged_toxic": int(toxic[0] or 0), "scored": int(toxic[1] or 0)},
            "classifiers": mix_classifiers(store, mix_id), "search": for_mix(store, mix_id)}


def _search_md(s: dict[str, Any] | None) -> str:
    if not s:
        return "By hand: the recipe's weights were written, not searched."
    gain = s.get("predicted_gain_bpc")
    return (f"By mixture search `{s['search_id']}` (`mixline mix search`): {s['proxies']} proxy models on candidate weights, "
            f"a fit with leave-one-out Spearman {s['spearman_loo']:.2f} and R² {s['r2_loo']:.2f}; predicted target gain "
            + (f"{gain:+.4f} ± {s['gain_sd']:.4f} bits/char" if gain is not None else "-") + f". {s.get('verdict') or ''}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def croissant(m: dict[str, Any], facts: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Croissant 1.1 JSON-LD for an export folder: one FileObject and one RecordSet per split."""
    parquet = m["format"] != "jsonl"
    distribution, record_sets = [], []
    for split, files in m["files"].items():
        for f in files:
            distribution.append({"@type": "cr:FileObject", "@id": f, "name": f, "contentUrl": f,
                                 "encodingFormat": "application/x-parquet" if parquet else "application/jsonlines",
                                 "sha256": _sha256(folder / f)})
        record_sets.append({
            "@type": "cr:RecordSet", "@id": split, "name": split,
            "description": f"The {split} split, one record per training occurrence (repeats are materialised).",
            "field": [{"@type": "cr:Field", "@id": f"{split}/{name}", "name": name, "dataType": dtype,
                       "source": {"fileObject": {"@id": files[0]}, "extract": {"column": name}}}
                      for name, dtype in FIELDS]})
    licenses = sorted({r["license"] or "unknown" for r in m["licenses"]})
    steps = ", ".join(f"{s['step']} (kept {s['kept']:,}, dropped {s['dropped']:,})" for s in m["curation_steps"]) or "none"
    pii = "; ".join(f"{p['entity_type']}: {p['spans']:,} spans in {p['samples']:,} samples, replaced by {p['policy']}"
                    for p in facts["pii"]) or "no personal data was detected in these samples"
    tox = facts["toxicity"]
    return {
        "@context": CROISSANT_CONTEXT, "@type": "sc:Dataset", "conformsTo": "http://mlcommons.org/croissant/1.1",
        "name": m["name"], "identifier": m["mix_id"],
        "description": f"Training mix {m['mix_id']} built by {m['code_version']}: {m['counts']['members']:,} members, "
                       f"{m['counts']['tokens']:,} training tokens.",
        "url": f"https://github.com/mixline/mixline#{m['mix_id']}", "version": "1.0.0",
        "datePublished": str(m.get("created_at") or "")[:10] or None,
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "citeAs": f"mixline training mix {m['mix_id']}",
        "distribution": distribution, "recordSet": record_sets,
        "rai:dataCollection": "Ingested by mixline from the sources listed under mixline:sources, each record with its "
                              "file, line or offset, url and original id kept in the store's lineage.",
        "rai:dataPreprocessingProtocol": f"Curation steps applied to these sources: {steps}. Only samples that curation "
                                         "kept are in the mix; eval samples never are.",
        "rai:personalSensitiveInformation": f"PII was scrubbed before the mix was built: {pii}. Raw samples with personal "
                                            "data never leave the store; their scrubbed versions are exported instead.",
        "rai:dataBiases": f"Toxicity: {tox['tagged_toxic']:,} of {tox['scored']:,} scored samples are tagged toxic "
                          "(alt-profanity-check); select or drop them with the sample_scores view.",
        "mixline:syntheticShare": m["counts"]["synthetic_share"],
        "mixline:generatorModels": [{"model_id": g["model_id"], "samples": g["samples"]} for g in facts["generators"]],
        "mixline:syntheticDepth": {str(d["depth"]): d["samples"] for d in facts["depths"]},
        "mixline:sources": [{"source": r["key"], "docs": r["docs"], "tokens": r["tokens"]} for r in m["by_source"]],
        "inLanguage": [r["key"] for r in m.get("by_lang", []) if r["key"] not in ("und", "zxx")],
        "mixline:languages": [{"lang": r["key"], "docs": r["docs"], "tokens": r["tokens"],
                               "share": (r["tokens"] or 0) / max(1, m["counts"]["tokens"])} for r in m.get("by_lang", [])],
        "mixline:recipe": m["recipe"],
        "mixline:classifiers": [{"classifier_id": c["classifier_id"], "name": c["name"], "version": c["version"],
                                 "method": c["method"], "trainedOnMix": c["trained_on"], "weightHash": c["weight_hash"],
                                 "heldOutMetrics": c["metrics"]} for c in facts.get("classifiers", [])],
        "mixline:weightsFromSearch": facts.get("search"),
    }


def dataset_card(m: dict[str, Any], facts: dict[str, Any]) -> str:
    """A Hugging Face dataset card (YAML header from DatasetCardData, then the provenance)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    licenses = sorted({(r["license"] or "other").lower() for r in m["licenses"]})
    data = DatasetCardData(
        license=licenses[0] if len(licenses) == 1 else licenses, pretty_name=m["name"],
        language=[r["key"] for r in m.get("by_lang", []) if r["key"] not in ("und", "zxx")] or None,
        tags=["mixline", "training-mix"] + (["synthetic"] if any(d["depth"] for d in facts["depths"]) else []),
        configs=[{"config_name": "default",
                  "data_files": [{"split": s, "path": fs[0]} for s, fs in m["files"].items()]}])
    table = lambda head, rows: "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]  # noqa: E731
                                         + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])
    pii = table(("entity", "policy", "spans", "samples"),
                [(p["entity_type"], p["policy"], f"{p['spans']:,}", f"{p['samples']:,}") for p in facts["pii"]]) \
        if facts["pii"] else "No personal data was detected in these samples."
    from mixline.curation.classifier import describe_metrics

    clfs = table(("classifier", "id", "method", "trained on mix", "metrics"),
                 [(f"{c['name']}@v{c['version']}", f"`{c['classifier_id']}`", c["method"], f"`{c['trained_on']}`",
                   describe_metrics(c["metrics"])) for c in facts.get("classifiers", [])]) \
        if facts.get("classifiers") else "None: the mix was drawn without learned scores."
    gens = table(("generator model", "samples"), [(g["model_id"], f"{g['samples']:,}") for g in facts["generators"]]) \
        if facts["generators"] else "No member was written by a model."
    body = f"""# {m['name']}

Training mix `{m['mix_id']}`, built by {m['code_version']}. The id is the hash of the
resolved recipe and the sorted member ids, repeats and splits: `mixline mix verify` on
this folder recomputes every content hash listed in `manifest.json`. `croissant.json`
describes the same files in Croissant 1.1, with the Responsible AI fields.

- members: {m['counts']['members']:,} (held out: {m['counts']['heldout']:,})
- tokens (train, with repeats): {m['counts']['tokens']:,}
- synthetic share of train tokens: {m['counts']['synthetic_share']:.3f}

## Provenance by source

{table(("source", "docs", "tokens"), [(r["key"], f"{r['docs']:,}", f"{r['tokens']:,}") for r in m["by_source"]])}

## Languages

Identified per sample by the `language` curation step (ISO 639-1/3; `und`: not identified,
`zxx`: code or no linguistic content); shares of train tokens.

{table(("language", "docs", "tokens", "share"), [(r["key"], f"{r['docs']:,}", f"{r['tokens']:,}", f"{(r['tokens'] or 0) / max(1, m['counts']['tokens']):.1%}") for r in m.get("by_lang", [])]) if m.get("by_lang") else "Not identified."}

## Licences

{table(("source", "licence", "docs"), [(r["source"], r["license"] or "unknown", f"{r['docs']:,}") for r in m["licenses"]])}

## Personal data

Scrubbed before the mix was built; raw samples with personal data are replaced by their
scrubbed versions and never exported.

{pii}

## Synthetic data

{gens}

Depth (generations of model output between a sample and human text):
{", ".join(f"{d['depth']}: {d['samples']:,}" for d in facts["depths"]) or "none"}

## Toxicity

{facts["toxicity"]["tagged_toxic"]:,} of {facts["toxicity"]["scored"]:,} scored samples are tagged toxic.

## Learned classifiers

Classifiers whose scores chose or ranked members of this mix (`rank_by`, `score()` or
`label()` in the recipe); each was trained in the store on the mix it names.

{clfs}

## How the weights were chosen

{_search_md(facts.get("search"))}

## Curation steps applied to these sources

{table(("step", "kept", "dropped"), [(s["step"], f"{s['kept']:,}", f"{s['dropped']:,}") for s in m["curation_steps"]]) if m["curation_steps"] else "None."}

Only samples that curation kept are included. Eval samples never enter a mix.

## Mix recipe

```json
{json.dumps(m["recipe"], indent=1, sort_keys=True, default=str)}
```
"""
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))
