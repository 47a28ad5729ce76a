"""The command line: ``python -m nodeutils train`` prints the tutorial's table; each bad value ends in one
``error: ...`` line (status 2) that names the argument and the fix, never a traceback. In-process where possible;
the Ctrl-C tests are in test_interrupts.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from helpers import fake_mnist_files

from nodeutils.cli import build_parser, main


def test_help_documents_every_flag():
    parser = build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    text = train_parser.format_help()
    for flag in ("--layer", "--device", "--epochs", "--subset", "--source", "--seed", "--sensealg", "--vjp",
                 "--structured-params", "--batch-size", "--lr", "--no-progress"):
        assert flag in text
    for action in train_parser._actions:
        assert action.help, action.dest


def test_train_command_prints_the_table(capsys):
    assert main(["train", "--epochs", "2", "--subset", "300", "--layer", "stateful", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[1/2]\tTime ") and out[1].startswith("[2/2]\tTime ")
    assert "layer=stateful" in out[2] and "train/test images=270/30" in out[2]


def test_user_errors_exit_with_status_2_and_a_message(capsys):
    assert main(["train", "--subset", "99999", "--no-progress"]) == 2
    assert "error: subset=99999 asks for more images" in capsys.readouterr().err


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "nodeutils", "train", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and re.search(r"--sensealg \{autograd,backsolve", done.stdout)


def cli_error(capsys, *argv: str) -> str:
    """Run ``nodeutils train *argv`` in-process; assert it returns status 2 and return what it printed to stderr."""
    assert main(["train", *argv, "--no-progress"]) == 2
    return capsys.readouterr().err


def run_cli(*args: str, env: dict | None = None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """``python -m nodeutils train`` for one epoch on 100 images, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "nodeutils", "train", "--epochs", "1", "--subset", "100",
                           "--no-progress", *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


# argparse checks types and choices; the range rules are the library's, whose message the CLI prints.
BAD_FLAGS = [
    pytest.param(["--subset", "2"], ["subset=2 with train_split=0.9 leaves 2 training and 0 test images",
                                     "at least 5 images"], id="subset too small"),
    pytest.param(["--sensealg", "autograd", "--vjp", "jacobian"],
                 ["vjp='jacobian' has no effect with the 'autograd' algorithm", "interpolating, quadrature or gauss"],
                 id="vjp ignored by the algorithm"),
    pytest.param(["--data-dir", "/tmp"], ["root='/tmp' is only used by source='torchvision'"],
                 id="data-dir without torchvision source"),
    pytest.param(["--epochs", "0"], ["epochs must be a positive integer; got 0"], id="zero epochs"),
    pytest.param(["--threads", "0"], ["--threads=0 is not a usable number of threads"], id="zero threads"),
    pytest.param(["--lr=-1"], ["lr must be a positive finite number", "got -1.0"], id="negative learning rate"),
]


@pytest.mark.parametrize("argv, fragments", BAD_FLAGS)
def test_bad_flag_is_refused_in_one_line_with_the_argument_and_the_fix(argv, fragments, capsys):
    err = cli_error(capsys, *argv)
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line, no traceback
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_corrupt_data_dir_file_is_named(tmp_path, capsys):
    raw = fake_mnist_files(tmp_path)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03 not labels")
    status = main(["train", "--source", "torchvision", "--data-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "error: " in err and "train-labels-idx1-ubyte is not an MNIST labels file" in err


@pytest.mark.filterwarnings("default:the test split has only")
def test_huge_learning_rate_prints_a_one_line_warning(capsys):
    main(["train", "--lr", "1e6", "--subset", "60", "--epochs", "1", "--sensealg", "autograd", "--no-progress"])
    err = capsys.readouterr().err
    assert "warning: lr=1e+06 is far above the usual range for Adam" in err
    assert "warning: the test split has only 6 images" in err


@pytest.mark.parametrize("args, env", [(["--threads", "100000"], None), ([], {"OMP_NUM_THREADS": "abc"}),
                                       ([], {"OMP_NUM_THREADS": "0"})])
def test_thread_errors_are_one_line(args, env):
    done = run_cli(*args, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error:" in done.stderr and "threads" in done.stderr


def test_empty_data_dir_is_one_line():
    done = run_cli("--source", "torchvision", "--data-dir", "")
    assert done.returncode == 2 and "empty" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_one_line():
    with open("/dev/full", "w") as full:
        done = run_cli(stdout=full)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "No space left" in done.stderr
