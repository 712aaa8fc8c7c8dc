"""Peer: datatrove's GopherQualityFilter on a JSONL of {id, text}; prints verdicts and timing."""

import json
import sys
import time

from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter

if __name__ == "__main__":
    docs = [json.loads(line) for line in open(sys.argv[1])]
    f = GopherQualityFilter()
    f.filter(Document(text="warm up the tokenizer with a sentence.", id="w"))
    t0 = time.perf_counter()
    verdicts, reasons = {}, {}
    for d in docs:
        r = f.filter(Document(text=d["text"], id=d["id"]))
        verdicts[d["id"]] = bool(r if isinstance(r, bool) else r[0])
        if not isinstance(r, bool):
            reasons[d["id"]] = r[1]
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "verdicts": verdicts, "reasons": reasons}))
