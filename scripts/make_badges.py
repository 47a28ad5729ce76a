"""Write the launch badges and each notebook's setup cell from the repository URL in pyproject.toml.

    python scripts/make_badges.py           # update README.md and notebooks/*.ipynb in place
    python scripts/make_badges.py --check   # change nothing; exit 1 and name the files that are out of date

The repository URL lives in one place, ``[project.urls] Repository`` in ``pyproject.toml``; a fork changes that line
and runs ``make badges``. What this writes:

* in each notebook, a first markdown cell with "Open in Colab" and "Launch Binder" badges, and a setup cell (the
  first code cell, right after the notebook's title) that installs nodeutils on Colab and does nothing elsewhere,
  tagged ``hide-input`` so that the book (MyST-NB) shows it collapsed;
* in README.md, the badge line under the title (with the "Read online" badge for the book on GitHub Pages) and the
  "launch" column of the notebook table.

The book (``make site``, scripts/build_site.py) builds each chapter's launch buttons with the same functions.

Running it again changes nothing. Other cells keep their sources, outputs and execution counts; the setup cell is
stored without outputs, and keeps its execution count only while its source is unchanged.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = "notebooks"
BRANCH = "main"  # the branch the badges open and the setup cell installs from

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
BOOK_BADGE = "https://img.shields.io/badge/read-online-blue"
BADGE_CELL_ID = "launch-badges"
SETUP_CELL_ID = "nodeutils-setup"
SETUP_MARK = "# Setup: "  # the setup cell's first line starts with this
SETUP_TAGS = ["hide-input"]  # the book (MyST-NB) shows the setup cell collapsed
SOURCE_VARIABLE = "NODEUTILS_SOURCE"

README_START, README_END = "<!-- launch badges (make badges) -->", "<!-- end of launch badges -->"
TABLE_START, TABLE_END = "<!-- notebook table (make badges) -->", "<!-- end of notebook table -->"
TABLE_HEADER = "| notebook | what it teaches | launch |\n| --- | --- | --- |"


class BadgeError(ValueError):
    """pyproject.toml, README.md or a notebook is not in the shape this script expects."""


def repository(pyproject: Path = ROOT / "pyproject.toml") -> tuple[str, str]:
    """(owner, name) of the GitHub repository named by ``[project.urls] Repository``."""
    urls = tomllib.loads(pyproject.read_text())["project"].get("urls", {})
    url = urls.get("Repository")
    if not url:
        raise BadgeError(f"{pyproject.name} has no [project.urls] Repository: add "
                         'Repository = "https://github.com/<owner>/<name>"')
    m = re.fullmatch(r"https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?", url)
    if not m:
        raise BadgeError(f"[project.urls] Repository must be a GitHub URL https://github.com/<owner>/<name>, "
                         f"got {url!r} (Colab and Binder launch notebooks from GitHub)")
    return m.group(1), m.group(2)


def repository_url(owner: str, name: str) -> str:
    return f"https://github.com/{owner}/{name}"


def source_url(owner: str, name: str, path: str) -> str:
    """The file at ``path`` (relative to the repository root) on GitHub, on the branch the badges open."""
    return f"{repository_url(owner, name)}/blob/{BRANCH}/{path}"


def pages_url(owner: str, name: str) -> str:
    """Where GitHub Pages publishes the book (.github/workflows/pages.yml): the project site of the repository."""
    return f"https://{owner.lower()}.github.io/{name}/"


def colab_url(owner: str, name: str, path: str) -> str:
    """Colab opens the notebook at ``path`` (relative to the repository root) straight from GitHub."""
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{BRANCH}/{path}"


def binder_url(owner: str, name: str, path: str) -> str:
    """Binder builds the repository and opens JupyterLab on ``path`` (a notebook or a folder)."""
    return f"https://mybinder.org/v2/gh/{owner}/{name}/{BRANCH}?urlpath=lab/tree/{path}"


def badges(owner: str, name: str, path: str, binder_path: str | None = None) -> str:
    """The two badges as one line of markdown."""
    return (f"[![Open In Colab]({COLAB_BADGE})]({colab_url(owner, name, path)}) "
            f"[![Launch Binder]({BINDER_BADGE})]({binder_url(owner, name, binder_path or path)})")


def install_source(owner: str, name: str) -> str:
    """The pip requirement the setup cell installs on Colab unless ``NODEUTILS_SOURCE`` says otherwise."""
    return f"git+{repository_url(owner, name)}@{BRANCH}"


def setup_source(owner: str, name: str) -> str:
    """The setup cell: a no-op where nodeutils imports; on Colab, a plain pip install of nodeutils.

    No constraints are needed to keep Colab's own torch, torchvision, matplotlib and ipywidgets: pip leaves an
    installed package alone when its version lies in nodeutils' ranges, and Colab's do (the colab row of
    scripts/test_matrix.py checks that nothing preinstalled changes). A plain install (not -e) imports at once,
    without restarting the runtime. ``NODEUTILS_SOURCE`` installs from elsewhere (a fork, a tag, a local clone).
    """
    return f'''{SETUP_MARK}on Colab, install nodeutils (pip keeps Colab's own torch); elsewhere this cell does nothing.
import importlib.util
import os
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("nodeutils") is None:
    source = os.environ.get("{SOURCE_VARIABLE}", "{install_source(owner, name)}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)
    importlib.invalidate_caches()
    print(f"nodeutils installed from {{source}}")'''


def _lines(text: str) -> list[str]:
    """A cell source as nbformat stores it: lines that keep their newline, the last one without."""
    return text.splitlines(keepends=True)


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _is_badge_cell(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and (cell.get("id") == BADGE_CELL_ID or
                                                 _text(cell).startswith("[![Open In Colab]"))


def _is_setup_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and (cell.get("id") == SETUP_CELL_ID or _text(cell).startswith(SETUP_MARK))


def update_notebook(nb: dict, path: str, owner: str, name: str) -> dict:
    """The notebook with its badge cell first and its setup cell as the first code cell; other cells untouched."""
    uses_ids = (nb.get("nbformat", 4), nb.get("nbformat_minor", 0)) >= (4, 5)
    cells = nb["cells"]
    old_setup = [c for c in cells if _is_setup_cell(c)]
    rest = [c for c in cells if not (_is_badge_cell(c) or _is_setup_cell(c))]
    if uses_ids:
        taken = {c.get("id") for c in rest} & {BADGE_CELL_ID, SETUP_CELL_ID}
        if taken:
            raise BadgeError(f"{path}: another cell already has the id {sorted(taken)[0]!r}; give it a different id")

    badge_cell = {"cell_type": "markdown", "metadata": {}, "source": _lines(badges(owner, name, path))}
    source = setup_source(owner, name)
    count = None
    if old_setup and _text(old_setup[0]) == source:
        count = old_setup[0].get("execution_count")  # unchanged: keep the count a re-execution gave it
    setup_cell = {"cell_type": "code", "execution_count": count, "metadata": {"tags": list(SETUP_TAGS)}, "outputs": [],
                  "source": _lines(source)}
    if uses_ids:
        badge_cell["id"], setup_cell["id"] = BADGE_CELL_ID, SETUP_CELL_ID

    at = 1 if rest and rest[0]["cell_type"] == "markdown" else 0  # after the title cell, if there is one
    return {**nb, "cells": [badge_cell, *rest[:at], setup_cell, *rest[at:]]}


def notebook_text(nb: dict) -> str:
    """Serialized as Jupyter and nbformat write notebooks (sorted keys, one-space indent)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _between(text: str, start: str, end: str, what: str) -> tuple[str, str, str]:
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise BadgeError(f"README.md needs exactly one {what} block, opened by {start!r} and closed by {end!r}")
    head, rest = text.split(start)
    body, tail = rest.split(end)
    return head, body, tail


