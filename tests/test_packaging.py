"""The install paths agree: pyproject (pip), environment.yml (conda/Binder), README and CI."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch-cpu"}  # conda-forge's CPU build of PyTorch


def _requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line).groups()
        out[name.lower()] = spec.replace(" ", "")
    return out


def _conda_entries() -> dict[str, str]:
    out = {}
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split("#")[0].strip()
        if not line.startswith("- ") or line.endswith(":") or line in ("- pip", "- -e ."):
            continue
        m = re.match(r"-\s+([A-Za-z0-9_.-]+)\s*(.*)", line)
        if m:
            out[m.group(1).lower()] = m.group(2).replace(" ", "")
    return out


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    conda = _conda_entries()
    for name, spec in _requirements().items():
        conda_name = CONDA_NAMES.get(name, name)
        assert conda_name in conda, f"{conda_name} missing from environment.yml"
        assert conda[conda_name] == spec, f"{name}: pyproject says {spec!r}, environment.yml {conda[conda_name]!r}"


def test_environment_yml_installs_this_package():
    assert "      - -e ." in (ROOT / "environment.yml").read_text().splitlines()


def test_ci_runs_the_test_command_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test\s", readme, flags=re.MULTILINE)
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    commands = [line for line in ci if not line.startswith(("set ", "cd "))]
    assert commands[0] == "make test"  # the README's command first; further checks after it


def test_makefile_pins_the_tested_torch_release_and_runs_both_suites():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.14.1 torchvision==0.29.1" in makefile
    assert "pytest -q tests/" in makefile and "pytest -q --nbval notebooks/" in makefile


def test_notebook_tests_need_no_extra_flags():
    """`pytest --nbval notebooks/` as typed: notebooks/conftest.py supplies the sanitize file and the kernel."""
    conftest = (ROOT / "notebooks" / "conftest.py").read_text()
    assert 'with_name("sanitize.cfg")' in conftest and "nbval_current_env = True" in conftest
    sections = re.findall(r"^\[(.+)\]$", (ROOT / "notebooks" / "sanitize.cfg").read_text(), flags=re.MULTILINE)
    assert sections and all(len(name.split()) >= 2 for name in sections)  # each section says what it masks


def test_embedded_data_ships_with_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "embedded/*.npz" in project["tool"]["setuptools"]["package-data"]["nodeutils"]
    assert (ROOT / "nodeutils" / "embedded" / "mnist_5k.npz").is_file()
