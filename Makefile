# finsta-pl: one command each for install, train, test and bench.  Every target installs first when .venv
# is missing or older than setup.cfg / pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TASK   ?= videoqa
ARGS   ?=
PYTEST_ARGS ?=
QUICK  ?=
SIZE   ?= small
TASKS  := $(sort $(basename $(notdir $(wildcard experiments/*.yaml))))

.PHONY: install train test test-slow bench bench-fresh-clone reproduce clean help

help:
	@echo "make train TASK=<$(TASKS)>  |  make test  |  make test-slow  |  make bench [QUICK=1]  |  make install"

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# torch first: a CPU wheel here; a plain `torch` requirement would pull a multi-GB CUDA build.  torchvision
	@# is pinned to torch's partner release so the `detect` extra cannot move torch (compat/torchvision.py).
	$(PY) -m pip install --quiet torch==2.13.0 torchvision==0.28.0
	$(PY) -m pip install --quiet -e ".[dev]"
	@# torch-scatter compiles against the installed torch, so it needs torch in its build environment.
	$(PY) -c "import torch_scatter" 2>/dev/null || $(PY) -m pip install --quiet --no-build-isolation "torch-scatter>=2.1"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	@test -f experiments/$(TASK).yaml || { echo "make train: unknown task '$(TASK)' (no experiments/$(TASK).yaml); choose one of: $(TASKS)" >&2; exit 2; }
	$(VENV)/bin/finsta-pl fit --config experiments/$(TASK).yaml $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# Full run: BENCHMARKS.md + benchmarks/plots (16 min on 2 cores).  QUICK=1: a reduced run (under 3 min) written to
# runs/bench-quick/ so the committed report is left alone.
bench: $(STAMP)
	$(PY) -m benchmarks $(if $(QUICK),--quick)

# Host only / host + Finsta / post-trained host per task, label-free arms, controls, ablations and studies over seeds.  SIZE=full (67 min
# on 2 cores) writes RESULTS.md and results/*.png; SIZE=small (under 10 min) runs/reproduce/small/RESULTS.md;
# SIZE=label_free (62 min) the label-free study into runs/reproduce/label_free/RESULTS.md.
reproduce: $(STAMP)
	$(VENV)/bin/finsta-pl reproduce --size $(SIZE) $(ARGS)

# Clone, install and fit one step from nothing, timed (benchmarks/results/fresh_clone.json, read by make bench).
bench-fresh-clone:
	$(PYTHON) -m benchmarks.fresh_clone --repo "$(CURDIR)"

clean:
	rm -rf $(VENV) runs build *.egg-info
