# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean native sanitize

# Compiled with mypyc where a C compiler is at hand (setup.py, src/medhub/_native.py); the
# editable install builds them once, `native` again whenever one of these sources changes.
NATIVE_SOURCES := setup.py src/medhub/_native.py src/medhub/ingest/fhir.py src/medhub/privacy/deid/cache.py \
	src/medhub/privacy/deid/dates.py src/medhub/privacy/deid/text.py src/medhub/privacy/deid/fhir_elements.py src/medhub/privacy/deid/fhir.py \
	src/medhub/lake/fhir_rows.py src/medhub/privacy/deid/_fhir_bundle.c

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@ $(VENV)/.native

# The extras add packages only: the compiled modules from the install above stay in place.
$(VENV)/.dev: pyproject.toml $(VENV)/.core
	MEDHUB_COMPILE=0 $(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.bench: pyproject.toml $(VENV)/.dev
	MEDHUB_COMPILE=0 $(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

$(VENV)/.native: $(NATIVE_SOURCES) | $(VENV)/.dev
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

native: $(VENV)/.native

demo: $(VENV)/.core
	$(BIN)/medhub demo

test: $(VENV)/.dev $(VENV)/.native
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench

bench: $(VENV)/.bench $(VENV)/.native
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/views.py
	$(BIN)/python bench/linkage.py
	$(BIN)/python bench/deid.py
	$(BIN)/python bench/fleet.py

# The Bundle pass in C under AddressSanitizer and UBSan: its tests (parity, odd cases, random and
# mutated documents) run through an instrumented build (tests/sanitize_bundle_pass.py).
SANITIZED := build/sanitize/_fhir_bundle.so
sanitize: $(VENV)/.dev
	mkdir -p build/sanitize
	gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -shared -fPIC \
		-DSOURCE_SHA256='"'"$$(sha256sum src/medhub/privacy/deid/_fhir_bundle.c | cut -d' ' -f1)"'"' \
		-I"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
		-DMEDHUB_OPENSSL=1 src/medhub/privacy/deid/_fhir_bundle.c -lcrypto -o $(SANITIZED)
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so):$$(gcc -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(BIN)/python tests/sanitize_bundle_pass.py $(SANITIZED)

clean:
	rm -rf $(VENV) .medhub .medhub-keys .medhub-linkage build
	find src -name '*.so' -delete; rm -f src/medhub/_native_sources.json
