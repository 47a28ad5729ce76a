"""nbval settings for the notebooks, so that ``pytest --nbval notebooks/`` needs no other flags.

- The kernel runs in pytest's own environment (``--nbval-current-env``), where nodeutils is installed.
- Outputs are compared after ``sanitize.cfg`` (beside this file) has masked what truly depends on the
  machine: timings, device names and the environment report. Each of its sections says what it masks.
- There is no widget front end under nbval: the explorers show their static figures.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("NODEUTILS_STATIC_VIEWS", "1")

SANITIZE_FILE = Path(__file__).with_name("sanitize.cfg")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    if not hasattr(option, "nbval_sanitize_with"):  # nbval is not installed
        return
    if option.nbval_sanitize_with is None:
        option.nbval_sanitize_with = str(SANITIZE_FILE)
    if option.nbval_kernel_name is None:
        option.nbval_current_env = True
