"""Run every notebook as Colab would, in a Colab-like environment (``make test-colab`` builds it and runs this).

For each notebook, in the environment of the interpreter that runs this script:

1. make sure nodeutils is not installed (as on a fresh Colab runtime), and log the preinstalled versions;
2. start a kernel in which ``google.colab`` is already imported (a stand-in module, loaded by an IPython startup
   file, as Colab's kernel does) and ``NODEUTILS_SOURCE`` points at this clone (``file://...``);
3. execute the notebook top to bottom: its setup cell, exactly as stored, installs nodeutils, and the cells after it
   import and use it in the same kernel;
4. check: no cell failed, the setup cell installed from the given source into this environment (not the clone),
   no preinstalled version changed (logged before and after), the explorers that the notebook creates build their
   ipywidgets under this environment's ipywidgets, and the kernel's peak memory stays under the limit.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import textwrap
from importlib import metadata
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_badges  # noqa: E402
import notebook_memory  # noqa: E402

ROOT = make_badges.ROOT
# Colab's preinstalled packages that installing nodeutils must leave alone, and the ones the notebooks rely on.
WATCHED = ("torch", "torchvision", "ipywidgets", "matplotlib", "numpy", "tqdm", "pandas", "scipy", "ipykernel",
           "ipython", "traitlets", "widgetsnbextension", "jupyterlab_widgets")
FAKE_COLAB = '''"""Stand-in for Google Colab's ``google.colab`` package: the notebooks only test that it is imported."""
'''
# Run inside the kernel after the notebook's own cells: what Colab's user would see in that same session.
CHECK_CELL = textwrap.dedent('''
    import json, sys
    from importlib import metadata
    import ipywidgets, torch
    import nodeutils
    from nodeutils import widgets as _w
    _explorers = {name: value for name, value in dict(globals()).items()
                  if isinstance(value, (_w.TrajectoryExplorer, _w.ToleranceExplorer, _w.MistakeExplorer))}
    print("NOTEBOOK-REPORT " + json.dumps({
        "google_colab_imported": "google.colab" in sys.modules,
        "nodeutils_file": nodeutils.__file__,
        "nodeutils_version": metadata.version("nodeutils"),
        "torch": torch.__version__, "ipywidgets": ipywidgets.__version__,
        "explorers": {name: [type(value).__name__, type(value.widget).__name__, type(value.widget).__module__]
                      for name, value in _explorers.items()},
    }))
