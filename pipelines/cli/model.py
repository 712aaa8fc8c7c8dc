"""`mixline model` and `mixline loop`."""

from __future__ import annotations

from pathlib import Path

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit

from mixline.errors import MixlineError


@cli.group()
def model() -> None:
    """Tiny local models, fine-tuning on mixes, evaluation and generation, all with lineage."""


@command(model, "init-tiny")
@click.argument("mix_id")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the tokenizer and weights.")
@click.option("--vocab-size", default=2048, show_default=True)
@click.option("--n-embd", default=128, show_default=True)
@click.option("--n-layer", default=2, show_default=True)
@click.option("--seed", default=0, show_default=True)
def model_init_tiny(ctx: Ctx, as_json: bool, mix_id: str, out: Path, vocab_size: int, n_embd: int, n_layer: int, seed: int) -> None:
    """Train a byte-level BPE tokenizer on a mix and build a small GPT-2 (no download)."""
    from mixline import api

    with ctx.open() as st:
        res = api.init_tiny(st, mix_id, out, seed=seed, vocab_size=vocab_size, n_embd=n_embd, n_layer=n_layer).to_dict()
    if not emit(as_json, res):
        click.echo(f"{res['model_id']}: {res['parameters']:,} parameters in {res['path']}")


@command(model, "train")
@click.argument("base")
@click.argument("mix_id")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--steps", default=200, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--lr", default=3e-3, show_default=True)
@click.option("--method", default="full", type=click.Choice(["full", "lora"]), show_default=True)
@click.option("--seed", default=0, show_default=True)
def model_train(ctx: Ctx, as_json: bool, base: str, mix_id: str, out: Path, steps: int, batch_size: int, lr: float, method: str, seed: int) -> None:
    """Fine-tune BASE (a model id, a local folder, or a hub name when online) on a mix."""
    from mixline import api

    with ctx.open() as st:
        res = api.train(st, base, mix_id, out, steps=steps, batch_size=batch_size, lr=lr, method=method, seed=seed).to_dict()
    if emit(as_json, res):
        return
    click.echo(f"{res['model_id']}: final loss {res['final_loss']:.3f}, {res['tokens_per_second']:,.0f} tokens/s")
    sc = res["self_consumption"]
    if sc["self_consumed"] or sc["family"]:
        click.echo(f"warning: {sc['self_consumed']:,} training samples were written by this model or its ancestors, and "
                   f"{sc['family']:,} by models of its family ({sc['family_share']:.1%} of {sc['train_samples']:,}); "
                   "they are flagged (see `mixline why`)", err=True)


@command(model, "eval")
@click.argument("model_id")
@click.option("--set", "sets", multiple=True, required=True, help="NAME=PREDICATE over samples, e.g. general=\"source = 'wiki'\".")
@click.option("--max-docs", default=200, show_default=True)
def model_eval(ctx: Ctx, as_json: bool, model_id: str, sets: tuple[str, ...], max_docs: int) -> None:
    """Bits per character on held-out sets, compared with the parent model."""
    from mixline import api

    parsed = {}
    for s in sets:
        if "=" not in s:
            raise MixlineError(f"--set {s!r} must be NAME=PREDICATE")
        k, v = s.split("=", 1)
        parsed[k] = v
    with ctx.open() as st:
        res = api.evaluate(st, model_id, parsed, max_docs).to_dict()
    if emit(as_json, res):
        return
    for name, r in res["sets"].items():
        click.echo(f"{name}: {r['bits_per_char']:.3f} bits/char on {r['docs']} docs" + (f" (parent {r['parent_bits_per_char']:.3f})" if "parent_bits_per_char" in r else ""))


@command(model, "generate")
@click.argument("model_id")
@click.option("--n", default=50, show_default=True)
@click.option("--prompts", "prompts_where", default="kind <> 'eval' AND synth_depth = 0", show_default=True, help="--where predicate for prompt samples.")
@click.option("--temperature", default=1.0, show_default=True)
@click.option("--max-new-tokens", default=48, show_default=True)
@click.option("--seed", default=0, show_default=True)
def model_generate(ctx: Ctx, as_json: bool, model_id: str, n: int, prompts_where: str, temperature: float, max_new_tokens: int, seed: int) -> None:
    """Write N synthetic samples from prompts; each records its model, prompt and decoding."""
    from mixline import api

    with ctx.open() as st:
        res = api.generate(st, model_id, n=n, prompts_where=prompts_where, temperature=temperature,
                           max_new_tokens=max_new_tokens, seed=seed).to_dict()
    if not emit(as_json, res):
        click.echo(f"{res['generated']} samples from {res['model_id']} as source {res['source']} (synthetic depth {res['synth_depth']})")


@command(cli, "loop")
@click.argument("config")
@click.option("--workdir", default="loop-out", show_default=True, type=click.Path(path_type=Path), help="Where checkpoints go.")
def loop_cmd(ctx: Ctx, as_json: bool, config: str, workdir: Path) -> None:
    """Run generations of generate, mix, train, evaluate and drift check; resumes where it stopped."""
    from mixline import api

    with ctx.open() as st:
        rows = api.run_loop(st, config, workdir).generations
    if emit(as_json, rows):
        return
    for r in rows:
        click.echo(f"gen {r['generation']} {r['strategy']:<11} bits/char {r['bits_per_char']:.3f}  drift "
                   f"{'ALERT ' + ','.join(r['moved']) if r['drift_alert'] else ('ok' if r['drift_alert'] is not None else '-')}"
                   f"  model {r['model_id']}  mix {r['mix_id']}" + (f"  [{r['gate']}]" if r.get("gate") else ""))
