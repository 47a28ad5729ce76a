"""The install paths agree: pyproject (pip), environment.yml (conda/Binder), README and CI."""

import re
import tomllib
from pathlib import Path

import pytest
from helpers import CONDA_NAMES, ROOT, load_script, requirements


def _requirements() -> dict[str, str]:
    """Every runtime and dev requirement of pyproject.toml: name -> version specifier."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return requirements(project["dependencies"] + project["optional-dependencies"]["dev"])


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


def _conda_envs():
    return load_script("conda_envs")


def test_conda_files_are_written_from_pyproject():
    """pyproject.toml is the one list of dependencies: both conda files are generated from it (`make conda-envs`)."""
    assert _conda_envs().stale() == [], "run `make conda-envs`"
    conda = _conda_entries()
    for name, spec in _requirements().items():  # every runtime and dev requirement, with pyproject's specifier
        assert conda.get(CONDA_NAMES.get(name, name)) == spec, name


def test_conda_files_follow_a_changed_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project["project"]["dependencies"] = ["torch>=2.10", "torchdiffeq>=0.2.6,<0.3", "numpy>=2"]
    project["project"]["optional-dependencies"]["dev"] = ["pytest>=9", "jupyterlab>=4.2"]
    binder = _conda_envs().environment_text("binder/environment.yml", project)
    assert "  - pytorch-cpu>=2.10\n  - numpy>=2\n  - jupyterlab>=4.2\n" in binder and "pytest" not in binder
    assert "      - torchdiffeq>=0.2.6,<0.3  #" in binder
    dev = _conda_envs().environment_text("environment.yml", project)
    assert "  - pytest>=9\n" in dev and dev.endswith("      - torchdiffeq>=0.2.6,<0.3\n      - -e .\n")


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


# --- the test matrix's version rows -----------------------------------------------------------------------------


def _matrix_env():
    return load_script("matrix_env")


def test_floor_row_installs_each_lower_bound_that_pyproject_and_the_environment_files_state():
    pins = dict(pin.split("==") for pin in _matrix_env().floor_pins())
    requirements = _requirements()
    for name, version in pins.items():
        assert f">={version}" in requirements[name.lower()].split(","), (name, version, requirements[name.lower()])
    conda = _conda_entries()
    for name in ("torch", "torchvision", "numpy", "matplotlib", "ipywidgets", "tqdm", "torchdiffeq", "pytest", "nbval"):
        assert f">={pins[name]}" in conda[CONDA_NAMES.get(name, name)].split(","), name
    assert _matrix_env().floor_python() == "3.11"
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


@pytest.mark.parametrize("requirement, floor", [
    ("torch>=2.1", ("torch", "2.1")),
    ("torchdiffeq>=0.2.5,<0.3", ("torchdiffeq", "0.2.5")),
    ("ipywidgets >= 7.7.1  # tested with 7.7.1", ("ipywidgets", "7.7.1")),
])
def test_lower_bound_reads_the_floor(requirement, floor):
    assert _matrix_env().lower_bound(requirement) == floor


@pytest.mark.parametrize("requirement", ["torch", "torch>2.1", "torch<3", "torch>=2.1,>=2.2"])
def test_a_requirement_without_one_floor_is_refused(requirement):
    with pytest.raises(ValueError, match="no single lower bound"):
        _matrix_env().lower_bound(requirement)


def _fake_python(path: Path, exit_code: int) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(0o755)


def test_find_python_takes_the_newest_pyenv_release_that_runs(tmp_path, monkeypatch):
    """A version pyenv has installed but not selected is found in $PYENV_ROOT/versions; one that fails is skipped."""
    root = tmp_path / "pyenv"
    _fake_python(root / "versions" / "3.13.0" / "bin" / "python3.13", 0)
    _fake_python(root / "versions" / "3.13.10" / "bin" / "python3.13", 0)
    _fake_python(root / "versions" / "3.13.12" / "bin" / "python3.13", 127)  # broken install
    _fake_python(root / "versions" / "3.13-dev" / "bin" / "python3.13", 0)  # not a release
    _fake_python(tmp_path / "shims" / "python3.13", 127)  # pyenv's shim: version not selected
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("PATH", str(tmp_path / "shims"))
    matrix = _matrix_env()
    assert matrix.find_python("3.13") == str(root / "versions" / "3.13.10" / "bin" / "python3.13")
    assert matrix.find_python("3.12") is None
    _fake_python(tmp_path / "bin" / "python3.12", 0)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert matrix.find_python("3.12") == str(tmp_path / "bin" / "python3.12")


def test_uv_gets_the_package_sources_pip_is_configured_with():
    config = {"find-links": "/opt/wheels /srv/more", "extra-index-url": "file:///a/simple  file:///b/simple",
              "constraint": "/etc/caps.txt", "cert": "/etc/ssl/certs/ca.crt"}
    assert _matrix_env().uv_settings(config) == {
        "UV_FIND_LINKS": "/opt/wheels,/srv/more", "UV_INDEX": "file:///a/simple file:///b/simple",
        "UV_INDEX_STRATEGY": "unsafe-best-match"}
    assert _matrix_env().uv_settings({"index-url": "https://mirror.example/simple"}) == {
        "UV_DEFAULT_INDEX": "https://mirror.example/simple"}
    assert _matrix_env().uv_settings({}) == {}


def test_pip_config_prefers_environment_variables(monkeypatch, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nprintf \"global.find-links='/opt/global'\\n:env:.find-links='/opt/env'\\n"
                    "global.constraint='/etc/caps.txt'\\nnot a setting\\n\"\n")
    fake.chmod(0o755)
    assert _matrix_env().pip_config(str(fake)) == {"find-links": "/opt/env", "constraint": "/etc/caps.txt"}
    assert _matrix_env().pip_config(str(tmp_path / "missing")) == {}


def test_noxfile_has_a_session_for_each_row_and_make_calls_nox():
    noxfile = (ROOT / "noxfile.py").read_text()
    for row in ("threads=1", "threads=2", "kernels=default", "kernels=avx2", "kernels=avx512", "device=cuda"):
        assert f'"{row}":' in noxfile, row
    for row in ("versions=floor", "versions=colab", "versions=latest"):
        assert f'name="{row}"' in noxfile, row
    assert 'TORCH = ("torch==2.14.1", "torchvision==0.29.1")' in noxfile  # the Makefile's release
    assert "matrix_env.floor_pins()" in noxfile and COLAB_CHECK in noxfile and "colab_constraints.txt" in noxfile
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-matrix: \$\(NOX\)\n\t\$\(NOX\) \$\(if \$\(MATRIX_ROWS\),-s \$\(MATRIX_ROWS\),\)\n",
                     makefile, flags=re.MULTILINE)
    assert re.search(r"^test-colab: \$\(NOX\)\n\t\$\(NOX\) -s versions=colab\n", makefile, flags=re.MULTILINE)


COLAB_CHECK = '"scripts/colab_check.py"'


def test_weekly_workflow_runs_the_latest_row():
    workflow = (ROOT / ".github" / "workflows" / "weekly-latest.yml").read_text()
    assert re.search(r"^\s+- cron: ", workflow, flags=re.MULTILINE)
    assert "make test-matrix MATRIX_ROWS=versions=latest" in workflow


def test_every_subpackage_ships_with_the_package():
    """A plain `pip install .` (Binder, Colab) installs only the packages pyproject lists."""
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = sorted(".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nodeutils").rglob("__init__.py"))
    assert sorted(listed) == found
