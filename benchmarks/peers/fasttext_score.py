"""Peer: fastText supervised (word 1-2 grams hashed into 2^20 buckets, as DCLM's quality
filter and datatrove's FastTextClassifierFilter use it); trains on a labelled file, then times
predicting every text. Prints timing and the positive class's probabilities."""

import json
import sys
import time

import fasttext

if __name__ == "__main__":
    train_file, texts_file = sys.argv[1], sys.argv[2]
    texts = [" ".join(t.split()) for t in json.load(open(texts_file))]  # fastText reads one line per text
    t0 = time.perf_counter()
    model = fasttext.train_supervised(train_file, wordNgrams=2, bucket=2**20, dim=64, epoch=5, lr=0.5, thread=1,
                                      minCount=1, verbose=0, seed=0)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels, probs = model.predict(texts, k=2)
    dt = time.perf_counter() - t0
    pos = [dict(zip(ls, ps, strict=True)).get("__label__positive", 0.0) for ls, ps in zip(labels, probs, strict=True)]
    print(json.dumps({"seconds": dt, "train_seconds": train_s, "positive": [float(p) for p in pos]}))
