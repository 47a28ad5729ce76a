"""Text for notebooks and the command line: plain-text tables and the tutorial's per-epoch row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .checks import describe
from .errors import InputError

__all__ = ["format_table", "format_row"]


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with aligned columns, a dashed line under the header.

    Args:
        header: the column titles.
        rows: one sequence of cells per row, as many as there are titles (cells are shown with ``str``).

    Returns:
        The table, one line per row.

    Raises:
        InputError: a header or row that is not a sequence, or a row with another number of cells.
    """
    if isinstance(header, (str, bytes)) or not isinstance(header, Sequence) or not header:
        raise InputError(f"header must be a list of column titles, like ['method', 'error']; got {describe(header)}")
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise InputError(f"rows must be a list of rows (each a list of cells); got {describe(rows)}")
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != len(header):
            got = f"{len(row)} cells" if isinstance(row, Sequence) and not isinstance(row, (str, bytes)) \
                else describe(row)
            raise InputError(f"rows[{i}] must be a list of {len(header)} cells, one per column title; got {got}")
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_row(epoch: int, epochs: int, seconds: float, train_acc: float, test_acc: float) -> str:
    """One epoch's row, as the tutorial prints it.

    Args:
        epoch: the epoch just finished (from 1).
        epochs: how many epochs the run has.
        seconds: the epoch's training time.
        train_acc: accuracy on the training set, in percent.
        test_acc: accuracy on the test set, in percent.

    Returns:
        ``[k/n]\\tTime 0.0612s\\tTraining Accuracy: 84.81%\\tTest Accuracy: 84.00%``.
    """
    return (f"[{epoch}/{epochs}]\tTime {seconds:.4f}s\tTraining Accuracy: {train_acc:.2f}%"
            f"\tTest Accuracy: {test_acc:.2f}%")
