"""The notebooks' exercise cells: each passes its check with the reference solution, and the stored notebook shows
every exercise unanswered and no solution.

For a notebook with cells tagged ``exercise``, a copy is made in which each such cell holds its exercise's solution
followed by the cell's ``.check(`` line; the copy's ``setup`` cells (the imports) and those exercise cells run in a
fresh kernel, with this checkout first on the path, and every check must print "correct". A notebook's exercises
come from ``nodeutils.exercises.notebookNN``, NN being the first two characters of its file name.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
import textwrap
import types
from pathlib import Path

import nbformat
import pytest

from nodeutils.exercises import Exercise, ____, notebook01

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHECK_CALL = re.compile(r"\b(\w+)\.(\w+)\.check\(")


# --------------------------------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------------------------------
def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The notebook's code cells tagged ``exercise``, in order."""
    return [c for c in nb.cells if c.cell_type == "code" and "exercise" in _tags(c)]


def exercise_module(path: Path) -> types.ModuleType:
    """``nodeutils.exercises.notebookNN`` for the notebook at ``path`` (``NN_title.ipynb``)."""
    return importlib.import_module(f"nodeutils.exercises.notebook{path.name[:2]}")


def check_lines(cell: dict) -> list[str]:
    """The lines of an exercise cell that call ``.check(``."""
    return [line for line in cell.source.splitlines() if CHECK_CALL.search(line)]


def exercises_checked(cell: dict, module: types.ModuleType) -> list[Exercise]:
    """The exercises an exercise cell checks, one per ``<alias>.<name>.check(`` line."""
    lines = check_lines(cell)
    assert lines, f"an exercise cell needs a line calling .check(; this one has none:\n{cell.source}"
    found = []
    for line in lines:
        name = CHECK_CALL.search(line).group(2)
        exercise = getattr(module, name, None)
        assert isinstance(exercise, Exercise), f"{module.__name__} has no exercise named {name!r} (cell: {line!r})"
        found.append(exercise)
    return found


def printed(cell: dict) -> str:
    """The text a code cell shows: its streams and the plain text of its results."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(p if isinstance(p, str) else "".join(p) for p in parts)


def filled_notebook(nb: nbformat.NotebookNode, module: types.ModuleType) -> nbformat.NotebookNode:
    """A copy with only the setup cells and the exercise cells, each exercise cell holding its solution.

    A first cell puts this checkout at the front of ``sys.path``; outputs are cleared.
    """
    path_cell = nbformat.v4.new_code_cell(f"import sys\nsys.path.insert(0, {str(ROOT)!r})")
    cells = [path_cell]
    for cell in nb.cells:
        tags = _tags(cell)
        if cell.cell_type != "code" or not ({"setup", "exercise"} & set(tags)):
            continue
        cell = copy.deepcopy(cell)
        cell.outputs, cell.execution_count = [], None
        if "exercise" in tags:
            solutions = dict.fromkeys(e.solution_text for e in exercises_checked(cell, module))
            cell.source = "".join(solutions) + "\n".join(check_lines(cell)) + "\n"
        cells.append(cell)
    filled = copy.deepcopy(nb)
    filled.cells = cells
    return filled


def execute(nb: nbformat.NotebookNode, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh kernel of this Python, in ``cwd``, with this checkout first on PYTHONPATH."""
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("NODEUTILS_STATIC_VIEWS", "1")
    nb = copy.deepcopy(nb)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def stored_problems(nb: nbformat.NotebookNode, module: types.ModuleType) -> list[str]:
    """What is wrong with the stored outputs: a solution shown, or an exercise cell not printing "not answered yet"."""
    solutions = [(e, e.solution_text.strip()) for e in vars(module).values() if isinstance(e, Exercise)]
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = printed(cell)
        problems += [f"cell {index} shows the solution of exercise {e.number}" for e, s in solutions if s in text]
        if "exercise" in _tags(cell) and "not answered yet" not in text:
            problems.append(f"exercise cell {index} does not print 'not answered yet' as stored")
    return problems


