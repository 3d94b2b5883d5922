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

.PHONY: demo chosen test install clean lint

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo ">> creating/refreshing $(VENV) (torch CPU build first, then longtail and its extras)"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[serve,finetune,dev,ray]"
	@touch $(STAMP)
	@echo ">> $(VENV) ready"

# Params chosen on valid for DEMO_MODELS, shipped with a fingerprint of the grids and settings that
# chose them (tests/eval/test_chosen_params.py fails when they drift): `make chosen` regenerates it.
CHOSEN := src/longtail/datasets/ml-latest-small/chosen.json
# Prints a step's wall time after it: $(call timed,N,command)
timed = t=$$(date +%s); $(2) && echo ">> step $(1) took $$(( $$(date +%s) - t )) s"

demo: install
	@mkdir -p out/demo && date +%s > out/demo/.start
	@echo ">> demo 1/4: datasets longtail can find"
	@$(call timed,1/4,$(BIN)/longtail datasets)
	@echo ">> demo 2/4: inspect the shipped dataset (counts, long-tail curve); encode its items once (cached)"
	@$(call timed,2/4,$(BIN)/longtail inspect --dataset ml-latest-small --out out/demo && \
	  $(BIN)/longtail embed --dataset ml-latest-small)
	@echo ">> demo 3/4: evaluate baselines, semantic-attn and the flagship with the params chosen on valid"
	@echo "   ($(CHOSEN); the grid search itself: make chosen): refit on train+valid, scored on test, full catalogue."
	@echo "   Beside it, on the second core: train the flagship on every positive (the artifact a service serves)"
	@t=$$(date +%s); \
	  ($(BIN)/longtail train --out out/demo/artifact --model longtail --params-from $(CHOSEN) && \
	   echo ">> train took $$(( $$(date +%s) - t )) s (beside evaluate)") > out/demo/train.log 2>&1 & trainer=$$!; \
	  $(BIN)/longtail evaluate --dataset ml-latest-small --models $(DEMO_MODELS) --params-from $(CHOSEN) \
	    --out out/demo/evaluate && echo ">> evaluate took $$(( $$(date +%s) - t )) s"; evaluated=$$?; \
	  wait $$trainer; trained=$$?; cat out/demo/train.log; \
	  echo ">> step 3/4 took $$(( $$(date +%s) - t )) s"; test $$evaluated = 0 && test $$trained = 0
	@echo ">> demo 4/4: recommend for two users picked by rule, then a profile"
	@$(call timed,4/4,$(BIN)/longtail recommend --artifact out/demo/artifact --pick head-heavy && \
	  $(BIN)/longtail recommend --artifact out/demo/artifact --pick tail-leaning && \
	  $(BIN)/longtail profile --dataset ml-latest-small --pick tail-leaning --out out/demo)
	@echo ">> demo finished in $$(( $$(date +%s) - $$(cat out/demo/.start) )) s: tables above; metrics.json, runs/, qrels.tsv and plots under out/demo/, the artifact in out/demo/artifact"

# The full tuning on valid for DEMO_MODELS (~10-15 min on 2 cores: the flagship's parts dominate);
# writes out/chosen/ (metrics.json, runs, plots) and the shipped $(CHOSEN).
chosen: install
	$(BIN)/longtail evaluate --dataset ml-latest-small --models $(DEMO_MODELS) --out out/chosen --write-chosen $(CHOSEN)

test: install
	@echo ">> checking the layers (import-linter contracts in pyproject.toml)"
	$(BIN)/lint-imports --no-cache
	@echo ">> running the test suite"
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache
