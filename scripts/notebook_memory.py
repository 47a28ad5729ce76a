"""Execute each notebook top to bottom in a fresh kernel and measure the kernel's peak memory.

    .venv/bin/python scripts/notebook_memory.py            # print a table
    .venv/bin/python scripts/notebook_memory.py --readme   # also write it into the book's "Run it" page

Two peaks are measured, over the kernel together with the processes it starts (PyTorch's compile workers, pip),
sampled every 0.1 s as sums of proportional set sizes (PSS: a page shared by n processes counts 1/n in each):

* **data**: anonymous and shared memory (``Pss_Anon + Pss_Shmem``): the tensors, Python objects and heaps the
  notebook creates. Under a container's memory limit (a mybinder.org session) the system cannot drop these
  pages (at most swap them out, where there is swap), so this is the peak that must stay under ``LIMIT_MB``.
  Not measured: files in a memory-backed folder (tmpfs) and the page cache, which a container's limit counts too.
* **all pages**: data plus the pages of mapped files (PyTorch's shared libraries), and at least the kernel process's
  own high-water mark (``ru_maxrss``, exact). File pages are clean: under a memory limit the system drops them and
  reads them again when needed. How many of them are resident depends on the page cache and on the Python build
  (right after ``import torch``, torch 2.11 has about 130 MB more of them resident under Python 3.13 than under
  3.11), so this figure moves between machines.

Each notebook runs as in a new session: a fresh kernel, an empty ``torch.compile`` cache and an empty temporary
folder (where ``torch.compile`` keeps the precompiled C++ header whose first build is notebook 02's largest moment).
The processes at the data peak and their shares are printed, and so is the sum of resident sizes (RSS), which counts
shared libraries once per process. Runs with whatever Python runs this script (its kernel is this interpreter), so
run it in the environment to be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
# A mybinder.org session is capped at 2 GB (1,907 MB of 2^20 bytes if that is 2 x 10^9 bytes). Beside a notebook's
# data the session must hold the pages of PyTorch's libraries (345-721 MB, estimated as all pages minus data) and the
# notebook server (about 85 MB): 1,907 - 721 - 85 leaves about 1,100 MB for the data.
LIMIT_MB = 1100
MEMORY_START, MEMORY_END = "<!-- memory table (scripts/notebook_memory.py) -->", "<!-- end of memory table -->"
REPORT_PREFIX = "NOTEBOOK-REPORT "

# Appended to every notebook in memory only (never saved): it reports from inside the kernel that ran the notebook.
REPORT_CELL = f'''
import json, resource, sys
print({REPORT_PREFIX!r} + json.dumps({{
    "peak_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "python": sys.version.split()[0],
}}))
'''


def _memory(process: psutil.Process) -> tuple[int, int, int]:
    """(resident, proportional, proportional data) bytes of one process. The proportional set size (PSS) charges
    each shared page to the processes that map it in equal parts, so summing it over processes counts shared
    libraries once; its data part is the anonymous and shared memory (no pages of files)."""
    try:
        with open(f"/proc/{process.pid}/smaps_rollup") as f:
            fields = {key: int(value.split()[0]) * 1024 for key, value in (line.split(":", 1) for line in f)
                      if key in ("Rss", "Pss", "Pss_Anon", "Pss_Shmem")}
        data = fields.get("Pss_Anon", fields["Pss"]) + fields.get("Pss_Shmem", 0)  # no split before Linux 5.8
        return fields["Rss"], fields["Pss"], data
    except (OSError, KeyError, ValueError):
        rss = process.memory_info().rss  # no smaps_rollup (not Linux, or an old kernel): RSS over-counts sharing
        return rss, rss, rss


def _short_name(process: psutil.Process) -> str:
    """``kernel`` for the kernel, else the process's name and the module it runs (``python -m <module>``)."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return "?"
    if "ipykernel_launcher" in command:
        return "kernel"
    module = command[command.index("-m") + 1] if "-m" in command[:-1] else ""
    return " ".join(filter(None, [Path(command[0]).name if command else process.name(), module]))[:60]


