"""Launching the notebooks: badges, setup cells, Binder files and README agree with pyproject.toml."""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest
from helpers import CONDA_NAMES, ROOT, requirements

sys.path.insert(0, str(ROOT / "scripts"))
import make_badges  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEV_ONLY = {"pytest", "nbval", "ruff"}


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def _first_code_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def _repo() -> tuple[str, str]:
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", PROJECT["urls"]["Repository"])
    assert m, "Repository must be https://github.com/<owner>/<name>"
    return m.group(1), m.group(2)


# --- pyproject.toml ---------------------------------------------------------------------------------------------


def test_pyproject_names_the_repository_once():
    urls = PROJECT["urls"]
    assert urls["Repository"] == urls["Homepage"] == "https://github.com/{}/{}".format(*_repo())
    assert make_badges.repository() == _repo()


def test_ipywidgets_floor_is_the_colab_release_that_is_tested():
    assert "ipywidgets>=7.7.1" in [d.split("#")[0].strip() for d in PROJECT["dependencies"]]
    pins = (ROOT / "scripts" / "colab_constraints.txt").read_text().splitlines()
    assert "ipywidgets==7.7.1" in pins


# --- badges, setup cells and README, as generated -----------------------------------------------------------


def test_make_badges_has_nothing_left_to_do():
    stale = [p.name for p, text in make_badges.expected_files().items() if p.read_text(encoding="utf-8") != text]
    assert not stale, f"out of date (run `make badges`): {stale}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_opens_with_badges_that_launch_itself(path):
    owner, name = _repo()
    first = _notebook(path)["cells"][0]
    assert first["cell_type"] == "markdown"
    links = re.findall(r"\[!\[([^\]]+)\]\(([^)]+)\)\]\(([^)]+)\)", _text(first))
    assert links == [
        ("Open In Colab", "https://colab.research.google.com/assets/colab-badge.svg",
         f"https://colab.research.google.com/github/{owner}/{name}/blob/main/notebooks/{path.name}"),
        ("Launch Binder", "https://mybinder.org/badge_logo.svg",
         f"https://mybinder.org/v2/gh/{owner}/{name}/main?urlpath=lab/tree/notebooks/{path.name}"),
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_setup_cell_stored_without_outputs(path):
    cell = _first_code_cell(_notebook(path))
    assert _text(cell) == make_badges.setup_source(*_repo())
    assert cell["outputs"] == []  # nbval compares outputs: the cell prints nothing where nodeutils is installed
    owner, name = _repo()
    assert f'"git+https://github.com/{owner}/{name}@main"' in _text(cell)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_small_and_stores_no_stderr(path):
    assert path.stat().st_size <= 1_000_000, f"{path.name} is {path.stat().st_size:,} bytes"
    nb = _notebook(path)
    stderr = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
              for out in c["outputs"] if out.get("output_type") == "stream" and out.get("name") == "stderr"]
    assert not stderr, f"{path.name}: cells {stderr} store stderr output"
    unrun = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and c["outputs"] and c["execution_count"] is None]
    assert not unrun, f"{path.name}: cells {unrun} have outputs but no execution count (nbval rejects them)"


def test_readme_launch_links_name_the_repository_and_every_notebook():
    owner, name = _repo()
    readme = (ROOT / "README.md").read_text()
    for url in re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", readme):
        assert url.startswith(f"https://colab.research.google.com/github/{owner}/{name}/blob/main/notebooks/"), url
    for url in re.findall(r"https://mybinder\.org/v2/gh/[^)\s]+", readme):
        assert url.startswith(f"https://mybinder.org/v2/gh/{owner}/{name}/main?urlpath=lab/tree/notebooks"), url
    for url in re.findall(r"git clone (\S+)", readme):
        assert url == f"https://github.com/{owner}/{name}", url
    for url in re.findall(r"https://[^/\s]+\.github\.io/[^)>\s]*", readme):
        assert url == make_badges.pages_url(owner, name), url
    badge_line = readme.split(make_badges.README_START)[1].split(make_badges.README_END)[0]
    assert f"[![Read online]({make_badges.BOOK_BADGE})]({make_badges.pages_url(owner, name)})" in badge_line
    for path in NOTEBOOKS:
        table = readme.split(make_badges.TABLE_START)[1].split(make_badges.TABLE_END)[0]
        row = next(line for line in table.splitlines() if line.startswith(f"| `{path.name}` |"))
        assert f"blob/main/notebooks/{path.name})" in row and f"urlpath=lab/tree/notebooks/{path.name})" in row


