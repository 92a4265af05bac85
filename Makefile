# Every set-up step lives here so that a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_PIN := torch==2.13.0

.PHONY: install browser demo test lint bench clean mutation pretrained

# TORCH_INDEX: an extra index for torch, e.g. https://download.pytorch.org/whl/cpu on a machine
# whose pip would otherwise fetch the CUDA build (several GB): its 2.13.0+cpu outranks PyPI's
# 2.13.0, and torch's own dependencies still resolve from the usual index.
TORCH_INDEX ?=

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, at the pinned version (CPU or CUDA build: whichever pip finds; see TORCH_INDEX)
	$(PIP) install --quiet -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) $(TORCH_PIN)
	# then the project, every package at the version in constraints.txt
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Headless Chromium + its driver for the viewer's browser test (tests/test_viewer_browser.py, which
# is skipped without them): Debian's packages, installed only where apt-get exists and they are
# missing; a failed install leaves the test skipped rather than failing the build.
browser:
	@if command -v apt-get >/dev/null && ! { command -v chromium && command -v chromedriver; } >/dev/null; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
		|| echo "could not install chromium/chromium-driver: the browser test will be skipped"; \
	fi

demo: install
	$(PY) -m gqn demo --out runs/demo

test: install
	$(PY) -m pytest -q -n 2 tests

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) benchmarks/run_all.py

# The shipped weights gqn/pretrained/$(PRETRAINED_NAME).pt (docs/pretrained.md): the demo's recipe
# (configs/demo.yaml, its data) continued to PRETRAINED_STEPS steps; resumable (rerun to continue).
# sm-32-pixels is the demo's model; `make pretrained PRETRAINED_NAME=sm-32-projective
# PRETRAINED_SET="model.pixel_channels=0 model.num_depths=16 optim.lr_steps=4000"` remakes the
# projective GQN without the pixels, and `PRETRAINED_NAME=sm-32 PRETRAINED_SET="model.name=gqn
# optim.sigma_steps=2700 optim.lr_steps=4000"` the paper's r (docs/pretrained.md).
PRETRAINED_NAME ?= sm-32-pixels
PRETRAINED_SET ?=
PRETRAINED_STEPS ?= 8000
PRETRAINED := runs/pretrained-$(PRETRAINED_NAME)
pretrained: install
	$(PY) -m gqn data generate shepard-metzler $(PRETRAINED)/data --image-size 32 --views 15 \
		--scenes 2000 --seed 0
	$(PY) -m gqn train $(if $(wildcard $(PRETRAINED)/run/checkpoints/*.pt),--resume --out $(PRETRAINED)/run,--config configs/demo.yaml $(PRETRAINED_SET)) \
		data.path=$(PRETRAINED)/data out_dir=$(PRETRAINED)/run optim.max_steps=$(PRETRAINED_STEPS)
	$(PY) -m gqn export $(PRETRAINED)/run gqn/pretrained/$(PRETRAINED_NAME).pt
	$(PY) -m gqn eval pretrained:$(PRETRAINED_NAME) --data $(PRETRAINED)/data --out $(PRETRAINED)/eval

clean:
	rm -rf $(VENV) runs .pytest_cache mutants

# Mutation testing of the model and loss code ([tool.mutmut] in pyproject.toml, docs/testing.md):
# 2 workers; `mutmut results` lists the survivors, `mutmut show NAME` shows one.
mutation: install
	rm -rf mutants
	PYTHONPATH=$(CURDIR) OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children 2
