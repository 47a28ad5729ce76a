"""Command line: ``python -m nodeutils train ...`` trains the tutorial model and prints its table.

Ctrl-C at any point ends the program with one line (``interrupted at epoch 2/9``) and exit status 130.
This module imports only the standard library at the top, so :func:`exit_quietly_on_interrupt` can
be installed before PyTorch loads. argparse reads each flag's type and choices; the values themselves are
checked by :func:`~nodeutils.training.train`, whose message is printed as ``error: ...`` (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence

#: Exit status after Ctrl-C (128 + SIGINT, what shells report for an interrupted program).
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2


def exit_quietly_on_interrupt() -> None:
    """Make Ctrl-C while the package loads print one line and exit with status 130 (no traceback)."""

    def interrupted(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # we are leaving: a second Ctrl-C must not kill us mid-exit
        try:
            os.write(sys.stderr.fileno(), b"interrupted while loading nodeutils\n")
        except (OSError, ValueError):
            pass
        # Nothing has been written or opened yet, so exit at once: an exception raised here could surface inside
        # an extension module's initialisation (e.g. PyTorch's) as an ImportError with a traceback.
        os._exit(EXIT_INTERRUPTED)

    try:
        signal.signal(signal.SIGINT, interrupted)
    except ValueError:  # not the main thread: keep Python's default
        pass


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m nodeutils``.

    Returns:
        The parser, with one subcommand, ``train``.
    """
    from .data import SOURCES
    from .initialisation import INITIALISATIONS
    from .layers import LAYERS
    from .sensitivity import SENSEALG_NAMES, VJP_CHOICES

    parser = argparse.ArgumentParser(prog="python -m nodeutils",
                                     description="Neural ODE on MNIST: the tutorial's model in PyTorch.")
    commands = parser.add_subparsers(dest="command", required=True)
    tr = commands.add_parser("train", help="train the tutorial model and print one row per epoch",
                             description="Train Flatten -> Linear(784,20,tanh) -> Neural ODE -> Linear(20,10) "
                                         "with Adam and print the tutorial's per-epoch table. Ctrl-C stops it "
                                         "with one line and exit status 130.")
    tr.add_argument("--layer", choices=list(LAYERS), default="class",
                    help="ODE layer style: class-based, compact (function-defined) or stateful (default: class)")
    tr.add_argument("--device", default=None,
                    help="cpu, cuda, cuda:N or auto (CUDA when available) (default: $NODEUTILS_DEVICE, else cpu)")
    tr.add_argument("--epochs", type=int, default=9,
                    help="number of epochs (default: 9)")
    tr.add_argument("--subset", type=int, default=None,
                    help="use only the first N images (default: 1500 when CI=true, else every image of the source)")
    tr.add_argument("--source", choices=list(SOURCES), default="embedded",
                    help="embedded: the 5,000 MNIST images shipped with nodeutils; torchvision: the full "
                         "60,000-image training set, read from (or downloaded into) DATA_DIR/MNIST/raw "
                         "(default: embedded)")
    tr.add_argument("--data-dir", default=None, metavar="DATA_DIR",
                    help="folder of the torchvision source (default: ./data)")
    tr.add_argument("--seed", type=int, default=0,
                    help="seed of the weights and the batch order (default: 0)")
    tr.add_argument("--init", choices=list(INITIALISATIONS), default="lux",
                    help="initial weights: lux draws them as the tutorial's Lux model does, torch as PyTorch's "
                         "nn.Linear does (default: lux)")
    tr.add_argument("--ode-dtype", choices=["float64", "float32"], default="float64",
                    help="dtype of the network inside the ODE and of its solve: float64 keeps float32 rounding out "
                         "of the step-size control, so every CPU prints the same table; float32 is the tutorial's "
                         "all-Float32 model (default: float64)")
    tr.add_argument("--sensealg", choices=list(SENSEALG_NAMES), default=None,
                    help="how gradients flow through the ODE solve (default: interpolating, as in the tutorial)")
    tr.add_argument("--vjp", choices=list(VJP_CHOICES), default=None,
                    help="vector-Jacobian products of the continuous adjoints interpolating, quadrature and gauss "
                         "(default: autograd)")
    tr.add_argument("--structured-params", action="store_true",
                    help="hand the solver the parameters in their own shapes instead of one flat vector")
    tr.add_argument("--batch-size", type=int, default=128,
                    help="mini-batch size (default: 128)")
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 0.001)")
    tr.add_argument("--threads", type=int, default=None,
                    help="CPU threads for PyTorch's operations (default: $OMP_NUM_THREADS, else 1, fastest for "
                         "this small model, especially on a busy machine; see README)")
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m nodeutils``: parse the arguments, train, print the table.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 after training, 1 when the output cannot be written, 2 when nodeutils refuses an argument
        or the data (the message is printed as ``error: ...``), 130 after Ctrl-C. A command line argparse cannot
        parse, or ``--help``, exits through argparse's ``SystemExit`` (status 2, or 0).
    """
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on Ctrl-C is a KeyboardInterrupt
    except ValueError:  # not the main thread
        pass
    phase = {"now": "before training started"}
    try:
        try:
            status = _run(argv, phase)
            sys.stdout.flush()  # a full disk shows here, inside the handlers, not at interpreter exit
            return status
        except KeyboardInterrupt:
            _ignore_interrupts()  # a second Ctrl-C while this line is printed changes nothing
            print(f"interrupted {phase['now']}", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # the reader of the table went away (e.g. `... | head -3`): stop without a traceback
            _silence_stdout()
            return 1
        except OSError as err:
            if not _is_stdout_error(err):
                raise
            _silence_stdout()
            print(f"error: cannot write the output ({err.strerror or err}): free some space or write it elsewhere",
                  file=sys.stderr, flush=True)
            return 1
    except KeyboardInterrupt:  # a second Ctrl-C inside one of the handlers above
        _ignore_interrupts()
        return EXIT_INTERRUPTED


def _ignore_interrupts() -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _is_stdout_error(err: OSError) -> bool:
    """True for a failed write to the output (full disk, I/O error), as opposed to e.g. a data file."""
    import errno

    return err.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG) and err.filename is None


def _run(argv: Sequence[str] | None, phase: dict[str, str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import torch

    from .checks import check_threads
    from .env import default_threads
    from .errors import NodeUtilsError
    from .training import train

    subset = "auto" if args.subset is None else args.subset
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            torch.set_num_threads(default_threads(warn=True) if args.threads is None
                                  else check_threads(args.threads, "--threads"))
            history = train(args.layer, device=args.device, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, sensealg=args.sensealg or "default", vjp=args.vjp,
                            structured_params=args.structured_params, seed=args.seed, subset=subset,
                            source=args.source, root=args.data_dir, progress=not args.no_progress,
                            log=lambda line: print(line, flush=True), init=args.init,
                            ode_dtype=getattr(torch, args.ode_dtype))
        except NodeUtilsError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
    phase["now"] = "after training"
    if history.interrupted:  # train printed "interrupted at epoch k/n ..."
        _ignore_interrupts()
        return EXIT_INTERRUPTED
    s = history.settings
    print(f"# layer={s['layer']} sensealg={s['sensealg']} structured_params={s['structured_params']} "
          f"device={s['device']} train/test images={s['train_images']}/{s['test_images']} seed={s['seed']} "
          f"init={s['init']} ode_dtype={s['ode_dtype']} threads={torch.get_num_threads()}")
    return 0
