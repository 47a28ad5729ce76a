"""Ctrl-C on the command line: a real SIGINT sent to ``python -m nodeutils train`` in a subprocess."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="sends SIGINT to a subprocess "
                                "and watches it load through /proc (Linux)")

TRAIN = [sys.executable, "-m", "nodeutils", "train", "--subset", "600", "--epochs", "50", "--sensealg", "autograd",
         "--no-progress"]


def _interrupt(after_line: bool) -> tuple[int, str, str]:
    """Start training, send SIGINT (after the first epoch's row, or while the package loads), collect the output."""
    process = subprocess.Popen(TRAIN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        if after_line:
            first = process.stdout.readline()
            assert first.startswith("[1/50]\tTime "), first
        else:  # wait until the package has started importing torch (its shared library is being mapped)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "libtorch" not in Path(f"/proc/{process.pid}/maps").read_text():
                time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, out, err


def test_ctrl_c_during_training_prints_one_line_and_exits_130():
    status, out, err = _interrupt(after_line=True)
    assert status == 130, (status, out, err)
    assert err == "", (out, err)
    rows = [line for line in out.splitlines() if line.startswith("[")]  # epochs that ended before the signal
    others = [line for line in out.splitlines() if not line.startswith("[")]
    assert len(others) == 1, out  # exactly one line besides the table
    m = re.fullmatch(r"interrupted at epoch (\d+)/50 \((\d+) epochs? finished\)", others[0])
    assert m and int(m.group(2)) == len(rows) + 1 == int(m.group(1)) - 1, out


def test_ctrl_c_while_the_package_loads_prints_one_line_and_exits_130():
    status, out, err = _interrupt(after_line=False)
    assert status == 130, (status, out, err)
    assert out == "", (out, err)
    assert err.strip() in ("interrupted while loading nodeutils", "interrupted before training started"), err


def test_a_reader_that_goes_away_ends_training_without_a_traceback():
    process = subprocess.Popen(TRAIN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("[1/50]")
        process.stdout.close()  # like `python -m nodeutils train ... | head -1`
        err = process.stderr.read()
        assert process.wait(timeout=120) == 1, err
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in err, err