def _notebook_with_exercises(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    if not exercise_cells(nb):
        pytest.skip(f"{path.name} has no cells tagged 'exercise' yet")
    return nb


# --------------------------------------------------------------------------------------------------------------
# The notebooks
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_exercise_passes_its_check_with_the_solution(path, tmp_path, monkeypatch):
    nb = _notebook_with_exercises(path)
    ran = execute(filled_notebook(nb, exercise_module(path)), tmp_path, monkeypatch)
    for cell in exercise_cells(ran):
        verdicts = printed(cell).count(": correct. ")
        assert verdicts == len(check_lines(cell)), f"{path.name}: {cell.source}\nprinted: {printed(cell)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_notebook_shows_exercises_unanswered_and_no_solution(path):
    nb = _notebook_with_exercises(path)
    assert stored_problems(nb, exercise_module(path)) == []


# --------------------------------------------------------------------------------------------------------------
# The harness itself, on a small notebook built here
# --------------------------------------------------------------------------------------------------------------
EXERCISE_SOURCE = textwrap.dedent("""\
    def euler_step(f, u, h):
        return ____            # your code: the state after one Euler step of size h
    exercises.euler_step.check(euler_step)""")


def _cell(kind: str, source: str, tags: tuple[str, ...] = (), text: str | None = None) -> nbformat.NotebookNode:
    if kind == "markdown":
        return nbformat.v4.new_markdown_cell(source)
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})
    if text is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


def synthetic_notebook(stored_text: str | None = None) -> nbformat.NotebookNode:
    """A notebook as a chapter would hold an exercise: imports tagged setup, other cells, one exercise cell."""
    unanswered = notebook01.euler_step.verdict(____) + "\n"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        _cell("markdown", "# A chapter"),
        _cell("code", "import torch\nfrom nodeutils.exercises import ____, notebook01 as exercises", ("setup",)),
        _cell("code", "raise RuntimeError('only setup and exercise cells run in the check')"),
        _cell("markdown", "## Exercises\n\nA hint: `exercises.euler_step.hint()`."),
        _cell("code", EXERCISE_SOURCE, ("exercise",), unanswered if stored_text is None else stored_text),
        _cell("code", "# exercises.euler_step.solution()"),
    ]
    return nb


def test_the_harness_fills_exercise_cells_and_keeps_only_setup_and_exercises():
    filled = filled_notebook(synthetic_notebook(), notebook01)
    sources = [c.source for c in filled.cells]
    assert len(sources) == 3 and sources[0].startswith("import sys\nsys.path.insert(0, ")
    assert sources[1].startswith("import torch\n")
    assert sources[2] == notebook01.euler_step.solution_text + "exercises.euler_step.check(euler_step)\n"
    assert all(c.outputs == [] for c in filled.cells)


def test_the_harness_finds_stored_solutions_and_answered_exercises():
    assert stored_problems(synthetic_notebook(), notebook01) == []
    solution_shown = synthetic_notebook()
    solution_shown.cells[-1].outputs = [nbformat.v4.new_output(
        "stream", name="stdout", text="# Exercise 1 · ...: reference solution\n" + notebook01.euler_step.solution_text)]
    assert stored_problems(solution_shown, notebook01) == ["cell 5 shows the solution of exercise 1"]
    answered = synthetic_notebook(stored_text="Exercise 1 · one Euler step as a residual block: correct. ...\n")
    assert stored_problems(answered, notebook01) == ["exercise cell 4 does not print 'not answered yet' as stored"]


def test_the_harness_reports_a_check_line_it_cannot_resolve():
    nb = synthetic_notebook()
    nb.cells[4].source = "exercises.no_such_exercise.check(euler_step)"
    with pytest.raises(AssertionError, match="has no exercise named 'no_such_exercise'"):
        filled_notebook(nb, notebook01)


def test_the_harness_runs_a_notebook_in_a_fresh_kernel(tmp_path, monkeypatch):
    """One kernel: the filled notebook's checks print correct; the stored exercise cell, run as it stands, prints
    what is stored; an error in a cell is reported with the line inside that cell and no machine path."""
    nb = synthetic_notebook()
    filled = filled_notebook(nb, notebook01)
    as_stored = copy.deepcopy(nb.cells[4])
    as_stored.outputs = []
    raising = _cell("code", "def euler_step(f, u, h):\n    k = f(u.T)\n    return u + h * k\n"
                            "exercises.euler_step.check(euler_step)")
    filled.cells += [as_stored, raising]
    ran = execute(filled, tmp_path, monkeypatch)
    filled_cell, stored_cell, raising_cell = ran.cells[2], ran.cells[3], ran.cells[4]
    assert printed(filled_cell).startswith("Exercise 1 · one Euler step as a residual block: correct. ")
    assert printed(stored_cell) == printed(nb.cells[4])
    report = printed(raising_cell)
    assert all(o.output_type == "stream" for o in raising_cell.outputs)  # the cell did not fail
    assert "your code raised RuntimeError: " in report  # torch 2.15 prefixes its shape message with "mm: "
    assert "mat1 and mat2 shapes cannot be multiplied (3x4 and 3x3) (line 2: k = f(u.T)). " in report
    assert report.count("\n") == 1 and "Traceback" not in report and "ipykernel" not in report and "/" not in report
