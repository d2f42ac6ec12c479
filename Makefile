# Set-up and the two everyday commands. Every target installs what it needs from a clean checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# test modules run in parallel, each module whole in one worker (its shared runs run once)
TEST_WORKERS ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# nothing reports home: library telemetry off (mpsynth turns Ray's usage statistics off itself)
export HF_HUB_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1

.PHONY: demo test lint install clean browser wheel

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and exactly pinned, so nothing later resolves to a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,mauve]'
	# the reference the diversity measures are checked against: without its dependencies, which
	# pin transformers < 5 (tests load its two pure modules by path; pip notes the clash)
	$(BIN)/pip install -q --no-deps diversity==0.3.1 2>&1 | grep -v "^diversity\|resolver" || true
	$(BIN)/python -c "import importlib.util as u; assert u.find_spec('diversity'), 'diversity missing'"
	# compiled once here, not in a first run: umap-learn's functions, the demo's ONNX model
	$(BIN)/mpsynth prepare configs/demo.yaml
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@$(BIN)/mpsynth run configs/demo.yaml

# the report and viewer tests drive headless Chromium (Debian's package); under make test they
# fail, not skip, without it
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/ruff check mpsynth tests jobs benchmarks scripts
	$(BIN)/ruff format --check mpsynth tests jobs benchmarks scripts
	$(BIN)/lint-imports
	MPSYNTH_REQUIRE_BROWSER=1 $(BIN)/pytest -m "not gpu" -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check --fix mpsynth tests jobs benchmarks scripts
	$(BIN)/ruff format mpsynth tests jobs benchmarks scripts

# what cluster.yaml installs on every node (file_mounts copies dist/ there)
wheel: $(STAMP)
	$(BIN)/pip wheel -q --no-deps -w dist .

clean:
	rm -rf $(VENV) runs dist
