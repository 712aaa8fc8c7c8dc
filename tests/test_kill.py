"""SIGKILL at random points: the store stays whole, and a re-run gives what a clean run gives.

Each command is killed MIXLINE_KILL_RUNS times (default 10) at a uniformly random moment
between its start and a little past its clean duration. After each kill, `doctor` finds no
broken invariant, the dead run is marked 'aborted' by the next writer, and running the
command to the end gives the same ids and decisions as a run that was never killed.
benchmarks/bench_reliability.py runs it with more kills per command (BENCH_KILLS).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mixline.store import Store
from mixline.store.doctor import doctor

KILLS = int(os.environ.get("MIXLINE_KILL_RUNS", 10))
pytestmark = pytest.mark.slow


def cli(store: Path, *args: str, cwd: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "mixline.pipelines.cli", "--store", str(store), *args, "--quiet"]


def corpus(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    words = ["the", "data", "model", "curation", "sample", "lineage", "mix", "export", "train", "text", "web", "page", "medical", "legal", "code", "chat"]
    with path.open("w") as fh:
        for i in range(n):
            body = " ".join(rng.choice(words) for _ in range(rng.randint(60, 160)))
            extra = f" Contact jane{i % 50}@example-mail.org or call (555) 123-{i % 10000:04d}." if i % 7 == 0 else ""
            fh.write(json.dumps({"id": i, "text": f"Document {i % 4000}. {body}.{extra}"}) + "\n")
    return path


def prose(realdata: Path, path: Path) -> Path:
    text = (realdata / "prose/tinyshakespeare.txt").read_text()
    paras = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200][:300]
    path.write_text("".join(json.dumps({"text": p}) + "\n" for p in paras))
    return path


def state(store: Path) -> dict[str, object]:
    """What a command wrote, in a form that does not depend on run ids or timing."""
    with Store(store, read_only=True) as st:
        return {
            "samples": sorted(r[0] for r in st.execute("SELECT sample_id FROM samples").fetchall()),
            "decisions": sorted(st.execute("SELECT sample_id, step, verdict, coalesce(reason, '') FROM decisions").fetchall()),
            "edges": sorted(st.execute("SELECT parent_id, child_id, relation FROM edges").fetchall()),
            "mixes": sorted(r[0] for r in st.execute("SELECT mix_id FROM mixes").fetchall()),
            "members": st.scalar("SELECT count(*) FROM mix_members"),
            "models": sorted(r[0] for r in st.execute("SELECT model_id FROM models").fetchall()),
            "generations": sorted(st.execute("SELECT sample_id, model_id FROM generations").fetchall()),
            "evals": sorted(st.execute("SELECT model_id, eval_set, metric, round(value, 6) FROM evals").fetchall()),
        }


def kill_at_random(cmd: list[str], seconds: float, rng: random.Random, cwd: Path) -> float | None:
    """Start cmd, SIGKILL it after a random delay.

    Returns None if it was killed before it ended, else how long it took to end on its own.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    deadline = t0 + rng.uniform(0.05, seconds * 1.1)
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    ended = None if proc.poll() is None else time.monotonic() - t0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return ended


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, realdata: Path) -> Path:
    """A store with two ingested sources, with mix and loop recipes and a tiny model beside it."""
    work = tmp_path_factory.mktemp("kill")
    store = work / "base.duckdb"
    subprocess.run(cli(store, "ingest", str(corpus(work / "a.jsonl", 3000, 1)), "--kind", "web", "--source", "a"), check=True)
    subprocess.run(cli(store, "ingest", str(prose(realdata, work / "prose.jsonl")), "--kind", "domain", "--source", "prose"),
                   check=True)
    (work / "prose.toml").write_text('name = "p"\nstatus = ["kept", "uncurated"]\n[[groups]]\nname = "all"\n'
                                     'where = "source = \'prose\'"\n[holdout]\nfraction = 0.1\n')
    mix = subprocess.run([*cli(store, "mix", "build", str(work / "prose.toml"))[:-1], "--json"], check=True,
                         capture_output=True, text=True)
    (work / "prose_mix").write_text(json.loads(mix.stdout)["mix_id"])
    subprocess.run(cli(store, "model", "init-tiny", (work / "prose_mix").read_text(), "--out", str(work / "init"),
                       "--n-layer", "1", "--n-embd", "64"), check=True)
    (work / "loop.toml").write_text('name = "k"\nreal_where = "source = \'prose\'"\ngenerations = 1\nstrategies = ["replace"]\n'
                                    'samples_per_generation = 20\ntrain_steps = 10\nbatch_size = 4\nseq_len = 64\n'
                                    'eval_docs = 10\nmax_new_tokens = 16\ntiny = { n_layer = 1, n_embd = 64 }\n')
    with Store(store) as st:  # one pseudonym key for every copy, so that scrubbed children compare
        from mixline.curation.pii.scrub import store_key

        store_key(st)
    (work / "mix.toml").write_text('name = "k"\nseed = 3\n[[groups]]\nname = "all"\nwhere = "TRUE"\n[holdout]\nfraction = 0.1\n')
    corpus(work / "b.jsonl", 20000, 2)
    return store