def test_book_pages_name_the_repository():
    """The book's pages (moved out of the README) follow pyproject.toml as the README does."""
    owner, name = _repo()
    for page in sorted((ROOT / "docs" / "book").glob("*.md")):
        text = page.read_text()
        for url in re.findall(r"git clone (\S+)", text):
            assert url == f"https://github.com/{owner}/{name}", (page.name, url)
        for url in re.findall(r"https://github\.com/[^/\s]+/[^/\s)]+", text):
            assert url.startswith(("https://github.com/rasbt/", f"https://github.com/{owner}/{name}")), (page.name, url)


# --- make_badges itself ---------------------------------------------------------------------------------------


def _toy_notebook() -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "id": "title", "metadata": {}, "source": ["# Title"]},
        {"cell_type": "code", "id": "a", "execution_count": 1, "metadata": {},
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}], "source": ["print(1)"]},
    ]}


def test_make_badges_is_idempotent_and_leaves_other_cells_alone():
    nb = _toy_notebook()
    once = make_badges.update_notebook(copy.deepcopy(nb), "notebooks/x.ipynb", "someone", "fork")
    twice = make_badges.update_notebook(copy.deepcopy(once), "notebooks/x.ipynb", "someone", "fork")
    assert once == twice
    assert [c.get("id") for c in once["cells"]] == ["launch-badges", "title", "nodeutils-setup", "a"]
    assert once["cells"][1] == nb["cells"][0] and once["cells"][3] == nb["cells"][1]
    setup = once["cells"][2]
    assert setup["execution_count"] is None and setup["outputs"] == []
    assert "git+https://github.com/someone/fork@main" in _text(setup)
    assert "colab.research.google.com/github/someone/fork/blob/main/notebooks/x.ipynb" in _text(once["cells"][0])


def test_make_badges_keeps_a_reexecuted_setup_cell_and_replaces_a_stale_one():
    nb = make_badges.update_notebook(_toy_notebook(), "notebooks/x.ipynb", "o", "r")
    nb["cells"][2]["execution_count"] = 1  # as a re-execution leaves it: a count, no output
    assert make_badges.update_notebook(copy.deepcopy(nb), "notebooks/x.ipynb", "o", "r") == nb
    moved = make_badges.update_notebook(copy.deepcopy(nb), "notebooks/x.ipynb", "o", "moved")
    assert moved["cells"][2]["execution_count"] is None and "github.com/o/moved@main" in _text(moved["cells"][2])
    assert len(moved["cells"]) == 4  # replaced, not added


def test_make_badges_puts_the_setup_cell_first_when_there_is_no_title():
    nb = _toy_notebook()
    del nb["cells"][0]
    out = make_badges.update_notebook(nb, "notebooks/x.ipynb", "o", "r")
    assert [c.get("id") for c in out["cells"]] == ["launch-badges", "nodeutils-setup", "a"]


def test_make_badges_explains_a_repository_url_it_cannot_use(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n[project.urls]\nRepository = "https://gitlab.com/o/r"\n')
    with pytest.raises(make_badges.BadgeError, match="must be a GitHub URL"):
        make_badges.repository(pyproject)
    pyproject.write_text('[project]\nname = "x"\n')
    with pytest.raises(make_badges.BadgeError, match=r"no \[project.urls\] Repository"):
        make_badges.repository(pyproject)


def test_make_badges_asks_for_a_missing_readme_row():
    readme = (ROOT / "README.md").read_text()
    with pytest.raises(make_badges.BadgeError, match="no row for 99_new.ipynb"):
        make_badges.update_readme(readme, [p.name for p in NOTEBOOKS] + ["99_new.ipynb"], "o", "r")


# --- the setup cell's behaviour -------------------------------------------------------------------------------


def _setup_code() -> str:
    return _text(_first_code_cell(_notebook(NOTEBOOKS[0])))


def _hide_nodeutils(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nodeutils" else real(name, *a))


def test_setup_cell_does_nothing_where_nodeutils_is_installed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))  # even on Colab
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("the setup cell ran a command"))
    exec(_setup_code(), {})
    assert capsys.readouterr() == ("", "")


