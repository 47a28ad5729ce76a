"""Run the tests under several CPU settings, on CUDA when present, and with other dependency versions; print a table.

Each setting row re-runs ``pytest --nbval notebooks/`` in a fresh process with one setting changed:
the number of intra-op threads (``OMP_NUM_THREADS``), the CPU kernels PyTorch dispatches to
(``ATEN_CPU_CAPABILITY``: plain C++, AVX2 or AVX-512) or the device the notebooks train on
(``NODEUTILS_DEVICE=cuda``).

Each version row builds a fresh virtual environment (under ``.matrix/``, removed afterwards) holding one set of
dependency versions, then runs the unit tests (``pytest tests/``) and ``pytest --nbval notebooks/`` in it:

* ``versions=floor``: every dependency at the lowest release ``pyproject.toml`` admits (``>=X`` installs ``==X``),
  the test tools at theirs too, on the lowest Python it admits;
* ``versions=colab``: Google Colab's preinstalled versions (``scripts/colab_constraints.txt``, torch included) on
  Colab's Python (3.13) where one is found (on PATH or installed by pyenv), else on this script's Python; the
  notebooks also run the Colab way first (``scripts/colab_check.py``: setup cell, fake ``google.colab``);
* ``versions=latest``: the newest release of every dependency on the package index (no version caps, not even the
  machine's pip configuration).

The stored outputs are the same for every row, so every cell must pass in every row. Usage::

    python scripts/test_matrix.py                      # every setting row this machine supports
    python scripts/test_matrix.py --rows threads=1 kernels=default
    python scripts/test_matrix.py --rows versions=floor versions=colab versions=latest
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ROWS: dict[str, dict[str, str]] = {
    "threads=1": {"OMP_NUM_THREADS": "1"},
    "threads=2": {"OMP_NUM_THREADS": "2"},
    "kernels=default": {"ATEN_CPU_CAPABILITY": "default"},
    "kernels=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "kernels=avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "device=cuda": {"NODEUTILS_DEVICE": "cuda"},
}
# Rows that build their own environment. `make test-matrix` with no MATRIX_ROWS runs the setting rows only: each
# version row downloads a PyTorch release (several GB with its CUDA libraries).
VERSION_ROWS = ("versions=floor", "versions=colab", "versions=latest")
ENVS = ROOT / ".matrix"
COLAB_CONSTRAINTS = ROOT / "scripts" / "colab_constraints.txt"
COLAB_PYTHON = "3.13"  # Colab's runtime (the same pip freeze as scripts/colab_constraints.txt)
TEST_TOOLS = ("pytest", "nbval")  # from the dev extra: what the tests themselves need
SHOWN = ("torch", "torchvision", "torchdiffeq", "numpy", "matplotlib", "ipywidgets", "tqdm", "pytest", "nbval")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def lower_bound(requirement: str) -> tuple[str, str]:
    """(name, X) of a requirement such as ``torch>=2.1`` or ``torchdiffeq>=0.2.5,<0.3``."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*(.*?)\s*", requirement.split("#")[0].split(";")[0])
    if m is None:
        raise ValueError(f"cannot read the requirement {requirement!r}")
    name, spec = m.groups()
    floors = re.findall(r">=\s*([0-9][A-Za-z0-9.]*)", spec)
    if len(floors) != 1:
        raise ValueError(f"{name}: {spec!r} states no single lower bound (`>=X`), so it has no floor to test")
    return name, floors[0]


def floor_pins(project: dict | None = None) -> list[str]:
    """``name==X`` for each dependency and each test tool at the lowest release pyproject.toml admits."""
    project = (project or _pyproject())["project"]
    dev = {lower_bound(r)[0].lower(): r for r in project["optional-dependencies"]["dev"]}
    requirements = project["dependencies"] + [dev[tool] for tool in TEST_TOOLS]
    return [f"{name}=={version}" for name, version in map(lower_bound, requirements)]


def floor_python(project: dict | None = None) -> str:
    """The lowest Python pyproject.toml admits, as ``3.11``."""
    spec = (project or _pyproject())["project"]["requires-python"]
    m = re.fullmatch(r">=\s*(3\.[0-9]+)", spec)
    if m is None:
        raise ValueError(f"requires-python {spec!r} is not of the form >=3.N")
    return m.group(1)


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
    """A CPython ``version`` (``3.13``) that runs: ``python3.13`` from PATH, else pyenv's newest installed 3.13.x
    (found in ``$PYENV_ROOT/versions`` whether or not pyenv has it selected), else None. A pyenv shim for a version
    that is not selected is on PATH but exits 127, so each candidate is run once."""
    path = shutil.which(f"python{version}")
    if path is not None and _runs(path):
        return path
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = [p for p in root.glob(f"versions/{version}.*/bin/python{version}") if _release(p)]
    for candidate in sorted(installed, key=_release, reverse=True):
        if _runs(str(candidate)):
            return str(candidate)
    return None


