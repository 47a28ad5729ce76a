"""The test matrix, as nox sessions: each a fresh environment (built by uv) with an empty ``torch.compile`` cache.

Setting rows run ``pytest --nbval notebooks/`` with the tested PyTorch (the Makefile's) and one setting changed:
intra-op threads (``OMP_NUM_THREADS``), the CPU kernels PyTorch dispatches to (``ATEN_CPU_CAPABILITY``) or the
device the notebooks train on (``NODEUTILS_DEVICE=cuda``). Version rows install other dependency versions and run
the unit tests and the notebook tests:

* ``versions=floor``: every dependency (and pytest, nbval) at the lowest release pyproject.toml admits, on the
  lowest Python it admits;
* ``versions=colab``: Google Colab's preinstalled versions (``scripts/colab_constraints.txt``) on Colab's Python
  (3.13) where one is found (on PATH or installed by pyenv); the notebooks first run the Colab way
  (``scripts/colab_check.py``: setup cell, stand-in ``google.colab``);
* ``versions=latest``: the newest release of everything, with no version caps;
* ``versions=torchdiffeq-main``: torchdiffeq's development branch (the vendored source tarball where one is present,
  ``TORCHDIFFEQ_MAIN`` names another, else its git URL), which ships a Tsit5 of its own under the same name and the
  same version number as the release: every stored output must stay unchanged.

``unit`` and ``notebooks`` are ``make test``'s two suites in a fresh environment. The stored outputs are the same
for every row, so every cell must pass in every row. Usage::

    nox -l                                        # the sessions
    nox                                           # every setting row (a row this machine cannot run is skipped)
    nox -s threads=1 kernels=default
    nox -s versions=floor versions=colab versions=latest

uv takes the package sources from pip's configuration (``scripts/matrix_env.py``); an environment is removed when
its session ends unless ``MATRIX_KEEP_ENVS=1``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
import matrix_env  # noqa: E402

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True

TORCH = ("torch==2.14.1", "torchvision==0.29.1")  # the release this project is tested with (the Makefile's)
COLAB_CONSTRAINTS = "scripts/colab_constraints.txt"
COLAB_PYTHON = "3.13"  # Colab's runtime (the same pip freeze as scripts/colab_constraints.txt)
THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
SETTINGS: dict[str, dict[str, str]] = {
    "threads=1": {"OMP_NUM_THREADS": "1"},
    "threads=2": {"OMP_NUM_THREADS": "2"},
    "kernels=default": {"ATEN_CPU_CAPABILITY": "default"},
    "kernels=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "kernels=avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "device=cuda": {"NODEUTILS_DEVICE": "cuda"},
}
nox.options.sessions = list(SETTINGS)

PIP_CONFIG = matrix_env.pip_config()
for _name, _value in matrix_env.uv_settings(PIP_CONFIG).items():
    os.environ.setdefault(_name, _value)  # a uv setting of the user's own wins
# The machine's version caps (pip's constraint files) hold where the tested releases are installed, not in the
# version rows, which state their versions themselves.
MACHINE_CONSTRAINT = " ".join(PIP_CONFIG.get("constraint", "").split())
# pip (and, below Python 3.12, setuptools) seeded, as `python -m venv` makes an environment: torch 2.9's
# torch.compile imports setuptools on Python 3.11, and the notebooks' setup cell installs nodeutils with pip.
SEED = ["--seed"]


_STARTED: dict[str, float] = {}


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _unsupported(row: str) -> str | None:
    flags = _cpu_flags()
    if row == "kernels=avx2" and "avx2" not in flags:
        return "no AVX2"
    if row == "kernels=avx512" and "avx512f" not in flags:
        return "no AVX-512"
    if row == "device=cuda" and shutil.which("nvidia-smi") is None:
        return "no CUDA GPU (no nvidia-smi)"
    return None


def _fresh(session: nox.Session, settings: dict[str, str] | None = None) -> None:
    """An empty torch.compile cache and temporary folder (kernels that inductor compiled and cached under one
    ATEN_CPU_CAPABILITY fail to build when reused under another; its precompiled header lives in the temporary
    folder), and the row's settings."""
    _STARTED[session.name] = time.monotonic()
    tmp = Path(session.virtualenv.location) / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "inductor").mkdir(parents=True)
    session.env["TMPDIR"] = str(tmp)
    session.env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp / "inductor")
    session.env.update(settings or {})


def _show_versions(session: nox.Session) -> None:
    """Print the row's versions and how long its installs took (uv creates the empty environment before)."""
    session.run("python", "scripts/matrix_env.py")
    session.log(f"installed in {time.monotonic() - _STARTED.get(session.name, time.monotonic()):.0f} s")


def _install_tested(session: nox.Session) -> None:
    """The tested PyTorch and this package with its dev extra, as `make setup` installs them."""
    if MACHINE_CONSTRAINT:
        session.env["UV_CONSTRAINT"] = MACHINE_CONSTRAINT
    session.install(*TORCH)
    session.install("-e", ".[dev]")
    _show_versions(session)


