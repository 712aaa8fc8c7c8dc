"""Peers: datasketch (MinHash.bulk + MinHashLSH) and a rensa pipeline, end to end."""

import json
import re
import sys
import time

import numpy as np

WORD = re.compile(r"\w+")


def shingles(text, k=5):
    w = WORD.findall(text.lower())
    return {" ".join(w[i:i + k]) for i in range(max(1, len(w) - k + 1))}


def components(n, pairs):
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(n)]


def removed_ids(ids, labels):
    first = {}
    out = []
    for i, lab in enumerate(labels):
        if lab in first:
            out.append(ids[i])
        else:
            first[lab] = i
    return out


def run_datasketch(ids, texts):
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    sets = [[s.encode() for s in shingles(t)] for t in texts]
    mhs = MinHash.bulk(sets, num_perm=112)
    lsh = MinHashLSH(num_perm=112, params=(14, 8))
    pairs = []
    for i, m in enumerate(mhs):
        for j in lsh.query(m):
            pairs.append((int(j), i))
        lsh.insert(str(i), m)
    pairs = [(int(a), b) for a, b in pairs]
    labels = components(len(ids), pairs)
    return time.perf_counter() - t0, removed_ids(ids, labels)


def run_rensa(ids, texts):
    from rensa import RMinHash

    t0 = time.perf_counter()
    sigs = []
    for t in texts:
        m = RMinHash(num_perm=112, seed=42)
        m.update(list(shingles(t)))
        sigs.append(np.asarray(m.digest(), dtype=np.uint64))
    sig = np.stack(sigs).reshape(len(texts), 14, 8)
    pairs = []
    for b in range(14):
        buckets = {}
        for i in range(len(texts)):
            buckets.setdefault(sig[i, b].tobytes(), []).append(i)
        for members in buckets.values():
            pairs.extend((members[0], m) for m in members[1:])
    labels = components(len(ids), pairs)
    return time.perf_counter() - t0, removed_ids(ids, labels)


if __name__ == "__main__":
    docs = [json.loads(line) for line in open(sys.argv[2])]
    ids = [d["id"] for d in docs]
    texts = [d["text"] for d in docs]
    fn = run_datasketch if sys.argv[1] == "datasketch" else run_rensa
    dt, removed = fn(ids, texts)
    print(json.dumps({"seconds": dt, "removed": removed}))