class _TreeSampler(threading.Thread):
    """Samples the memory of a process and all its descendants until stopped; keeps the maxima of the sums."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.process, self.interval = psutil.Process(pid), interval
        self.peak_rss = self.peak_pss = self.peak_data = 0
        self.peak_data_parts: Counter[str] = Counter()  # data bytes per process name at the data peak
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
            except psutil.Error:
                return
            rss = pss = data = 0
            parts = []
            for p in tree:
                try:
                    r, q, d = _memory(p)
                    parts.append((p, d))
                except psutil.Error:
                    continue
                rss, pss, data = rss + r, pss + q, data + d
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            if data > self.peak_data:
                # name the processes only at a new peak: reading each command line every 0.1 s is needless I/O
                self.peak_data, self.peak_data_parts = data, Counter()
                for p, d in parts:
                    self.peak_data_parts[_short_name(p)] += d
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class NotebookRun:
    """What one top-to-bottom execution produced."""

    path: Path
    notebook: nbformat.NotebookNode
    seconds: float
    peak_tree_mb: float  # kernel and child processes, PSS summed
    peak_tree_rss_mb: float  # the same with RSS summed: shared pages counted once per process, an over-estimate
    peak_data_mb: float  # kernel and child processes, anonymous and shared memory (PSS) summed: no file pages
    peak_data_parts: Counter[str] = field(default_factory=Counter)  # MB per process name at that peak
    reports: list[dict] = field(default_factory=list)

    @property
    def peak_self_mb(self) -> float:
        return max([0.0] + [r["peak_self_mb"] for r in self.reports if "peak_self_mb" in r])

    @property
    def peak_mb(self) -> float:
        """All pages: the larger of the kernel process's own peak RSS and the peak PSS of the kernel with its
        children."""
        return max(self.peak_tree_mb, self.peak_self_mb)

    def stderr(self) -> list[tuple[int, str]]:
        """(cell index, text) of every stderr stream the executed notebook printed."""
        return [(i, out.get("text", "")) for i, cell in enumerate(self.notebook.cells) if cell.cell_type == "code"
                for out in cell.get("outputs", [])
                if out.get("output_type") == "stream" and out.get("name") == "stderr"]


def execute(path: Path, extra_cells: tuple[str, ...] = (), timeout: int = 900) -> NotebookRun:
    """Run the notebook in a fresh kernel of this interpreter (working directory: its folder), then ``extra_cells``.

    Raises nbclient's CellExecutionError, naming the cell, if any cell raises. Outputs are kept in memory only.
    """
    nb = nbformat.read(path, as_version=4)
    n_own = len(nb.cells)
    for source in (*extra_cells, REPORT_CELL):
        nb.cells.append(nbformat.v4.new_code_cell(source))
    sampler: list[_TreeSampler] = []

    def start_sampling(**_: object) -> None:
        sampler.append(_TreeSampler(client.km.provisioner.process.pid))
        sampler[0].start()

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}, on_notebook_start=start_sampling)
    start = time.perf_counter()
    saved = {name: os.environ.get(name) for name in ("TORCHINDUCTOR_CACHE_DIR", "TMPDIR")}
    with tempfile.TemporaryDirectory() as fresh:
        # As in a new Binder or Colab session, torch.compile finds nothing compiled: an empty kernel cache, and an
        # empty temporary folder, where it keeps the precompiled C++ header it builds on first use (outside
        # TORCHINDUCTOR_CACHE_DIR, in tempfile.gettempdir()/torchinductor_<user>/precompiled_headers). Building that
        # header runs the C++ compiler for 375-500 MB (torch 2.11-2.14); a run that finds it skips that and
        # under-states the peak.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(fresh) / "inductor")
        os.environ["TMPDIR"] = str(Path(fresh) / "tmp")
        Path(os.environ["TMPDIR"]).mkdir()
        try:
            client.execute()
        finally:
            if sampler:
                sampler[0].stop()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    seconds = time.perf_counter() - start
    reports = []
    for cell in nb.cells[n_own:]:
        for out in cell.outputs:
            if out.get("output_type") == "stream":
                for line in out.get("text", "").splitlines():
                    if line.startswith(REPORT_PREFIX):
                        reports.append(json.loads(line[len(REPORT_PREFIX):]))
    peaks = ((sampler[0].peak_pss / 2**20, sampler[0].peak_rss / 2**20, sampler[0].peak_data / 2**20) if sampler
             else (0.0, 0.0, 0.0))
    parts = Counter({name: data / 2**20 for name, data in sampler[0].peak_data_parts.items()}) if sampler else Counter()
    return NotebookRun(path, nb, seconds, *peaks, peak_data_parts=parts, reports=reports)


def use_this_interpreter_as_kernel(workdir: Path) -> None:
    """Make kernel "python3" this interpreter whatever kernelspecs the machine has (JUPYTER_PATH is searched first)."""
    spec = workdir / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(workdir), *filter(None, [os.environ.get("JUPYTER_PATH")])])


def describe(run: NotebookRun) -> str:
    at_peak = " + ".join(f"{name} {mb:,.0f}" for name, mb in run.peak_data_parts.most_common())
    return (f"peak data {run.peak_data_mb:,.0f} MB ({at_peak}), all pages {run.peak_mb:,.0f} MB (kernel process "
            f"{run.peak_self_mb:,.0f} MB; with its child processes {run.peak_tree_mb:,.0f} MB PSS, "
            f"{run.peak_tree_rss_mb:,.0f} MB RSS summed)")


def memory_table(runs: list[NotebookRun]) -> str:
    rows = [f"| `{r.path.name}` | {r.peak_data_mb:,.0f} MB | {r.peak_mb:,.0f} MB |" for r in runs]
    return ("| notebook | peak data | peak with library pages |\n| --- | --- | --- |\n"
            + "\n".join(rows))


METHOD = ("Each notebook ran in a fresh kernel with an empty torch.compile cache and an empty temporary folder, as in "
          "a new session. Both figures cover the kernel with its child processes, sampled every 0.1 s: *data* is "
          "their anonymous and shared memory (PSS), which the system cannot drop; *with library pages* adds the "
          "pages of mapped files such as PyTorch's libraries (the larger of that PSS and the kernel process's own "
          "peak RSS), which it can drop and read again. MB = 2^20 bytes.")
RUN_IT_PAGE = ROOT / "docs" / "book" / "run-it.md"  # the book's "Run it" page holds the table (it left README.md)


def write_readme_table(table: str, note: str, readme: Path = RUN_IT_PAGE) -> None:
    """Write the table and its note between the memory-table markers of the book's "Run it" page."""
    text = readme.read_text(encoding="utf-8")
    if text.count(MEMORY_START) != 1 or text.count(MEMORY_END) != 1:
        raise SystemExit(f"{readme.name} needs one memory table block between {MEMORY_START!r} and {MEMORY_END!r}")
    head, rest = text.split(MEMORY_START)
    _, tail = rest.split(MEMORY_END)
    readme.write_text(f"{head}{MEMORY_START}\n{table}\n\n{note}\n{MEMORY_END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--readme", action="store_true", help="write the table into docs/book/run-it.md")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        use_this_interpreter_as_kernel(Path(tmp))
        for path in paths:
            run = execute(path.resolve())
            print(f"{path.name}: {run.seconds:.0f} s, {describe(run)}", flush=True)
            runs.append(run)
    table = memory_table(runs)
    print(table)
    too_big = [r.path.name for r in runs if r.peak_data_mb >= LIMIT_MB]
    if args.readme:
        import torch  # only for the note: which build was measured

        note = (f"Measured by `make memory` (`scripts/notebook_memory.py`: Python {runs[0].reports[0]['python']}, "
                f"torch {torch.__version__.split('+')[0]} from PyPI, {len(os.sched_getaffinity(0))} CPU cores). "
                f"{METHOD}")
        write_readme_table(table, note)
    if too_big:
        print(f"data over {LIMIT_MB} MB: {', '.join(too_big)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