def test_setup_cell_does_nothing_outside_colab(monkeypatch, capsys):
    _hide_nodeutils(monkeypatch)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("the setup cell ran a command"))
    exec(_setup_code(), {})
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("override", [None, "file:///tmp/a-local-clone"])
def test_setup_cell_on_colab_installs_with_a_plain_pip_install(monkeypatch, capsys, override):
    _hide_nodeutils(monkeypatch)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    if override:
        monkeypatch.setenv("NODEUTILS_SOURCE", override)
    else:
        monkeypatch.delenv("NODEUTILS_SOURCE", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append((cmd, check)))
    exec(_setup_code(), {})
    source = override or "git+{}@main".format(PROJECT["urls"]["Repository"])
    assert calls == [([sys.executable, "-m", "pip", "install", "--quiet", source], True)]  # not -e: imports at once
    assert capsys.readouterr().out == f"nodeutils installed from {source}\n"


def test_setup_cell_is_a_few_lines_collapsed_in_the_book():
    source = make_badges.setup_source(*_repo())
    assert len(source.splitlines()) <= 12
    for path in NOTEBOOKS:
        assert "hide-input" in _first_code_cell(_notebook(path))["metadata"].get("tags", []), path.name


def test_colabs_preinstalled_versions_lie_in_our_ranges_so_pip_keeps_them():
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "scripts" / "colab_constraints.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.lower().replace("_", "-")] = version
    for requirement in map(Requirement, PROJECT["dependencies"]):
        if requirement.name.lower() in pins:
            assert requirement.specifier.contains(pins[requirement.name.lower()]), requirement


# --- Binder ---------------------------------------------------------------------------------------------------


def _binder_environment() -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(conda packages, pip packages, channels) of binder/environment.yml: name -> version specifier."""
    conda, pip, channels, section = {}, {}, [], None
    for raw in (ROOT / "binder" / "environment.yml").read_text().splitlines():
        line = raw.split("#")[0].rstrip()
        if not line.strip():
            continue
        if not raw.startswith(" "):
            section = line.rstrip(":")
            continue
        item = line.strip().removeprefix("- ").strip()
        if section == "channels":
            channels.append(item)
        elif section == "dependencies" and item != "pip:":
            name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", item).groups()
            (pip if raw.startswith("      ") else conda)[name.lower()] = spec.replace(" ", "")
    return conda, pip, channels


def test_binder_environment_holds_the_runtime_requirements_and_no_dev_tools():
    conda, pip, channels = _binder_environment()
    assert channels == ["conda-forge"]
    for name, spec in requirements(PROJECT["dependencies"]).items():
        conda_name = CONDA_NAMES.get(name, name)
        found = conda.get(conda_name, pip.get(name))
        assert found is not None, f"{name} is missing from binder/environment.yml"
        assert found == spec, f"{name}: pyproject says {spec!r}, binder/environment.yml {found!r}"
    assert conda.get("jupyterlab") == requirements(PROJECT["optional-dependencies"]["dev"])["jupyterlab"]
    assert not DEV_ONLY & (set(conda) | set(pip)), "test tools make every Binder image bigger: leave them out"
    assert not [p for p in pip if p.startswith((".", "-e", "file:"))], "a local requirement defeats Binder's cache"
    python = conda["python"].lstrip("=")
    assert tuple(map(int, python.split("."))) >= tuple(map(int, PROJECT["requires-python"][2:].split(".")))


def test_binder_postbuild_installs_this_package_without_dependencies():
    post = ROOT / "binder" / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    commands = [line.strip() for line in post.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert "python -m pip install --no-deps ." in commands


def test_binder_is_launched_into_jupyterlab_on_each_notebook():
    owner, name = _repo()
    for path in NOTEBOOKS:
        assert make_badges.binder_url(owner, name, f"notebooks/{path.name}") == (
            f"https://mybinder.org/v2/gh/{owner}/{name}/main?urlpath=lab/tree/notebooks/{path.name}")


# --- make targets and CI ----------------------------------------------------------------------------------------


def test_ci_runs_the_floor_and_colab_rows_after_the_tests():
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    matrix = next(line for line in ci if line.startswith("make test-matrix "))
    assert ci.index("make test") < ci.index(matrix)
    assert {"versions=floor", "versions=colab"} <= set(matrix.split('"')[1].split())
    assert "make test-colab" not in ci, "the versions=colab row already runs the Colab check: do not build it twice"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-colab: \$\(NOX\)\n\t\$\(NOX\) -s versions=colab\n", makefile, flags=re.MULTILINE)
    assert re.search(r"^badges:", makefile, flags=re.MULTILINE)
    noxfile = (ROOT / "noxfile.py").read_text()
    assert "colab_constraints.txt" in noxfile and "scripts/colab_check.py" in noxfile