''')


def versions() -> dict[str, str]:
    out = {}
    for name in WATCHED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def nodeutils_installed() -> bool:
    try:
        metadata.version("nodeutils")
        return True
    except metadata.PackageNotFoundError:
        return False


def uninstall_nodeutils() -> None:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "nodeutils"], check=True)


def fake_colab_kernel(workdir: Path) -> None:
    """Kernels started from now on import a stand-in ``google.colab`` before the first cell, as on Colab."""
    package = workdir / "site" / "google" / "colab"  # no google/__init__.py: a namespace package, like Google's
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_COLAB)
    startup = workdir / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-google-colab.py").write_text("import google.colab  # noqa: F401\n")
    os.environ["PYTHONPATH"] = str(workdir / "site")
    os.environ["IPYTHONDIR"] = str(workdir / "ipython")
    notebook_memory.use_this_interpreter_as_kernel(workdir / "jupyter")


def setup_cell_index(nb: nbformat.NotebookNode) -> int:
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    if not nb.cells[first_code].source.startswith(make_badges.SETUP_MARK):
        raise SystemExit("the first code cell is not the setup cell: run `make badges`")
    return first_code


def check_notebook(path: Path, source: str) -> tuple[list[str], notebook_memory.NotebookRun]:
    """Run one notebook the Colab way; return the problems found (empty when all is well) and the run."""
    problems = []
    if nodeutils_installed():
        uninstall_nodeutils()
    if importlib.util.find_spec("nodeutils") is not None or nodeutils_installed():
        return [f"nodeutils is importable before the setup cell ran: {importlib.util.find_spec('nodeutils')}"], None
    before = versions()
    print(f"\n== {path.name}\nbefore: " + ", ".join(f"{k} {v}" for k, v in before.items()), flush=True)

    nb = nbformat.read(path, as_version=4)
    setup = setup_cell_index(nb)
    run = notebook_memory.execute(path, extra_cells=(CHECK_CELL,))
    after = versions()
    print("after:  " + ", ".join(f"{k} {v}" for k, v in after.items()), flush=True)
    changed = {k: (before[k], after[k]) for k in WATCHED if before[k] != after[k]}
    if changed:
        problems.append(f"installing nodeutils changed preinstalled packages: {changed}")

    setup_output = "".join(out.get("text", "") for out in run.notebook.cells[setup].outputs)
    print(f"setup cell printed: {setup_output.strip()!r}")
    if f"nodeutils installed from {source}" not in setup_output:
        problems.append(f"the setup cell did not install from {source}: it printed {setup_output!r}")
    report = next((r for r in run.reports if "nodeutils_file" in r), None)
    if report is None:
        return problems + ["the check cell after the notebook reported nothing"], run
    print(f"same kernel: google.colab imported {report['google_colab_imported']}, nodeutils "
          f"{report['nodeutils_version']} from {report['nodeutils_file']}, torch {report['torch']}, "
          f"ipywidgets {report['ipywidgets']}")
    if not report["google_colab_imported"]:
        problems.append("google.colab was not imported in the kernel: the check did not look like Colab")
    if not Path(report["nodeutils_file"]).is_relative_to(Path(sys.prefix)):
        problems.append(f"nodeutils was imported from {report['nodeutils_file']}, not from this environment")
    if report["ipywidgets"] != before["ipywidgets"] or report["torch"].split("+")[0] != before["torch"].split("+")[0]:
        problems.append(f"the kernel runs torch {report['torch']} / ipywidgets {report['ipywidgets']}, "
                        f"not the preinstalled {before['torch']} / {before['ipywidgets']}")

    source_text = "".join(c.source for c in nb.cells if c.cell_type == "code")
    kinds = ("TrajectoryExplorer", "ToleranceExplorer", "MistakeExplorer")
    expected = {kind for kind in kinds if f"{kind}(" in source_text}
    built = {kind for kind, widget, module in report["explorers"].values() if widget == "VBox"}
    for name, (kind, widget, module) in report["explorers"].items():
        print(f"explorer {name}: {kind} -> {module}.{widget}")
    if expected - built:
        problems.append(f"explorers not built as ipywidgets: {sorted(expected - built)}")

    stderr = [(i, text) for i, text in run.stderr() if i != setup]  # pip may warn, e.g. when run as root
    for i, text in run.stderr():
        print(f"stderr of cell {i}: {text.strip()[:500]}")
    if stderr:
        problems.append(f"cells printed to stderr: {[i for i, _ in stderr]}")
    print(f"ran in {run.seconds:.0f} s; {notebook_memory.describe(run)}")
    if run.peak_data_mb >= notebook_memory.LIMIT_MB:
        problems.append(f"peak data {run.peak_data_mb:,.0f} MB is over {notebook_memory.LIMIT_MB} MB")
    return problems, run


def readme_note(runs: list[notebook_memory.NotebookRun]) -> str:
    report = next(r for r in runs[0].reports if "torch" in r)
    cores = len(os.sched_getaffinity(0))
    return (f"Measured by `make test-colab` (Python {sys.version.split()[0]}, torch {report['torch'].split('+')[0]} "
            f"from PyPI, ipywidgets {report['ipywidgets']}, {cores} CPU cores). {notebook_memory.METHOD} "
            "`make memory` measures the same in `.venv` (ipywidgets 8).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--source", default=ROOT.as_uri(),
                        help="what the setup cells install (NODEUTILS_SOURCE); default: this clone as a file:// URL")
    parser.add_argument("--readme", action="store_true", help="write the memory table into docs/book/run-it.md")
    args = parser.parse_args(argv)
    if sys.prefix == sys.base_prefix:
        raise SystemExit("run this with a virtual environment's Python (make test-colab builds one): it installs "
                         "and uninstalls nodeutils in the environment that runs it")
    os.environ["NODEUTILS_SOURCE"] = args.source
    os.environ.pop("NODEUTILS_STATIC_VIEWS", None)  # Colab has a widget front end
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets ipykernel 6's debugger notice on 3.11
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    print(f"Colab-like check: Python {sys.version.split()[0]} (Colab runs 3.13), environment {sys.prefix}")
    print(f"NODEUTILS_SOURCE={args.source}")
    start = versions()
    failures, runs = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        fake_colab_kernel(Path(tmp))
        for path in paths:
            try:
                problems, run = check_notebook(path, args.source)
            except Exception as e:  # a failing cell: report it with the others
                problems, run = [f"{type(e).__name__}: {str(e)[-2000:]}"], None
            if run is not None:
                runs.append(run)
            if problems:
                failures[path.name] = problems
    end = versions()
    print("\nversions at the start: " + ", ".join(f"{k} {v}" for k, v in start.items()))
    print("versions at the end:   " + ", ".join(f"{k} {v}" for k, v in end.items()))
    if start != end:
        changed = {k: (start[k], end[k]) for k in start if start[k] != end[k]}
        failures["environment"] = [f"versions changed: {changed}"]
    if runs:
        print(notebook_memory.memory_table(runs))
    if args.readme and runs and not failures:
        notebook_memory.write_readme_table(notebook_memory.memory_table(runs), readme_note(runs))
    for name, problems in failures.items():
        for problem in problems:
            print(f"FAILED {name}: {problem}", file=sys.stderr)
    print(f"{len(paths) - len([n for n in failures if n != 'environment'])} passed, "
          f"{len([n for n in failures if n != 'environment'])} failed (notebooks run the Colab way)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
