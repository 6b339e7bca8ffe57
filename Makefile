# Two commands: `make demo` (install + a search on digits) and `make test` (install + the suite).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SDDARTS := $(VENV)/bin/sddarts
PORT ?= 5000

# Exact pins; pyproject.toml declares ranges. torch/torchvision come from this machine's disk.
PINS := torch==2.14.1 torchvision==0.29.1
STACK := "ray[default,tune,train]==2.60.0" optuna==5.0.0 "mlflow[auth]==3.17.2" \
	onnx==1.23.2 onnxscript==0.7.2 onnxruntime==1.32.0 nats_bench==1.8

.PHONY: install demo test check ui clean browser graphviz

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=75" wheel
	$(PY) -m pip install -q $(PINS)
	$(PY) -m pip install -q $(STACK)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP) graphviz

# Debian's graphviz draws the cell pictures as DARTS does (without it they fall back to matplotlib).
graphviz:
	@command -v dot >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || echo "graphviz not installed: cell pictures fall back to matplotlib"; }

demo: install
	$(SDDARTS) search --preset digits-demo
	@echo; echo "next: source $(VENV)/bin/activate, then sddarts runs (see the README's quick start)"

# Debian's chromium for the browser test of the MLflow UI (skipped where it cannot be installed).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the browser test will be skipped"; }

test: install browser
	RAY_AUTH_MODE=disabled $(PY) -m pytest -q tests

# The tests that start no Ray (a few minutes): the loop while coding. `make test` runs them all.
check: install
	RAY_AUTH_MODE=disabled $(PY) -m pytest -q -m "not ray" tests

ui: install
	$(SDDARTS) ui --port $(PORT)

clean:
	rm -rf sddarts_runs mlartifacts mlflow.db
