"""Export a mix (Parquet, JSONL or a Hugging Face dataset folder) with a manifest and a card,
and verify an export against its manifest.

The manifest lists every member's id and content hash, so `verify` can recompute them
from the exported text alone. Only what a mix holds is exported: curated, scrubbed text.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from mixline.pipelines.mix import describe, resolve_mix
from mixline.store.store import Store, code_version

from mixline.errors import ConfigError, InputError

FORMATS = ("parquet", "jsonl", "hf")


def export_root() -> Path:
    """Exports must land under this folder: $MIXLINE_EXPORT_ROOT, else the working directory."""
    return Path(os.environ.get("MIXLINE_EXPORT_ROOT", os.getcwd())).resolve()


def _check_out(out: Path, mix_id: str) -> Path:
    root = export_root()
    target = out.resolve()
    if target != root and root not in target.parents:
        raise ConfigError(f"--out {out} is outside the export root {root}; export under it, or set MIXLINE_EXPORT_ROOT")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {out} is a file; --out names a folder to create (or an empty one)")
    manifest = target / "manifest.json"
    if manifest.exists():
        other = json.loads(manifest.read_text()).get("mix_id")
        if other != mix_id:
            raise ConfigError(f"--out {out} already holds mix {other}; choose another folder or delete it first")
    elif target.exists() and any(target.iterdir()):
        raise ConfigError(f"--out {out} is not empty and holds no mixline export; choose an empty or new folder")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _write_jsonl(store: Store, sql: str, params: list[Any], path: Path) -> None:
    cur = store.execute(sql, params)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        while chunk := cur.fetchmany(10_000):
            fh.write("".join(r[0] + "\n" for r in chunk))


def export(store: Store, ref: str, out: Path, fmt: str = "parquet", allow_canaries: bool = False) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    mix_id = resolve_mix(store, ref)
    from mixline.store.canaries import mix_canaries

    planted = mix_canaries(store, mix_id)
    if planted["canaries"] and not allow_canaries:
        # A canary's secret is in its copies' text: an export would carry it out of the store.
        raise ConfigError(f"mix {mix_id} holds {planted['canaries']} canaries ({planted['copies']} copies); an export would "
                          "carry their secrets out of the store. Leave them out of the mix (see `mixline canary list`; a group can "
                          "exclude `sample_id IN (SELECT sample_id FROM canary_copies)` and their scrubbed children), or pass "
                          "--allow-canaries to export them knowingly")
    target = _check_out(out, mix_id)
    mix = store.rows("SELECT name, recipe, created_at FROM mixes WHERE mix_id = ?", [mix_id])[0]
    summary = describe(store, mix_id)
    (target / "data").mkdir(exist_ok=True)
    files: dict[str, list[str]] = {}
    for split in ("train", "heldout"):
        if not store.scalar("SELECT count(*) FROM mix_members WHERE mix_id = ? AND split = ?", [mix_id, split]):
            continue
        # Repeats are materialised, so the files are the exact training stream.
        select = """SELECT s.sample_id, s.text, s.messages, s.kind, s.source, s.domain, s.synth_depth, s.content_hash
                    FROM mix_members m JOIN samples s USING (sample_id), range(m.repeats) r(i)
                    WHERE m.mix_id = ? AND m.split = ? ORDER BY s.sample_id, r.i"""
        name = f"data/{split}-00000.{'jsonl' if fmt == 'jsonl' else 'parquet'}"
        # The path is an argument, never SQL text, so no folder name can change the statement.
        if fmt == "jsonl":
            _write_jsonl(store, f"SELECT to_json(t)::VARCHAR FROM ({select}) t", [mix_id, split], target / name)
        else:
            store.con.sql(select, params=[mix_id, split]).write_parquet(str(target / name), compression="zstd")
        files[split] = [name]
    # One JSON object per member, serialised by DuckDB (a third of the time of building
    # Python dicts and dumping them for a large mix).
    members_json = store.scalar("""
        SELECT coalesce(string_agg(to_json({'sample_id': m.sample_id, 'content_hash': s.content_hash, 'repeats': m.repeats,
                                            'split': m.split, 'source': s.source})::VARCHAR, ', ' ORDER BY m.sample_id), '')
        FROM mix_members m JOIN samples s USING (sample_id) WHERE m.mix_id = ?""", [mix_id])
    licenses = store.rows("""SELECT src.name AS source, src.license, count(*) AS docs
                             FROM mix_members m JOIN samples s USING (sample_id) JOIN sources src ON src.source_id = s.source_id
                             WHERE m.mix_id = ? GROUP BY 1, 2 ORDER BY 1""", [mix_id])
    steps = store.rows("""SELECT d.step, count(*) FILTER (WHERE d.verdict = 'kept') AS kept,
                                 count(*) FILTER (WHERE d.verdict = 'dropped') AS dropped
                          FROM decisions d JOIN samples s USING (sample_id) WHERE s.source IN (
                              SELECT DISTINCT s2.source FROM mix_members m JOIN samples s2 USING (sample_id) WHERE m.mix_id = ?)
                          GROUP BY 1 ORDER BY 1""", [mix_id])
    manifest = {
        "mix_id": mix_id, "name": mix["name"], "recipe": json.loads(mix["recipe"]), "format": fmt, "files": files,
        "created_at": str(mix["created_at"]),
        "code_version": code_version(), "counts": {k: summary[k] for k in ("members", "tokens", "heldout", "synthetic_share")},
        "by_source": summary["by_source"], "by_kind": summary["by_kind"], "by_lang": summary["by_lang"], "licenses": licenses,
        "curation_steps": steps,
    }
    head = json.dumps(manifest, default=str, ensure_ascii=False)
    from mixline.pipelines.cards import croissant, dataset_card, rai_facts

    facts = rai_facts(store, mix_id)
    (target / "README.md").write_text(dataset_card(manifest, facts), encoding="utf-8")
    (target / "croissant.json").write_text(json.dumps(croissant(manifest, facts, target), indent=1, default=str))
    # Written last and renamed into place: a killed export has no manifest, so `verify` refuses it.
    partial = target / ".manifest.json.partial"
    partial.write_text(head[:-1] + ', "members": [' + members_json + "]}", encoding="utf-8")
    os.replace(partial, target / "manifest.json")
    if fmt == "hf":
        import datasets

        dd = datasets.DatasetDict({split: datasets.Dataset.from_parquet([str(target / f) for f in fs])
                                   for split, fs in files.items()})
        dd.save_to_disk(str(target / "hf"))
    rows = int(store.scalar("SELECT coalesce(sum(repeats), 0) FROM mix_members WHERE mix_id = ?", [mix_id]))
    return {"mix_id": mix_id, "out": str(target), "format": fmt, "files": files, "rows": rows}


def verify(folder: Path) -> dict[str, Any]:
    """Recompute every content hash of an export and compare with its manifest."""
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise InputError(f"{folder} has no manifest.json; is it a mixline export?")
    try:
        m = json.loads(mpath.read_text())
        expected = {r["sample_id"]: r for r in m["members"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{mpath} is not a complete mixline manifest ({exc.__class__.__name__}); export the mix again") from None
    seen: dict[str, int] = {}
    problems: list[str] = []
    for split, fs in m["files"].items():
        for f in fs:
            path = folder / f
            if not path.is_file():
                problems.append(f"{f}: missing")
                continue
            rows = pq.read_table(path).to_pylist() if f.endswith(".parquet") else [json.loads(x) for x in path.read_text(encoding="utf-8").split("\n") if x.strip()]
            for i, r in enumerate(rows):
                want = expected.get(r["sample_id"])
                got = hashlib.sha256(r["text"].encode("utf-8")).hexdigest()[:32]
                if want is None:
                    problems.append(f"{f} row {i}: sample {r['sample_id']} is not in the manifest")
                elif got != want["content_hash"]:
                    problems.append(f"{f} row {i}: sample {r['sample_id']} text hash {got} != manifest {want['content_hash']}")
                elif want["split"] != split:
                    problems.append(f"{f} row {i}: sample {r['sample_id']} is in {split}, manifest says {want['split']}")
                seen[r["sample_id"]] = seen.get(r["sample_id"], 0) + 1
    for sid, r in expected.items():
        if seen.get(sid, 0) != r["repeats"]:
            problems.append(f"sample {sid}: {seen.get(sid, 0)} rows, manifest says {r['repeats']} repeats")
    h = hashlib.sha256(json.dumps(m["recipe"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    for sid in sorted(expected):
        r = expected[sid]
        h.update(f"{sid}:{r['repeats']}:{r['split']};".encode())
    if "mix-" + h.hexdigest()[:24] != m["mix_id"]:
        problems.append(f"mix id {m['mix_id']} does not match the recipe and members in the manifest")
    return {"mix_id": m["mix_id"], "ok": not problems, "problems": problems[:100], "rows_checked": sum(seen.values())}
