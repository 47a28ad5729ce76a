"""nodeutils.training: train(), its table and history, and the settings train() refuses."""

import warnings

import numpy as np
import pytest
import torch
from helpers import TABLE_ROW, assert_refused, same_table, without_times
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nodeutils import training
from nodeutils.errors import InputError, NodeUtilsWarning, NonFiniteStateError, TrainingDivergedError
from nodeutils.evaluation import accuracy
from nodeutils.formatting import format_row
from nodeutils.plots import plot_training
from nodeutils.training import TrainingHistory, train


def quiet_train(*args, **kwargs):
    """train() without progress bar, table or small-split warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NodeUtilsWarning)
        return train(*args, progress=False, log=None, **kwargs)


def _empty_loader():
    return DataLoader(TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)))


def test_train_prints_one_row_per_epoch_and_returns_history(small_loaders, capsys):
    history = train(epochs=2, loaders=small_loaders, progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert [TABLE_ROW.match(line).group(1) for line in lines] == ["1", "2"]
    assert len(history.epoch_time) == len(history.train_accuracy) == len(history.loss) == 2
    assert history.nfe_forward[0] > 0 and history.nfe_backward[0] > 0
    assert history.loss[1] < history.loss[0]
    assert history.rows()[1] == lines[1]


def test_history_rows_are_the_table_rows_apart_from_the_timings():
    a = [format_row(1, 2, 0.1234, 60.15, 57.33), format_row(2, 2, 0.2, 72.44, 71.33)]
    b = [format_row(1, 2, 9.8765, 60.15, 57.33), format_row(2, 2, 0.3, 72.44, 71.33)]
    c = [format_row(1, 2, 0.1234, 60.15, 57.33), format_row(2, 2, 0.2, 72.44, 70.67)]
    assert without_times(a[0]) == ["[1/2]\tTraining Accuracy: 60.15%\tTest Accuracy: 57.33%"]
    assert same_table(a, b) and not same_table(a, c) and not same_table(a, a[:1])
    history = TrainingHistory(epoch_time=[5.0, 6.0], train_accuracy=[60.15, 72.44], test_accuracy=[57.33, 71.33],
                              settings={"epochs": 2})
    assert same_table(history, a)


def test_seeded_runs_print_identical_tables(small_loaders):
    def table():
        return without_times(train("compact", epochs=2, subset=300, progress=False, log=None))

    assert table() == table()


def test_reused_loaders_give_the_same_table_for_the_same_seed(small_loaders):
    first = train(epochs=1, loaders=small_loaders, progress=False, log=None)
    second = train(epochs=1, loaders=small_loaders, progress=False, log=None)
    assert first.loss == second.loss and first.test_accuracy == second.test_accuracy


def test_train_takes_numpy_and_tensor_scalars():
    history = train(epochs=np.int64(1), batch_size=torch.tensor(10), seed=np.int64(0), progress=np.False_, log=None,
                    loaders=None, subset=100, sensealg="autograd")
    assert history.settings["epochs"] == 1 and history.settings["batch_size"] == 10


def test_train_vjp_with_the_default_algorithm_is_used(tiny_loaders):
    history = quiet_train(loaders=tiny_loaders, epochs=1, vjp="func")
    assert history.settings["sensealg"].startswith("InterpolatingAdjoint(autojacvec='func'")


@pytest.mark.parametrize("log", [print, lambda line: None, lambda *lines: None, lambda line, end="\n": None],
                         ids=["print", "one argument", "*args", "a default after one"])
def test_train_accepts_every_log_that_takes_one_line(log, tiny_loaders):
    history = train(loaders=tiny_loaders, epochs=1, progress=False, log=log, sensealg="autograd", rtol=1e-2,
                    atol=1e-2)
    assert history.epochs_done == 1


# ---------------------------------------------------------------------------------------------------------------
# Training that stops: diverging, non-finite images, Ctrl-C
# ---------------------------------------------------------------------------------------------------------------
def test_nan_loss_stops_training_with_advice(small_loaders, monkeypatch):
    monkeypatch.setattr(training, "logitcrossentropy", lambda logits, y: logits.sum() * torch.nan)
    with pytest.raises(TrainingDivergedError, match="epoch 1, batch 1: lower the learning rate"):
        train(epochs=1, loaders=small_loaders, progress=False, log=None)


def test_nan_images_stop_the_solver_at_the_start(small_loaders):
    x, y = small_loaders[0].dataset.tensors
    poisoned = DataLoader(TensorDataset(x.clone().fill_(torch.nan), y), 64)
    with pytest.raises(NonFiniteStateError, match="at t=0 during the forward solve"):
        train(epochs=1, loaders=(poisoned, small_loaders[1]), progress=False, log=None)


def test_train_interrupted_keeps_a_usable_partial_history(tiny_loaders, monkeypatch):
    calls = {"n": 0}
    loss = training.logitcrossentropy

    def interrupt_in_epoch_2(logits, labels):
        calls["n"] += 1
        if calls["n"] == 3:  # 2 batches per epoch: the first batch of epoch 2
            raise KeyboardInterrupt
        return loss(logits, labels)

    monkeypatch.setattr(training, "logitcrossentropy", interrupt_in_epoch_2)
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NodeUtilsWarning)
        history = train(loaders=tiny_loaders, epochs=3, progress=False, log=lines.append, sensealg="autograd")
    assert history.interrupted == "epoch 2/3"
    assert lines[-1] == "interrupted at epoch 2/3 (1 epoch finished)"
    assert len(history.loss) == len(history.test_accuracy) == len(history.rows()) == 1
    assert accuracy(history.model, tiny_loaders[1]) >= 0.0  # the model still works


def test_ctrl_c_during_setup_returns_a_history(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "create_model", interrupted)
    lines = []
    history = train(epochs=2, progress=False, log=lines.append)
    assert history.interrupted == "epoch 1/2" and history.epochs_done == 0 and history.model is None
    assert lines == ["interrupted while setting up (0 epochs finished)"]
    with pytest.raises(InputError, match="no.*finished epoch|none.*interrupted at epoch 1/2"):
        plot_training(history)


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs: refused with the argument and the fix
# ---------------------------------------------------------------------------------------------------------------
def test_train_huge_learning_rate_warns_before_anything_else(tiny_loaders):
    with pytest.warns(NodeUtilsWarning, match=r"lr=1e\+06 is far above the usual range for Adam"):
        with pytest.raises(InputError, match="test loader is empty"):  # stops it here; the CLI test trains
            train(loaders=(tiny_loaders[0], _empty_loader()), lr=1e6, progress=False, log=None)


BAD_INPUTS = [
    pytest.param(lambda fx: quiet_train(loaders=fx.small_loaders, epochs=0), InputError, ("epochs",), id="epochs=0"),
    pytest.param(lambda fx: quiet_train(loaders=fx.small_loaders, lr=-1.0), InputError, ("lr",), id="negative lr"),
    pytest.param(lambda fx: quiet_train(loaders=fx.tiny_loaders, batch_size=64), InputError,
                 ("batch_size=64 would be ignored because loaders were given", "load_mnist(batch_size"),
                 id="data arguments ignored with loaders"),
    pytest.param(lambda fx: quiet_train(loaders=(_empty_loader(), fx.tiny_loaders[1])), InputError,
                 ("the training loader is empty",), id="empty training loader"),
    pytest.param(lambda fx: quiet_train(loaders=(fx.tiny_loaders[0], _empty_loader())), InputError,
                 ("the test loader is empty",), id="empty test loader"),
    pytest.param(lambda fx: quiet_train(loaders=fx.tiny_loaders, sensealg="backsolve", vjp="func"), InputError,
                 ("vjp='func' has no effect with the 'backsolve' algorithm",), id="vjp ignored by the algorithm"),
    pytest.param(lambda fx: quiet_train(loaders=fx.tiny_loaders, epochs=2.0), InputError,
                 ("epochs must be an integer, like 2 (not the float 2.0)",), id="float epochs"),
    pytest.param(lambda fx: train(loaders=fx.tiny_loaders, log="print"), InputError, ("log must be a function",),
                 id="log not callable"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments, fx):
    assert_refused(call, error, fragments, fx)


def _two_arguments(line, extra):  # noqa: ANN001
    pass


TRAIN_REFUSED = {
    "log without arguments": ({"log": lambda: None}, "log must be a function taking one line of text",
                              "cannot be called with 1 argument"),
    "log with two arguments": ({"log": _two_arguments}, "log must be", "_two_arguments(line, extra)"),
    "log a string": ({"log": "print"}, "log must be a function"),
    "model=": ({"model": nn.Linear(784, 10)}, "train does not take model", "history.model", "layer=", "solver="),
    "optimizer=": ({"optimizer": "sgd"}, "train does not take optimizer", "Adam", "lr="),
    "optimiser=": ({"optimiser": "sgd"}, "train does not take optimiser", "lr="),
    "an unknown keyword": ({"dropout": 0.1}, "train does not take dropout", "loaders", "options"),
}


@pytest.mark.parametrize("kwargs, fragments", [(k, f) for k, *f in TRAIN_REFUSED.values()], ids=list(TRAIN_REFUSED))
def test_train_refuses_bad_arguments_before_training(kwargs, fragments, tiny_loaders, capsys):
    message = assert_refused(lambda: train(loaders=tiny_loaders, progress=False, **kwargs), InputError, fragments)
    assert "create_model" not in message.split(":")[0]  # train's own words, not another function's
    assert capsys.readouterr().out == ""  # refused before the first epoch