def _done(session: nox.Session) -> None:
    if not os.environ.get("MATRIX_KEEP_ENVS"):
        shutil.rmtree(session.virtualenv.location, ignore_errors=True)


def _unit(session: nox.Session) -> None:
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/")


def _notebooks(session: nox.Session) -> None:
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "notebooks/")


@nox.session(python=THIS_PYTHON, venv_params=SEED, tags=["suites"])
def unit(session: nox.Session) -> None:
    """`pytest tests/` with the tested releases."""
    _fresh(session)
    try:
        _install_tested(session)
        _unit(session)
    finally:
        _done(session)


@nox.session(python=THIS_PYTHON, venv_params=SEED, tags=["suites"])
def notebooks(session: nox.Session) -> None:
    """`pytest --nbval notebooks/` with the tested releases."""
    _fresh(session)
    try:
        _install_tested(session)
        _notebooks(session)
    finally:
        _done(session)


def _setting_session(row: str) -> None:
    def run(session: nox.Session) -> None:
        reason = _unsupported(row)
        if reason:
            session.skip(reason)
        _fresh(session, SETTINGS[row])
        try:
            _install_tested(session)
            _notebooks(session)
        finally:
            _done(session)

    run.__doc__ = f"`pytest --nbval notebooks/` with {' '.join(f'{k}={v}' for k, v in SETTINGS[row].items())}."
    nox.session(name=row, python=THIS_PYTHON, venv_params=SEED, tags=["settings"])(run)


for _row in SETTINGS:
    _setting_session(_row)


@nox.session(name="versions=floor", python=matrix_env.find_python(matrix_env.floor_python())
             or matrix_env.floor_python(), venv_params=SEED, tags=["versions"])
def versions_floor(session: nox.Session) -> None:
    """Unit and notebook tests with every dependency at the floor pyproject.toml states."""
    _fresh(session)
    try:
        session.install("-e", ".", *matrix_env.floor_pins())
        _show_versions(session)
        _unit(session)
        _notebooks(session)
    finally:
        _done(session)


@nox.session(name="versions=colab", python=matrix_env.find_python(COLAB_PYTHON) or THIS_PYTHON,
             venv_params=SEED, tags=["versions"])
def versions_colab(session: nox.Session) -> None:
    """The notebooks run the Colab way, then unit and notebook tests, with Colab's preinstalled versions."""
    _fresh(session)
    try:
        session.install("-r", COLAB_CONSTRAINTS)
        session.install("nbval", "-c", COLAB_CONSTRAINTS)  # not on Colab: it must change none of Colab's versions
        _show_versions(session)
        # It uninstalls nodeutils and lets each notebook's setup cell install it, then checks what it did.
        session.run("python", "scripts/colab_check.py")
        session.install("-e", ".", "-c", COLAB_CONSTRAINTS)  # as the setup cell installed it
        _unit(session)
        _notebooks(session)
    finally:
        _done(session)


@nox.session(name="versions=latest", python=THIS_PYTHON, venv_params=SEED, tags=["versions"])
def versions_latest(session: nox.Session) -> None:
    """Unit and notebook tests with the newest release of every dependency (no version caps)."""
    _fresh(session)
    try:
        session.install("--upgrade", "-e", ".", *matrix_env.TEST_TOOLS)
        _show_versions(session)
        _unit(session)
        _notebooks(session)
    finally:
        _done(session)


TORCHDIFFEQ_MAIN_SOURCES = ("../shared/vendor/torchdiffeq-main-657943a.tar.gz",)
TORCHDIFFEQ_GIT = "git+https://github.com/rtqichen/torchdiffeq"


def torchdiffeq_main_source() -> str:
    """The requirement the versions=torchdiffeq-main row installs torchdiffeq from (``torchdiffeq @ <where>``)."""
    where = os.environ.get("TORCHDIFFEQ_MAIN") or next(
        (Path(c).resolve().as_uri() for c in TORCHDIFFEQ_MAIN_SOURCES if Path(c).is_file()), TORCHDIFFEQ_GIT)
    if Path(where).is_file():
        where = Path(where).resolve().as_uri()
    return f"torchdiffeq @ {where}"


@nox.session(name="versions=torchdiffeq-main", python=THIS_PYTHON, venv_params=SEED, tags=["versions"])
def versions_torchdiffeq_main(session: nox.Session) -> None:
    """Unit and notebook tests with torchdiffeq's development branch instead of its release."""
    _fresh(session)
    try:
        _install_tested(session)
        session.install("--reinstall-package", "torchdiffeq", torchdiffeq_main_source())
        session.run("python", "-c", "from torchdiffeq._impl.odeint import SOLVERS; import nodeutils; "
                    "assert SOLVERS['tsit5'] is nodeutils.tsit5.Tsit5Solver; "
                    "print('torchdiffeq tsit5 kept as', SOLVERS.get('tsit5_torchdiffeq'))")
        _unit(session)
        _notebooks(session)
    finally:
        _done(session)
