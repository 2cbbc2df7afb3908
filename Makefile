# guideline-qa: `make run` (set up, ingest the demo corpus, start the app), `make test` (set up, run all tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# faiss flavour: `make setup FAISS=gpu` on a CUDA host installs faiss-gpu instead of faiss-cpu (never both).
FAISS  ?= cpu
EXTRAS := $(FAISS),openai,api,mcp
PORT   ?= 8501
HOST   ?= 127.0.0.1
export HF_HUB_OFFLINE := 1
export RAGAS_DO_NOT_TRACK := true
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup setup-dev lock browser ocr run ingest-demo test test-fast test-slow bench lint clean

setup: $(VENV)/.setup-$(FAISS) ocr

# requirements/lock.txt pins every package (`make lock` regenerates it from a `make setup-dev` environment).
LOCK   := requirements/lock.txt

$(VENV)/.setup-$(FAISS): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, from the local CPU wheel: a bare `torch` would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	@if [ "$(FAISS)" = "gpu" ]; then $(BIN)/pip uninstall --quiet -y faiss-cpu; else $(BIN)/pip uninstall --quiet -y faiss-gpu; fi
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[$(EXTRAS)]'
	touch $@

setup-dev: $(VENV)/.setup-dev-$(FAISS)

$(VENV)/.setup-dev-$(FAISS): $(VENV)/.setup-$(FAISS)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[$(EXTRAS),postgres,cluster,eval,dev]'
	touch $@

# Pin the whole environment again after changing pyproject.toml's dependencies (tests/test_lock.py checks
# that every declared requirement is pinned, and pinned within its declared range).
lock: setup-dev
	$(BIN)/pip install --quiet -e '.[$(EXTRAS),postgres,cluster,eval,dev]'
	$(BIN)/python requirements/lock.py

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; `playwright install` cannot work offline).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and no root: browser tests will be skipped"; fi; fi

# Debian's ocrmypdf and tesseract (English) for `ingest --ocr` and its tests (they skip without them).
OCR_PKGS := ocrmypdf tesseract-ocr tesseract-ocr-eng
OCR_MISSING := ocrmypdf/tesseract not installed: ingest --ocr needs them (sudo apt-get install -y $(OCR_PKGS)); the OCR tests will be skipped
ocr:
	@if ! command -v ocrmypdf >/dev/null || ! tesseract --list-langs 2>/dev/null | grep -qx eng; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(OCR_PKGS) >/dev/null || echo "$(OCR_MISSING)"; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(OCR_PKGS) >/dev/null || echo "$(OCR_MISSING)"; \
	  else echo "$(OCR_MISSING)"; fi; fi

ingest-demo: setup
	$(BIN)/guideline-qa ingest data/

run: ingest-demo
	$(BIN)/guideline-qa serve --host $(HOST) --port $(PORT)

test: setup-dev browser ocr
	$(BIN)/python -m pytest -q -m "not slow"
	$(BIN)/python -m pytest -q -m slow

test-fast: setup-dev
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup-dev
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/query.py

lint: setup-dev
	$(BIN)/ruff check rag ingest ui eval cli tests bench
	$(BIN)/mypy rag ingest

clean:
	rm -rf $(VENV) .gqa .pytest_cache
