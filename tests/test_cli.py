import re
import subprocess
import sys

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
