"""``python -m nodeutils``: see :mod:`nodeutils.cli`."""

from .cli import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # before PyTorch loads (the package's __init__ loads nothing)

from .cli import main  # noqa: E402

raise SystemExit(main())