def base_python() -> str:
    """The interpreter this script's (virtual) environment was made from."""
    return getattr(sys, "_base_executable", None) or sys.executable


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it does not exist)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def unsupported(row: str) -> str | None:
    """Why a row cannot run on this machine, or None."""
    flags = cpu_flags()
    if row == "kernels=avx2" and "avx2" not in flags:
        return "no AVX2"
    if row == "kernels=avx512" and "avx512f" not in flags:
        return "no AVX-512"
    if row == "versions=floor" and find_python(floor_python()) is None:
        return f"no python{floor_python()} on PATH or in pyenv"
    if row == "device=cuda":
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU"
    return None


def notebook_of(classname: str, file: str | None = None) -> str:
    """The notebook's file name from a JUnit test case (nbval's class name is the dotted path)."""
    if file:
        return Path(file).name
    stem = classname.removesuffix(".ipynb").rsplit(".", 1)[-1]
    return f"{stem}.ipynb"


def _pytest(python: str, args: list[str], env: dict[str, str], report: Path) -> dict[str, list[int]]:
    """Run pytest with ``args``; return {file: [passed, failed]} from its JUnit report (empty if none was written)."""
    subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *args],
                   cwd=ROOT, env=env, check=False,
                   stdout=subprocess.DEVNULL if not os.environ.get("MATRIX_VERBOSE") else None)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            if any(child.tag == "skipped" for child in case):
                continue
            name = notebook_of(case.get("classname", ""), case.get("file"))
            failed = any(child.tag in ("failure", "error") for child in case)
            counts[name][1 if failed else 0] += 1
    return dict(counts)


