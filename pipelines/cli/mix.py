"""`mixline mix`: build, show, diff, export, verify."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit


@cli.group()
def mix() -> None:
    """Build, inspect, compare, export and verify training mixes."""


@command(mix, "build")
@click.argument("recipe")
@click.option("--snapshot", type=int, default=None,
              help="DuckLake stores: select from the store as of this snapshot (`mix show` gives a mix's); "
                   "the same recipe at a mix's snapshot gives the same mix id.")
def mix_build(ctx: Ctx, as_json: bool, recipe: str, snapshot: int | None) -> None:
    """Build a mix from a recipe (TOML/YAML); prints its content-addressed id."""
    from mixline import api

    rec = api.MixRecipe.from_file(recipe)
    with ctx.open() as st:
        out = api.build_mix(st, rec, snapshot=snapshot).as_dict()
    if emit(as_json, out):
        return
    click.echo(f"{out['mix_id']}  {out['name']}: {out['members']:,} members, {out['tokens']:,} tokens, "
               f"synthetic share {out['synthetic_share']:.3f}, {out['heldout']:,} held out"
               + ("" if out["created"] else " (already built: same recipe, same store state)"))
    for r in out["by_source"]:
        click.echo(f"  {r['key']:<28} {r['docs']:>9,} docs {r['tokens']:>12,} tokens")


@command(mix, "show")
@click.argument("mix_id")
def mix_show(ctx: Ctx, as_json: bool, mix_id: str) -> None:
    """Show a mix: recipe, composition, synthetic share, models trained on it."""
    from mixline import api

    with ctx.open(read_only=True) as st:
        out = api.show_mix(st, mix_id).to_dict()
    if emit(as_json, out):
        return
    click.echo(f"{out['mix_id']}  {out['name']}  built {out['created_at']} by run {out['run_id']}"
               + (f" at snapshot {out['snapshot_id']}" if out.get("snapshot_id") is not None else ""))
    click.echo(f"  {out['members']:,} members, {out['tokens']:,} tokens, synthetic share {out['synthetic_share']:.3f}, {out['heldout']:,} held out")
    for title in ("by_kind", "by_source", "by_domain", "by_lang"):
        rows = out.get(title, [])
        total = sum(int(r["tokens"] or 0) for r in rows) or 1
        label = "by language" if title == "by_lang" else title.replace("_", " ")
        click.echo(f"  {label}: " + ", ".join(f"{r['key']} {r['tokens']:,} ({int(r['tokens'] or 0) / total:.1%})" for r in rows[:20])
                   + (f", and {len(rows) - 20} more" if len(rows) > 20 else ""))
    for m in out["models"]:
        click.echo(f"  trained: model {m['model_id']} ({m['name']})")
    from mixline.curation.classifier import describe_metrics

    for c in out.get("classifiers", []):
        click.echo(f"  shaped by classifier {c['name']}@v{c['version']} ({c['classifier_id']}, {c['method']}, trained on mix "
                   f"{c['trained_on']}; {describe_metrics(c['metrics'])})")
    for c in out.get("trained_classifiers", []):
        click.echo(f"  trained: classifier {c['name']}@v{c['version']} ({c['classifier_id']})")
    sr = out.get("search")
    if sr:
        click.echo(f"  weights from mixture search {sr['search_id']}: {sr['proxies']} proxies, leave-one-out Spearman "
                   f"{sr['spearman_loo']:.2f}, R² {sr['r2_loo']:.2f}; {sr.get('verdict') or ''}")
    can = out.get("canaries") or {}
    if can.get("canaries"):
        click.echo(f"  canaries: {can['canaries']} in {can['copies']} training copies ("
                   + ", ".join(f"{f} {v['canaries']}" for f, v in can["by_format"].items()) + "); an export refuses them "
                   "unless --allow-canaries")


@command(mix, "diff")
@click.argument("a")
@click.argument("b")
def mix_diff(ctx: Ctx, as_json: bool, a: str, b: str) -> None:
    """What changed between two mixes, by source."""
    from mixline import api

    with ctx.open(read_only=True) as st:
        out = api.diff_mixes(st, a, b).to_dict()
    if emit(as_json, out):
        return
    click.echo(f"{out['a']} -> {out['b']}: +{out['added']:,} -{out['removed']:,} samples, tokens {out['tokens']['delta']:+,}")
    for r in out["by_source"]:
        click.echo(f"  {r['source']:<28} +{r['added']:,} -{r['removed']:,} repeats changed {r['repeats_changed']:,}")


@command(mix, "export")
@click.argument("mix_id")
@click.option("--format", "fmt", default="parquet", type=click.Choice(["parquet", "jsonl", "hf"]), show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to write (under the export root).")
@click.option("--allow-canaries", is_flag=True, help="Export a mix that holds canaries (their secrets go with it).")
def mix_export(ctx: Ctx, as_json: bool, mix_id: str, fmt: str, out: Path, allow_canaries: bool) -> None:
    """Export a mix's data with manifest.json and a dataset card."""
    from mixline import api

    with ctx.open(read_only=True) as st:
        r = api.export_mix(st, mix_id, out, fmt, allow_canaries=allow_canaries)
    res = {"mix_id": r.mix_id, "out": r.folder, "format": r.format, "files": r.files, "rows": r.rows}
    if not emit(as_json, res):
        click.echo(f"exported {res['mix_id']} ({res['rows']:,} rows, {fmt}) to {res['out']}")


