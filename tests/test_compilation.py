"""nodeutils.compilation: graph breaks explained, their categories, and a quiet compiler."""

import logging
import warnings
from collections import Counter

import pytest
import torch

from nodeutils import create_model
from nodeutils.compilation import ExplainRow, break_category, explain, quiet_compiler
from nodeutils.errors import InputError
from nodeutils.sensitivity import AutogradAdjoint


def test_explain_counts_a_break_on_tensor_values():
    def branches(x):
        if x.sum() > 0:  # Python control flow on a tensor's value
            return x * 2
        return x - 1

    row = explain("branches", branches, torch.ones(3))
    assert row.graph_breaks >= 1 and row.graphs >= 2
    assert "if/while on a tensor's value" in row.top_reasons()
    clean = explain("clean", lambda x: torch.tanh(x) * 2, torch.ones(3))
    assert (clean.graphs, clean.graph_breaks, clean.top_reasons(), clean.where()) == (1, 0, "none", "-")


def test_break_categories_are_short_labels():
    assert break_category("Unsupported Tensor.item() call with capture_scalar_outputs=False") == \
        "tensor value read into Python (.item())"
    assert break_category("something new\nwith details") == "something new"


def test_break_counts_reconcile_with_reasons_and_origins():
    model = create_model(sensealg=AutogradAdjoint(), solver="rk4", options={"step_size": 0.5})
    row = explain("rk4", model, torch.rand(2, 1, 28, 28))
    assert row.graph_breaks >= 1
    assert sum(row.reasons.values()) == sum(row.origins.values()) == row.graph_breaks
    assert row.graphs > row.graph_breaks  # graphs also end where a traced function returns
    shown = [part.rsplit(" x", 1) for part in row.top_reasons().split("; ")]
    assert sum(int(count) for _, count in shown) == row.graph_breaks  # the table lists every reason


def test_explain_row_refuses_counts_that_do_not_add_up():
    with pytest.raises(ValueError, match="add up"):
        ExplainRow("bad", 3, 2, Counter({"a": 1}), Counter({"b": 2}))


def test_quiet_compiler_silences_the_compiler_s_loggers_and_warnings_and_restores_them():
    logger = logging.getLogger("torch.utils.cpp_extension")
    before = logger.level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_compiler():
            assert logger.getEffectiveLevel() == logging.ERROR
            warnings.warn("from the compiler", UserWarning, stacklevel=1)
        assert caught == []
    assert logger.level == before


@pytest.mark.parametrize("name, fn, fragment", [("row", 3, "fn must be the function to trace"),
                                                (3, lambda: None, "name must be a string")])
def test_explain_refuses_what_it_cannot_trace(name, fn, fragment):
    with pytest.raises(InputError, match=fragment):
        explain(name, fn)
