"""Command line: ``python -m nodeutils train ...`` trains the tutorial model and prints its table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import NodeUtilsError
from .layers import LAYERS
from .sensitivity import SENSEALG_NAMES, VJP_CHOICES

DEFAULT_SENSEALG = "interpolating"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m nodeutils``."""
    parser = argparse.ArgumentParser(prog="python -m nodeutils",
                                     description="Neural ODE on MNIST: the tutorial's model in PyTorch.")
    commands = parser.add_subparsers(dest="command", required=True)
    tr = commands.add_parser("train", help="train the tutorial model and print one row per epoch",
                             description="Train Flatten -> Linear(784,20,tanh) -> Neural ODE -> Linear(20,10) "
                                         "with Adam and print the tutorial's per-epoch table.")
    tr.add_argument("--layer", choices=list(LAYERS), default="class",
                    help="ODE layer style: class-based, compact (function-defined) or stateful (default: class)")
    tr.add_argument("--device", default=None,
                    help="cpu, cuda, cuda:N or auto (CUDA when available) (default: $NODEUTILS_DEVICE, else cpu)")
    tr.add_argument("--epochs", type=int, default=9, help="number of epochs (default: 9)")
    tr.add_argument("--subset", type=int, default=None,
                    help="use only the first N images (default: 1500 when CI=true, else every image of the source)")
    tr.add_argument("--source", choices=["embedded", "torchvision"], default="embedded",
                    help="embedded: the 5,000 MNIST images shipped with nodeutils; torchvision: the full "
                         "60,000-image training set, downloaded into ./data (default: embedded)")
    tr.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch order (default: 0)")
    tr.add_argument("--sensealg", choices=list(SENSEALG_NAMES), default=DEFAULT_SENSEALG,
                    help="how gradients flow through the ODE solve (default: interpolating, as in the tutorial)")
    tr.add_argument("--vjp", choices=list(VJP_CHOICES), default="autograd",
                    help="vector-Jacobian products of the continuous adjoints (default: autograd)")
    tr.add_argument("--structured-params", action="store_true",
                    help="hand the solver the parameters in their own shapes instead of one flat vector")
    tr.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default: 128)")
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 0.001)")
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    from .training import train

    subset = "auto" if args.subset is None else args.subset
    try:
        history = train(args.layer, device=args.device, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        sensealg=args.sensealg, vjp=args.vjp, structured_params=args.structured_params,
                        seed=args.seed, subset=subset, source=args.source, progress=not args.no_progress)
    except NodeUtilsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    s = history.settings
    print(f"# layer={s['layer']} sensealg={s['sensealg']} structured_params={s['structured_params']} "
          f"device={s['device']} train/test images={s['train_images']}/{s['test_images']} seed={s['seed']}")
    return 0
