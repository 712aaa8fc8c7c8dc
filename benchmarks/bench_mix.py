"""Mix build over 1M samples, Parquet export throughput, and peak memory, in fresh processes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PEAK_RSS, WORK, machine, table, timed  # noqa: E402

N = int(float(sys.argv[1]) * 1_000_000) if len(sys.argv) > 1 else 1_000_000

BUILD_STORE = """
from mixline.store import Store
st = Store('{path}')
st.execute('''INSERT INTO runs VALUES ('r0', 'ingest', 'bench', 1, '{{}}', 'h', 't', NULL, '2026-01-01', '2026-01-01', 'ok', NULL, NULL),
                                     ('c0', 'curate', 'bench', 1, '{{}}', 'h', 't', NULL, '2026-01-02', '2026-01-02', 'ok', NULL, NULL)''')
st.execute('''INSERT INTO sample_rows (sample_id, source_id, source, kind, text, content_hash, domain, n_chars, synth_depth, created_run_id)
    SELECT substr(md5(i::VARCHAR), 1, 32), 's', ['crawl', 'medquad', 'oasst', 'gen1'][i % 4 + 1],
           ['web', 'domain', 'conversation', 'synthetic'][i % 4 + 1],
           repeat('Real text goes here, about a paragraph long. ', 10 + i % 20) || i::VARCHAR,
           substr(md5(i::VARCHAR), 1, 32), CASE WHEN i % 4 = 1 THEN 'medical' END,
           0, CASE WHEN i % 4 = 3 THEN 1 ELSE 0 END, 'r0' FROM range({n}) t(i)''')
st.execute("UPDATE samples SET n_chars = length(text)")
st.execute("INSERT INTO decisions SELECT 'c0', sample_id, 'length_v1', 'kept', NULL, NULL FROM samples")
st.close()
"""

BUILD_MIX = PEAK_RSS + """
import json, time
from mixline.store import Store
from mixline.pipelines.mix import MixRecipe, build
st = Store('{path}')
r = MixRecipe.parse({{'name': 'bench', 'seed': 1, 'total_tokens': {tokens}, 'max_synthetic_share': 0.3, 'groups': [
    {{'name': 'web', 'where': "kind = 'web'", 'weight': 0.4}},
    {{'name': 'med', 'where': "domain = 'medical'", 'weight': 0.3}},
    {{'name': 'chat', 'where': "kind = 'conversation'", 'weight': 0.1}},
    {{'name': 'syn', 'where': "kind = 'synthetic'", 'weight': 0.2}}]}})
t0 = time.perf_counter()
res = build(st, r)
print(json.dumps({{'inner_s': time.perf_counter() - t0, 'peak_mb': _peak(), 'mix_id': res.mix_id, 'members': res.summary['members']}}))
"""

EXPORT = PEAK_RSS + """
import json, os, time
from pathlib import Path
from mixline.store import Store
from mixline.pipelines.export import export
os.environ['MIXLINE_EXPORT_ROOT'] = '{root}'
st = Store('{path}', read_only=True)
t0 = time.perf_counter()
res = export(st, '{mix_id}', Path('{out}'), 'parquet')
dt = time.perf_counter() - t0
size = sum(f.stat().st_size for f in Path('{out}').rglob('*.parquet'))
text = st.scalar("SELECT sum(length(s.text) * m.repeats) FROM mix_members m JOIN samples s USING (sample_id) WHERE m.mix_id = '{mix_id}'")
print(json.dumps({{'inner_s': dt, 'peak_mb': _peak(), 'rows': res['rows'], 'parquet_mb': size / 2**20, 'text_mb': text / 2**20}}))
"""


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"mix_{N}.duckdb"
    if not path.exists():
        timed(BUILD_STORE.format(path=path, n=N))
    tokens = int(N * 0.6 * 120)
    b = timed(BUILD_MIX.format(path=path, tokens=tokens))
    out = WORK / "mix_export"
    shutil.rmtree(out, ignore_errors=True)
    e = timed(EXPORT.format(path=path, mix_id=b["mix_id"], out=out, root=WORK))
    rows = [
        {"task": f"mix build over {N:,} samples (4 weighted groups, token budget)", "seconds": b["inner_s"], "peak RSS MB": b["peak_mb"], "throughput": f"{b['members']:,} members"},
        {"task": "export to Parquet (zstd), manifest and card", "seconds": e["inner_s"], "peak RSS MB": e["peak_mb"],
         "throughput": f"{e['text_mb'] / e['inner_s']:.0f} MB/s of text ({e['rows']:,} rows, {e['parquet_mb']:.0f} MB on disk)"},
    ]
    print(f"## Mixes ({machine()})\n")
    print(table(rows))
    print("\nTargets: build <= 10 s, export >= 100 MB/s, peak memory < 2 GB.")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
