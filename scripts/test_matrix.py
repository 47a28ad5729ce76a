"""Run the notebook tests under several CPU settings (and on CUDA when present); print a table.

Each row re-runs ``pytest --nbval notebooks/`` in a fresh process with one setting changed:
the number of intra-op threads (``OMP_NUM_THREADS``), the CPU kernels PyTorch dispatches to
(``ATEN_CPU_CAPABILITY``: plain C++, AVX2 or AVX-512) or the device the notebooks train on
(``NODEUTILS_DEVICE=cuda``). The stored outputs are the same for every row, so every cell must pass
in every row. Usage::

    python scripts/test_matrix.py                      # every row this machine supports
    python scripts/test_matrix.py --rows threads=1 kernels=default
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
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


def run_row(row: str, notebooks: list[str]) -> tuple[dict[str, list[int]], float]:
    """Run nbval with the row's setting; return {notebook: [passed, failed]} and the wall time."""
    env = {**os.environ, **ROWS[row]}
    with tempfile.TemporaryDirectory() as tmp:
        # Each row starts with an empty torch.compile cache, like a new machine: kernels that inductor compiled
        # and cached under one ATEN_CPU_CAPABILITY fail to build when reused under another.
        env["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")
        report = Path(tmp) / "report.xml"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval", "-p", "no:cacheprovider",
                        f"--junitxml={report}", *notebooks], cwd=ROOT, env=env, check=False,
                       stdout=subprocess.DEVNULL if not os.environ.get("MATRIX_VERBOSE") else None)
        elapsed = time.perf_counter() - start
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        if report.exists():
            for case in ET.parse(report).getroot().iter("testcase"):
                notebook = notebook_of(case.get("classname", ""), case.get("file"))
                failed = any(child.tag in ("failure", "error") for child in case)
                counts[notebook][1 if failed else 0] += 1
    return dict(counts), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS),
                        help="settings to run (default: all that this machine supports)")
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
        counts, times[row] = run_row(row, notebooks)
        results[row] = counts
        passed = sum(c[0] for c in counts.values())
        failed = sum(c[1] for c in counts.values())
        print(f"{row}: {passed} cells passed, {failed} failed ({times[row]:.0f} s)", flush=True)

    width = max(len(n) for n in names + ["notebook"])
    ran = [r for r in args.rows if isinstance(results[r], dict)]
    print()
    print("notebook".ljust(width) + "".join(f"  {r:>16}" for r in ran))
    bad = False
    for name in names:
        cells = []
        for r in ran:
            p, f = results[r].get(name, [0, 0])  # type: ignore[union-attr]
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
