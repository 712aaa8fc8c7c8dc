"""`mixline classifier`: train, list, show and score learned classifiers."""

from __future__ import annotations

from typing import Any

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit


@cli.group()
def classifier() -> None:
    """Learned quality and domain classifiers, trained on the store's own samples."""


def _metrics_line(m: dict[str, Any]) -> str:
    from mixline.curation.classifier import describe_metrics

    return describe_metrics(m)


@command(classifier, "train")
@click.argument("name")
@click.option("--positive", default=None, metavar="PRED", help="Samples of the class to find, e.g. \"domain = 'medical'\".")
@click.option("--negative", default=None, metavar="PRED", help="Samples it is told apart from, e.g. \"kind = 'web'\".")
@click.option("--labels", default=None, metavar="COLUMN",
              help="Instead: one class per value of this column (domain, source, kind, lang, script).")
@click.option("--where", default=None, metavar="PRED", help="With --labels: the samples to learn from.")
@click.option("--other", default=None, metavar="PRED", help="With --labels: an extra class 'other', e.g. \"kind = 'web'\".")
@click.option("--method", default="ngram", type=click.Choice(["ngram", "embedding"]), show_default=True,
              help="Hashed word n-grams (fastText-like), or a linear head on the cached MiniLM embeddings.")
@click.option("--max-per-class", default=5000, show_default=True, help="Documents per class at most (held out included).")
@click.option("--heldout", default=0.2, show_default=True, help="Share of each class held out for the metrics.")
@click.option("--seed", default=0, show_default=True)
@click.option("-C", "c", default=4.0, show_default=True, help="Inverse regularisation strength of the logistic regression.")
@click.option("--uncurated", is_flag=True, help="Also learn from samples no run has curated (default: kept samples only).")
def classifier_train(ctx: Ctx, as_json: bool, name: str, positive: str | None, negative: str | None,
                     labels: str | None, where: str | None, other: str | None, method: str, max_per_class: int,
                     heldout: float, seed: int, c: float, uncurated: bool) -> None:
    """Train classifier NAME on samples of the store; records it with its training mix and metrics."""
    from mixline.pipelines.classifiers import TrainSpec, train

    spec = TrainSpec(name, positive, negative, labels, where, other, method, max_per_class, seed, heldout, uncurated, c)
    with ctx.open() as st:
        out = train(st, spec)
    if emit(as_json, out):
        return
    counts = ", ".join(f"{k} {v:,}" for k, v in out["metrics"]["n_train"].items())
    click.echo(f"{out['classifier_id']}  {out['name']}@v{out['version']} ({out['method']})"
               + ("" if out["created"] else " (already trained: same data, same parameters)"))
    click.echo(f"  trained on mix {out['mix_id']}: {counts}")
    click.echo(f"  {_metrics_line(out['metrics'])}")


@command(classifier, "list")
def classifier_list(ctx: Ctx, as_json: bool) -> None:
    """Every classifier in the store, newest version last."""
    from mixline.curation.classifier import list_all

    with ctx.open(read_only=True) as st:
        rows = list_all(st)
    if emit(as_json, rows):
        return
    if not rows:
        click.echo("no classifiers; train one with `mixline classifier train NAME --positive PRED --negative PRED`")
    for r in rows:
        click.echo(f"{r['classifier_id']}  {r['name']}@v{r['version']} {r['method']} [{', '.join(r['labels'])}] "
                   f"{r['scored']:,} scored, {r['uses']} uses; {_metrics_line(r['metrics'])}")


@command(classifier, "show")
@click.argument("ref")
def classifier_show(ctx: Ctx, as_json: bool, ref: str) -> None:
    """A classifier (NAME, NAME@vN or id): training data, parameters, metrics, scores, uses."""
    from mixline.curation.classifier import show

    with ctx.open(read_only=True) as st:
        out = show(st, ref)
    if emit(as_json, out):
        return
    click.echo(f"{out['classifier_id']}  {out['name']}@v{out['version']} ({out['method']}), trained by run {out['run_id']}")
    click.echo(f"  labels: {', '.join(out['labels'])}; weights {out['weight_hash']}")
    click.echo(f"  training mix {out['mix_id']}: " + ", ".join(f"{r['split']} {r['docs']:,}" for r in out["training"]))
    p = out["params"]
    what = (f"positive: {p['positive']}; negative: {p['negative']}" if "positive" in p
            else f"labels from {p['labels']}" + (f" where {p['where']}" if p.get("where") else "")
            + (f"; other: {p['other']}" if p.get("other") else ""))
    click.echo(f"  {what}")
    click.echo(f"  {_metrics_line(out['metrics'])}")
    for lab, m in (out["metrics"].get("per_class") or {}).items():
        click.echo(f"    {lab:<16} precision {m['precision']:.3f} recall {m['recall']:.3f} F1 {m['f1']:.3f} (n={m['n']})")
    q = out["score_quantiles"]
    click.echo(f"  scored {out['scored']:,} samples" + (f"; score p10 {q['p10']} p50 {q['p50']} p90 {q['p90']}" if q else ""))
    for u in out["uses"]:
        click.echo(f"  used by {u['kind']} run {u['run_id']}" + (f" step {u['step']}" if u["step"] else "")
                   + (f" for mix {u['mix_id']}" if u["mix_id"] else ""))


@command(classifier, "score")
@click.argument("ref")
@click.option("--where", default=None, metavar="PRED", help="Which samples to score (default: every non-eval sample).")
def classifier_score(ctx: Ctx, as_json: bool, ref: str, where: str | None) -> None:
    """Cache a classifier's scores for samples, for score('NAME') in predicates and mixes."""
    from mixline.curation.classifier import score

    with ctx.open() as st:
        out = score(st, ref, where)
    if emit(as_json, out):
        return
    q = out["score_quantiles"]
    click.echo(f"{out['ref']}: scored {out['scored']:,} new samples in run {out['run_id']}"
               + (f"; over {q['n']:,} scored, p10 {q['p10']} p50 {q['p50']} p90 {q['p90']}" if q else ""))
