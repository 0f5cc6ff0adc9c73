# The README's two commands: `make demo` (the main job) and `make test`.
# Each creates .venv and installs everything on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first, on its own line, so that fairseq's build and pip's resolver
# use it instead of pulling another build. This machine has a CPU wheel of 2.13.0.
# GPU users: make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.xlsr-installed
RESULTS ?= results
DEMO_ARGS ?=
PYTEST_ARGS ?=
# make bench SCALE_ARGS=--quick: the corpus-scale benchmark on 100k utterances (~15 s) instead of 1 M + 4 M
SCALE_ARGS ?=
# the speed benchmarks against transformers / pyctcdecode (issue 15): quick by default;
# the measured runs in benchmarks/BENCHMARKS.md give their own arguments
STEP_ARGS ?= --quick
INFER_ARGS ?= --quick
DECODER_ARGS ?= --quick

.PHONY: install test demo demo-quick bench check-hf-script clean

install: $(STAMP)

$(STAMP): setup.py Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q numpy cython "setuptools>=64" wheel
	@# fairseq-fixed is an sdist that compiles C++/Cython against torch (~7 min on
	@# 2 cores, cached by pip afterwards); no build isolation so it builds against the
	@# torch above instead of downloading a CUDA torch into a throw-away build env.
	$(BIN)/python -m pip install --no-build-isolation -e ".[all]"
	@# fairseq-fixed pulls torchaudio, whose native library does not load beside
	@# torch 2.13 and breaks `import transformers`; nothing here needs it.
	$(BIN)/python -m pip uninstall -y -q torchaudio
	$(BIN)/python -c "import fairseq, transformers, lhotse, xlsr_plugin; print('fairseq', fairseq.__version__, 'ready')"
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest tests -q -ra --durations=15 $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/xlsr-demo --out $(RESULTS) $(DEMO_ARGS)

demo-quick: $(STAMP)
	$(BIN)/xlsr-demo --out $(RESULTS)-quick --quick $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pretraining.py
	$(BIN)/python benchmarks/bench_manifests.py
	$(BIN)/python benchmarks/bench_scale.py $(SCALE_ARGS)
	$(BIN)/python benchmarks/bench_epoch_plan.py
	$(BIN)/python benchmarks/bench_language_batches.py
	$(BIN)/python benchmarks/bench_worker_memory.py
	$(BIN)/python benchmarks/bench_extract.py plan --lines 100000 1000000
	$(BIN)/python benchmarks/bench_lhotse.py --cuts 100000 1000000
	$(BIN)/python benchmarks/bench_startup_load.py --lines 100000 --workers 8 --updates 5 --repeats 2
	$(BIN)/python benchmarks/bench_step.py $(STEP_ARGS)
	$(BIN)/python benchmarks/bench_infer.py $(INFER_ARGS)
	$(BIN)/python benchmarks/bench_decoder.py --skip-missing $(DECODER_ARGS)

# transformers' own fairseq -> Hugging Face script reads checkpoints made here (tests/plugin/test_hf.py).
# transformers 5 no longer ships it: this takes it from the 4.46.3 wheel (a download from PyPI).
HF_SCRIPT_DIR ?= /tmp/xlsr-hf-script
check-hf-script: $(STAMP)
	$(BIN)/python -m pip download -q transformers==4.46.3 --no-deps -d $(HF_SCRIPT_DIR)
	cd $(HF_SCRIPT_DIR) && $(CURDIR)/$(BIN)/python -m zipfile -e transformers-4.46.3-py3-none-any.whl wheel
	XLSR_HF_CONVERT_SCRIPT=$(HF_SCRIPT_DIR)/wheel/transformers/models/wav2vec2/convert_wav2vec2_original_pytorch_checkpoint_to_pytorch.py \
	  $(BIN)/python -m pytest tests/plugin/test_hf.py -q -k conversion_script -rs

clean:
	rm -rf $(VENV) build *.egg-info
