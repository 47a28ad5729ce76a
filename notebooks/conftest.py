"""Notebook tests run without a widget front end: ask the explorers for their static figures."""

import os

os.environ.setdefault("NODEUTILS_STATIC_VIEWS", "1")
