"""``python -m nodeutils``: see :mod:`nodeutils.cli`."""

from .cli import main

raise SystemExit(main())