def update_readme(text: str, notebooks: list[str], owner: str, name: str) -> str:
    """README with its badge line and notebook table regenerated; the table keeps each notebook's description."""
    head, _, tail = _between(text, README_START, README_END, "badge")
    line = (badges(owner, name, f"{NOTEBOOKS}/{notebooks[0]}", binder_path=NOTEBOOKS) +
            f" [![Read online]({BOOK_BADGE})]({pages_url(owner, name)})")
    text = f"{head}{README_START}\n{line}\n{README_END}{tail}"

    head, body, tail = _between(text, TABLE_START, TABLE_END, "notebook table")
    described = {}
    for row in body.strip().splitlines():
        m = re.match(r"\|\s*`([^`]+\.ipynb)`\s*\|(.*?)\|", row)
        if m:
            described[m.group(1)] = m.group(2).strip()
    missing = [nb for nb in notebooks if nb not in described]
    if missing:
        raise BadgeError(f"README.md's notebook table has no row for {', '.join(missing)}: add "
                         f"'| `{missing[0]}` | what it teaches | |' between the table markers")
    stale = sorted(set(described) - set(notebooks))
    if stale:
        raise BadgeError(f"README.md's notebook table lists {', '.join(stale)}, not in {NOTEBOOKS}/: remove the row")
    rows = [f"| `{nb}` | {described[nb]} | {badges(owner, name, f'{NOTEBOOKS}/{nb}')} |" for nb in notebooks]
    return f"{head}{TABLE_START}\n{TABLE_HEADER}\n" + "\n".join(rows) + f"\n{TABLE_END}{tail}"


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    """Every file this script writes, with the text it should have."""
    owner, name = repository(root / "pyproject.toml")
    paths = sorted((root / NOTEBOOKS).glob("*.ipynb"))
    if not paths:
        raise BadgeError(f"no notebooks in {root / NOTEBOOKS}")
    out = {}
    for p in paths:
        nb = json.loads(p.read_text(encoding="utf-8"))
        out[p] = notebook_text(update_notebook(nb, f"{NOTEBOOKS}/{p.name}", owner, name))
    readme = root / "README.md"
    out[readme] = update_readme(readme.read_text(encoding="utf-8"), [p.name for p in paths], owner, name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report files that are out of date, change nothing")
    args = parser.parse_args(argv)
    try:
        expected = expected_files()
    except BadgeError as e:
        print(f"make_badges: {e}", file=sys.stderr)
        return 2
    stale = [p for p, text in expected.items() if p.read_text(encoding="utf-8") != text]
    for p in stale:
        if args.check:
            print(f"out of date: {p.relative_to(ROOT)} (run `make badges`)")
        else:
            p.write_text(expected[p], encoding="utf-8")
            print(f"updated {p.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