def _pip(python: str, *args: str) -> None:
    # PIP_CONSTRAINT=/dev/null: a machine's pip configuration may cap releases (this one caps torch); a version row
    # states its versions itself.
    env = {**os.environ, "PIP_CONSTRAINT": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([python, "-m", "pip", "install", "--quiet", *args], cwd=ROOT, env=env, check=True)


def installed_versions(python: str) -> dict[str, str]:
    """Python's version and the installed version of each package in SHOWN, in the environment of ``python``."""
    code = ("import json, sys\nfrom importlib import metadata\nout = {'python': sys.version.split()[0]}\n"
            f"for name in {SHOWN!r}:\n"
            "    try:\n        out[name] = metadata.version(name)\n"
            "    except metadata.PackageNotFoundError:\n        out[name] = 'not installed'\n"
            "print(json.dumps(out))")
    import json

    return json.loads(subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout)


def build_environment(row: str, venv: Path) -> str:
    """Make a fresh virtual environment holding the row's versions, this package and the test tools; its Python."""
    shutil.rmtree(venv, ignore_errors=True)
    interpreter = {"versions=floor": find_python(floor_python()),
                   "versions=colab": find_python(COLAB_PYTHON) or base_python()}.get(row, base_python())
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    if row == "versions=floor":
        _pip(python, "-e", ".", *floor_pins())
    elif row == "versions=colab":
        _pip(python, "-r", str(COLAB_CONSTRAINTS))
        _pip(python, "nbval", "-c", str(COLAB_CONSTRAINTS))  # not on Colab: it must change none of Colab's versions
    elif row == "versions=latest":
        _pip(python, "--upgrade", "-e", ".", *TEST_TOOLS)
    else:
        raise ValueError(row)
    return python


def run_row(row: str, notebooks: list[str]) -> tuple[dict[str, list[int]], float]:
    """Run the row; return {notebook or test file: [passed, failed]} and the wall time.

    A version row also returns "colab_check.py" (the Colab-way run: [1, 0] or [0, 1]) for versions=colab, and the
    unit tests' files; a setting row runs nbval in this environment.
    """
    env = {**os.environ, **ROWS.get(row, {})}
    start = time.perf_counter()
    counts: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Each row starts with an empty torch.compile cache, like a new machine: kernels that inductor compiled
        # and cached under one ATEN_CPU_CAPABILITY fail to build when reused under another.
        env["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")
        python = sys.executable
        venv = ENVS / row.split("=", 1)[1]
        if row in VERSION_ROWS:
            for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
                env.pop(name, None)
            env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            python = build_environment(row, venv)
            shown = installed_versions(python)
            print(f"{row}: " + ", ".join(f"{k} {v}" for k, v in shown.items()) +
                  f" (installed in {time.perf_counter() - start:.0f} s)", flush=True)
            if row == "versions=colab":
                # The Colab way first: it uninstalls nodeutils and lets each notebook's setup cell install it.
                ok = subprocess.run([python, "scripts/colab_check.py"], cwd=ROOT, env=env, check=False).returncode == 0
                counts["colab_check.py"] = [1, 0] if ok else [0, 1]
                _pip(python, "-e", ".", "-c", str(COLAB_CONSTRAINTS))  # as the setup cell installed it
            counts |= {f"tests/{k}": v for k, v in _pytest(python, ["tests/"], env, Path(tmp) / "unit.xml").items()}
        try:
            counts |= _pytest(python, ["--nbval", *notebooks], env, Path(tmp) / "report.xml")
        finally:
            if row in VERSION_ROWS and not os.environ.get("MATRIX_KEEP_ENVS"):
                shutil.rmtree(venv, ignore_errors=True)
    return counts, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=[*ROWS, *VERSION_ROWS], default=list(ROWS),
                        help="rows to run (default: every setting row this machine supports)")
    parser.add_argument("notebooks", nargs="*", default=None, help="notebooks to run (default: notebooks/)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb"))
    names = [Path(n).name for n in notebooks]
    results: dict[str, dict[str, list[int]] | str] = {}
    times: dict[str, float] = {}
    for row in args.rows:
        reason = unsupported(row)
        if reason:
            results[row] = f"skipped ({reason})"
            print(f"{row}: skipped ({reason})", flush=True)
            continue
        try:
            counts, times[row] = run_row(row, notebooks)
        except subprocess.CalledProcessError as e:
            command = " ".join(map(str, e.cmd))
            results[row] = f"FAILED: its environment could not be built ({command} exited {e.returncode})"
            print(f"{row}: {results[row]}", flush=True)
            continue
        results[row] = counts
        cells = [c for k, c in counts.items() if k in names]
        unit = [c for k, c in counts.items() if k.startswith("tests/")]
        unit_text = (f"unit tests {sum(c[0] for c in unit)} passed, {sum(c[1] for c in unit)} failed; "
                     if row in VERSION_ROWS else "")
        colab_text = ("Colab-way run " + ("passed" if counts["colab_check.py"][0] else "FAILED") + "; "
                      if "colab_check.py" in counts else "")
        print(f"{row}: {colab_text}{unit_text}{sum(c[0] for c in cells)} cells passed, "
              f"{sum(c[1] for c in cells)} failed ({times[row]:.0f} s)", flush=True)

    width = max(len(n) for n in names + ["notebook", "tests/ (unit tests)"])
    ran = [r for r in args.rows if isinstance(results[r], dict)]
    print()
    print("notebook".ljust(width) + "".join(f"  {r:>16}" for r in ran))
    bad = any(str(results[r]).startswith("FAILED") for r in args.rows)
    lines: list[tuple[str, list[str]]] = []
    if any(r in VERSION_ROWS for r in ran):
        lines.append(("tests/ (unit tests)", [r for r in ran if r in VERSION_ROWS]))
    if any("colab_check.py" in results[r] for r in ran):
        lines.append(("colab_check.py", [r for r in ran if "colab_check.py" in results[r]]))
    lines += [(name, ran) for name in names]
    for name, rows in lines:
        cells = []
        for r in ran:
            got: dict[str, list[int]] = results[r]  # type: ignore[assignment]
            if r not in rows:
                cells.append("-")
                continue
            keys = [k for k in got if k.startswith("tests/")] if name.startswith("tests/") else [name]
            p, f = sum(got.get(k, [0, 0])[0] for k in keys), sum(got.get(k, [0, 0])[1] for k in keys)
            bad |= f > 0 or p == 0
            cells.append(f"{p} ok" + (f", {f} FAIL" if f else ""))
        print(name.ljust(width) + "".join(f"  {c:>16}" for c in cells))
    for r in args.rows:
        if isinstance(results[r], str):
            print(f"{r}: {results[r]}")
    print("\nall rows green" if not bad else "\nsome cells FAILED (re-run a row with MATRIX_VERBOSE=1 to see them)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
