"""What ``noxfile.py`` needs that nox does not do itself.

* ``find_python``: a CPython that pyenv installed but did not select (its shim exits 127, so neither nox nor uv
  finds it on PATH): Colab's 3.13 is often such a one.
* ``uv_settings``: uv reads its own settings, not pip's; a machine whose pip is configured with local package
  folders and extra indexes (``pip config list``) gets the same sources for uv, so that the test environments
  install PyTorch from there rather than downloading it.
* ``floor_pins``: ``name==X`` for each ``name>=X`` in ``pyproject.toml`` (uv's ``--resolution lowest-direct`` is
  not the same: it keeps transitive dependencies at their newest, and those can lift a direct one, such as NumPy,
  above its floor).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_TOOLS = ("pytest", "nbval", "nbclient")  # from the dev extra: what the tests themselves need (nbclient: the
# exercise test runs notebook copies)
SHOWN = ("torch", "torchvision", "torchdiffeq", "numpy", "matplotlib", "ipywidgets", "tqdm", "pytest", "nbval")


def pyproject() -> dict:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def lower_bound(requirement: str) -> tuple[str, str]:
    """(name, X) of a requirement such as ``torch>=2.1`` or ``torchdiffeq>=0.2.5,<0.3``.

    Args:
        requirement: one requirement as pyproject.toml writes it (a trailing ``# comment`` is allowed).
    Returns:
        The project name and the version its single ``>=`` bound states.
    """
    from packaging.requirements import Requirement

    parsed = Requirement(requirement.split("#")[0].strip())
    floors = [spec.version for spec in parsed.specifier if spec.operator == ">="]
    if len(floors) != 1:
        raise ValueError(f"{parsed.name}: {str(parsed.specifier)!r} states no single lower bound (`>=X`), "
                         "so it has no floor to test")
    return parsed.name, floors[0]


def floor_pins(project: dict | None = None) -> list[str]:
    """``name==X`` for each runtime dependency and each test tool at the lowest release pyproject.toml admits.

    Args:
        project: parsed pyproject.toml (default: this repository's).
    Returns:
        One pin per requirement, in pyproject.toml's order.
    """
    from packaging.requirements import Requirement

    project = (project or pyproject())["project"]
    dev = {Requirement(r).name.lower(): r for r in project["optional-dependencies"]["dev"]}
    requirements = project["dependencies"] + [dev[tool] for tool in TEST_TOOLS]
    return [f"{name}=={version}" for name, version in map(lower_bound, requirements)]


def floor_python(project: dict | None = None) -> str:
    """The lowest Python pyproject.toml admits, as ``3.11``.

    Args:
        project: parsed pyproject.toml (default: this repository's).
    Returns:
        ``3.N`` from ``requires-python = ">=3.N"``.
    """
    from packaging.specifiers import SpecifierSet

    spec = (project or pyproject())["project"]["requires-python"]
    floors = [s.version for s in SpecifierSet(spec) if s.operator == ">="]
    if len(floors) != 1 or not re.fullmatch(r"3\.[0-9]+", floors[0]):
        raise ValueError(f"requires-python {spec!r} is not of the form >=3.N")
    return floors[0]


def _runs(path: str) -> bool:
    try:
        done = subprocess.run([path, "-c", "pass"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return False
    return done.returncode == 0


def _release(path: Path) -> tuple[int, ...]:
    """(3, 13, 0) from a pyenv folder such as .../versions/3.13.0/bin/python3.13; () for a name like 3.13-dev."""
    name = path.parents[1].name
    return tuple(int(part) for part in name.split(".")) if re.fullmatch(r"[0-9]+(\.[0-9]+)*", name) else ()


def find_python(version: str) -> str | None:
    """A CPython ``version`` that runs: ``python3.N`` from PATH, else pyenv's newest installed 3.N.x.

    Args:
        version: ``3.N``.
    Returns:
        The interpreter's path, or None. pyenv's installs are looked for in ``$PYENV_ROOT/versions`` (default
        ``~/.pyenv``) whether or not pyenv has them selected; a shim for a version that is not selected is on PATH
        but exits 127, so each candidate is run once.
    """
    path = shutil.which(f"python{version}")
    if path is not None and _runs(path):
        return path
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = [p for p in root.glob(f"versions/{version}.*/bin/python{version}") if _release(p)]
    for candidate in sorted(installed, key=_release, reverse=True):
        if _runs(str(candidate)):
            return str(candidate)
    return None


def pip_config(python: str = sys.executable) -> dict[str, str]:
    """pip's configuration as ``pip config list`` prints it: {key: value}, environment variables winning.

    Args:
        python: the interpreter whose pip to ask.
    Returns:
        Keys without their scope (``find-links``, ``extra-index-url``, ...); empty where pip cannot be run.
    """
    try:
        listed = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    scoped: dict[str, dict[str, str]] = {}
    for line in listed.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        scope, _, name = key.rpartition(".")
        scoped.setdefault(name, {})[scope] = value.strip().strip("'\"")
    order = (":env:", "site", "user", "global")
    return {name: next((values[s] for s in order if s in values), next(iter(values.values())))
            for name, values in scoped.items()}


def uv_settings(config: dict[str, str]) -> dict[str, str]:
    """uv's environment variables for the package sources pip's configuration names.

    Args:
        config: from ``pip_config()``.
    Returns:
        ``UV_DEFAULT_INDEX``, ``UV_INDEX``, ``UV_FIND_LINKS`` where pip sets an index URL, extra indexes or
        find-links, with ``UV_INDEX_STRATEGY=unsafe-best-match`` (pip's rule: the best version from any index);
        ``UV_CONSTRAINT`` is not among them (a version row states its versions itself).
    """
    out = {}
    if config.get("index-url"):
        out["UV_DEFAULT_INDEX"] = config["index-url"]
    if config.get("extra-index-url"):
        out["UV_INDEX"] = " ".join(config["extra-index-url"].split())
        out["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    if config.get("find-links"):
        out["UV_FIND_LINKS"] = ",".join(config["find-links"].split())
    return out


def installed_versions() -> dict[str, str]:
    """Python's version and the installed version of each package in SHOWN (in the running environment).

    Returns:
        {name: version or "not installed"}, Python first.
    """
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for name in SHOWN:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


if __name__ == "__main__":  # the noxfile prints each row's versions with `python scripts/matrix_env.py`
    print("versions: " + ", ".join(f"{name} {version}" for name, version in installed_versions().items()))