CASES = {
    # name: (commands that prepare the store, the command killed)
    "ingest": ([], ["ingest", "{work}/b.jsonl", "--kind", "web", "--source", "b"]),
    "curate": ([], ["curate"]),
    "mix build": ([["curate"]], ["mix", "build", "{work}/mix.toml"]),
    "mix export": ([["curate"], ["mix", "build", "{work}/mix.toml"]], ["mix", "export", "{mix}", "--out", "{out}"]),
    "model train": ([], ["model", "train", "{work}/init", "{mix}", "--out", "{out}", "--steps", "30", "--batch-size", "4"]),
    "loop": ([], ["loop", "{work}/loop.toml", "--workdir", "{out}"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_killed_command_leaves_a_whole_store_and_reruns_clean(base: Path, tmp_path: Path, case: str) -> None:
    prep, cmd = CASES[case]
    work = base.parent
    start = tmp_path / "start.duckdb"
    shutil.copy(base, start)
    for p in prep:
        subprocess.run(cli(start, *[a.format(work=work) for a in p]), check=True, cwd=tmp_path)
    with Store(start, read_only=True) as st:  # the newest mix: the one prep built, else the prose mix
        mix = st.scalar("SELECT mix_id FROM mixes ORDER BY created_at DESC LIMIT 1")

    def args(out: str) -> list[str]:
        return [a.format(work=work, out=out, mix=mix) for a in cmd]

    with Store(start, read_only=True) as st:
        ok_before = st.scalar("SELECT count(*) FROM runs WHERE status = 'ok'")
    # The clean run: how long it takes, and what it writes.
    clean = tmp_path / "clean.duckdb"
    shutil.copy(start, clean)
    t0 = time.monotonic()
    subprocess.run(cli(clean, *args(str(tmp_path / "clean-out"))), check=True, cwd=tmp_path)
    seconds = time.monotonic() - t0
    want = state(clean)

    rng = random.Random(hash(case) % 1000)
    killed = 0
    for i in range(KILLS):
        store = tmp_path / f"k{i}.duckdb"
        shutil.copy(start, store)
        out = tmp_path / f"out{i}"
        ended = kill_at_random(cli(store, *args(str(out))), seconds, rng, tmp_path)
        if ended is None:
            killed += 1
        else:
            # The clean run was timed while the other test worker loaded the machine; a command
            # that ends sooner shows its real duration, and later kills are drawn within that.
            seconds = min(seconds, ended)
        with Store(store) as st:  # the next writer
            st.mark_aborted()
            report = doctor(st)
            assert report.healthy, (case, i, report.checks)
            assert st.scalar("SELECT count(*) FROM runs WHERE status = 'running'") == 0
        if case == "mix export":
            verified = subprocess.run(cli(store, "mix", "verify", str(out)), cwd=tmp_path, capture_output=True, text=True)
            complete = (out / "manifest.json").exists()
            assert verified.returncode == (0 if complete else 3), verified.stderr
            if not complete:
                shutil.rmtree(out, ignore_errors=True)  # a user deletes a killed export and exports again
        with Store(store, read_only=True) as st:
            committed = st.scalar("SELECT count(*) FROM runs WHERE status = 'ok'") > ok_before
        # A kill after a one-run command's commit leaves it finished: nothing to redo. A loop is
        # many runs, each committed on its own; running it again resumes where it died.
        if case == "loop" or not committed:
            subprocess.run(cli(store, *args(str(out))), check=True, cwd=tmp_path)
        assert state(store) == want, f"{case}: the store after kill {i} and a re-run differs from a clean run"
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} kills landed before {case} ended"