@command(mix, "verify")
@click.argument("folder", type=click.Path(path_type=Path))
def mix_verify(ctx: Ctx, as_json: bool, folder: Path) -> None:
    """Recompute every hash of an export and report differences (exit 1 if any)."""
    from mixline import api

    res = api.verify_export(folder).to_dict()
    if not emit(as_json, res):
        click.echo(f"{res['mix_id']}: {'OK' if res['ok'] else 'MISMATCH'} ({res['rows_checked']:,} rows checked)")
        for p in res["problems"]:
            click.echo(f"  {p}")
    if not res["ok"]:
        sys.exit(1)


@command(mix, "search")
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", required=True, metavar="PRED", help="Held-out samples whose loss the weights should lower.")
@click.option("--general", required=True, metavar="PRED", help="Held-out general samples whose loss must hold (see --margin).")
@click.option("--proxies", default=16, show_default=True, help="Proxy models, each on its own candidate weights.")
@click.option("--proxy-tokens", default=100_000, show_default=True, help="Train tokens of each proxy's mix.")
@click.option("--margin", default=0.02, show_default=True, help="How much worse (relative) the general loss may be predicted.")
@click.option("--seed", default=0, show_default=True)
@click.option("--n-layer", default=2, show_default=True, help="Proxy depth.")
@click.option("--n-embd", default=64, show_default=True, help="Proxy width.")
@click.option("--eval-docs", default=100, show_default=True)
@click.option("--executor", default="local", type=click.Choice(["local", "ray"]), show_default=True,
              help="ray: train the proxies as Ray tasks.")
@click.option("--workdir", default="search-work", type=click.Path(path_type=Path), show_default=True,
              help="Folder for the proxies' checkpoints.")
def mix_search(ctx: Ctx, as_json: bool, recipe: Path, target: str, general: str, proxies: int, proxy_tokens: int,
               margin: float, seed: int, n_layer: int, n_embd: int, eval_docs: int, executor: str, workdir: Path) -> None:
    """Choose RECIPE's group weights by training proxies on candidate mixes; resumable, and recorded."""
    from mixline.pipelines.mix import MixRecipe
    from mixline.pipelines.search import SearchConfig, search

    cfg = SearchConfig(target=target, general=general, proxies=proxies, proxy_tokens=proxy_tokens, seed=seed, margin=margin,
                       eval_docs=eval_docs, tiny={"n_layer": n_layer, "n_embd": n_embd}, executor=executor)
    with ctx.open() as st:
        out = search(st, MixRecipe.from_file(recipe), cfg, workdir)
    if emit(as_json, out):
        return
    f = out["fit"]["target"]
    click.echo(f"{out['search_id']}: {out['proxies']} proxies of {out['proxy_steps']} steps; fit R² {f['r2_in_sample']:.2f} "
               f"in sample, {f['r2_loo']:.2f} and Spearman {f['spearman_loo']:.2f} on held-out (leave-one-out) proxies")
    if out["reliable"]:
        p = out["predicted"]
        click.echo("  chosen weights: " + ", ".join(f"{g} {w:.3f}" for g, w in zip(out["groups"], out["chosen_weights"], strict=True))
                   + "  (recipe: " + ", ".join(f"{w:.3f}" for w in out["hand_weights"]) + ")")
        click.echo(f"  predicted target {p['target_bpc']:.4f} bits/char vs the recipe's {p['hand_target_bpc']:.4f}: "
                   f"gain {p['gain_bpc']:+.4f} ± {p['gain_sd']:.4f}; general {p['general_bpc']:.4f} vs {p['hand_general_bpc']:.4f}")
        click.echo(f"  mix {out['chosen_mix_id']} built with them; {out['verdict']}")
    else:
        click.echo(f"  {out['verdict']}")
