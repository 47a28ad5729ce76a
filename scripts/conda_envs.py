"""Write the conda environment files from pyproject.toml, the one list of dependencies (``make conda-envs``).

    python scripts/conda_envs.py            # writes environment.yml and binder/environment.yml
    python scripts/conda_envs.py --check    # exits 1, naming the stale files, if either differs from pyproject.toml

* ``environment.yml`` (developing with conda): the runtime dependencies, the dev extra, this package editable;
* ``binder/environment.yml`` (Binder): the runtime dependencies and JupyterLab only, nothing that refers to this
  repository's files, so that Binder builds it once and reuses it for every commit that leaves it unchanged.

Each requirement keeps pyproject.toml's version specifier. PyTorch is conda-forge's CPU build (``pytorch-cpu``);
torchdiffeq comes from PyPI (conda-forge's stops at 0.2.2).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch-cpu"}  # conda-forge's CPU build of PyTorch
FROM_PIP = {"torchdiffeq": "conda-forge's torchdiffeq stops at 0.2.2"}
BINDER_DEV = ("jupyterlab",)  # from the dev extra: the front end Binder opens
HEADERS = {
    "environment.yml": """\
# Conda environment for developing with conda (CPU PyTorch from conda-forge, the test tools, this package
# installed editable). Binder builds from binder/ instead: the notebooks' requirements only.
#   conda env create -f environment.yml && conda activate nodeutils
# Written from pyproject.toml by `make conda-envs` (scripts/conda_envs.py): edit pyproject.toml, then run it.
name: nodeutils
""",
    "binder/environment.yml": """\
# Binder (repo2docker) builds this environment first, then runs binder/postBuild to install nodeutils itself.
# Only what the notebooks need is listed here, and nothing refers to this repository's files, so the environment
# is built once and reused for every commit that leaves this file unchanged. Written from pyproject.toml by
# `make conda-envs` (scripts/conda_envs.py): edit pyproject.toml, then run it.
name: nodeutils-binder
""",
}


def _split(requirement: str) -> tuple[str, str]:
    """(name, specifier) of a requirement as pyproject.toml writes it, e.g. ("torchdiffeq", ">=0.2.5,<0.3")."""
    text = requirement.split("#")[0].strip()
    name = re.match(r"[A-Za-z0-9._-]+", text).group(0)  # a project name (PEP 508); no third-party parser needed
    return name, text[len(name):].replace(" ", "")


def _python(project: dict) -> str:
    spec = project["requires-python"].replace(" ", "")
    if not spec.startswith(">=3."):
        raise ValueError(f"requires-python {spec!r} is not of the form >=3.N")
    return spec[2:]


def environment_text(path: str, pyproject: dict | None = None) -> str:
    """The content ``path`` (``environment.yml`` or ``binder/environment.yml``) should have.

    Args:
        path: one of the keys of HEADERS.
        pyproject: parsed pyproject.toml (default: this repository's).
    Returns:
        The YAML text, header comment included.
    """
    project = (pyproject or tomllib.loads((ROOT / "pyproject.toml").read_text()))["project"]
    runtime = [_split(r) for r in project["dependencies"]]
    dev = [_split(r) for r in project["optional-dependencies"]["dev"]]
    extra = dev if path == "environment.yml" else [(n, s) for n, s in dev if n in BINDER_DEV]
    conda = [(CONDA_NAMES.get(n, n), s) for n, s in runtime + extra if n not in FROM_PIP]
    pip = [(n, s) for n, s in runtime + extra if n in FROM_PIP]
    lines = [HEADERS[path].rstrip("\n"), "channels:", "  - conda-forge", "dependencies:",
             f"  - python={_python(project)}"]
    lines += [f"  - {name}{spec}" for name, spec in conda]
    lines += ["  - pip", "  - pip:"]
    for name, spec in pip:
        lines.append(f"      - {name}{spec}" + (f"  # {FROM_PIP[name]}" if path != "environment.yml" else ""))
    if path == "environment.yml":
        lines.append("      - -e .")
    return "\n".join(lines) + "\n"


def stale() -> list[str]:
    """The conda files whose content differs from what pyproject.toml gives."""
    return [p for p in HEADERS if (ROOT / p).read_text() != environment_text(p)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ from pyproject.toml")
    args = parser.parse_args(argv)
    if args.check:
        for path in stale():
            print(f"{path} is out of date with pyproject.toml: run `make conda-envs`", file=sys.stderr)
        return 1 if stale() else 0
    for path in HEADERS:
        (ROOT / path).write_text(environment_text(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
