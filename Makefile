# Two commands on a fresh machine: `make demo` and `make test`. Both create/refresh .venv.
# The venv is rebuilt only when pyproject.toml changes (stamp file), so a second run installs nothing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_MODELS ?= pop,itemknn,bpr,ease,rp3beta,semantic-attn,longtail
export OPENBLAS_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test install clean lint

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo ">> creating/refreshing $(VENV) (torch CPU build first, then longtail and its extras)"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[serve,finetune,dev,ray]"
	@touch $(STAMP)
	@echo ">> $(VENV) ready"

demo: install
	@echo ">> demo 1/4: datasets longtail can find"
	$(BIN)/longtail datasets
	@echo ">> demo 2/4: inspect the shipped dataset (counts, long-tail curve)"
	$(BIN)/longtail inspect --dataset ml-latest-small --out out/demo
	@echo ">> demo 3/4: evaluate baselines, semantic-attn and the flagship (tuned on valid, scored on test, full catalogue; the flagship's tuning dominates: ~20-35 min on 2 cores)"
	$(BIN)/longtail evaluate --dataset ml-latest-small --models $(DEMO_MODELS) --out out/demo/evaluate
	@echo ">> demo 4/4: train the flagship with the params chosen on valid, then recommend for two users picked by rule (~6 min)"
	$(BIN)/longtail train --out out/demo/artifact --model longtail --params-from out/demo/evaluate/metrics.json
	$(BIN)/longtail recommend --artifact out/demo/artifact --pick head-heavy
	$(BIN)/longtail recommend --artifact out/demo/artifact --pick tail-leaning
	$(BIN)/longtail profile --dataset ml-latest-small --pick tail-leaning --out out/demo
	@echo ">> demo finished: tables above; metrics.json, runs/, qrels.tsv and plots under out/demo/, the artifact in out/demo/artifact"

test: install
	@echo ">> checking the layers (import-linter contracts in pyproject.toml)"
	$(BIN)/lint-imports --no-cache
	@echo ">> running the test suite"
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache
