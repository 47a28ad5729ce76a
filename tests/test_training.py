import re

import pytest
import torch

from nodeutils import training
from nodeutils.errors import InputError, NonFiniteStateError, TrainingDivergedError
from nodeutils.models import create_model
from nodeutils.training import accuracy, format_row, train

ROW = re.compile(r"^\[(\d+)/(\d+)\]\tTime \d+\.\d{4}s\tTraining Accuracy: \d+\.\d{2}%\tTest Accuracy: \d+\.\d{2}%$")


def test_row_has_the_tutorial_layout():
    row = format_row(3, 9, 0.06123, 84.81481, 84.0)
    assert row == "[3/9]\tTime 0.0612s\tTraining Accuracy: 84.81%\tTest Accuracy: 84.00%"
    assert ROW.match(row)


def test_train_prints_one_row_per_epoch_and_returns_history(small_loaders, capsys):
    history = train(epochs=2, loaders=small_loaders, progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert [ROW.match(line).group(1) for line in lines] == ["1", "2"]
    assert len(history.epoch_time) == len(history.train_accuracy) == len(history.loss) == 2
    assert history.nfe_forward[0] > 0 and history.nfe_backward[0] > 0
    assert history.loss[1] < history.loss[0]
    assert history.rows()[1] == lines[1]


def test_seeded_runs_print_identical_tables(small_loaders):
    def table():
        rows = train("compact", epochs=2, subset=300, progress=False, log=None).rows()
        return [re.sub(r"Time \S+", "", row) for row in rows]

    assert table() == table()


def test_accuracy_of_the_model_matches_a_hand_count(small_loaders):
    model = create_model(seed=3)
    x, y = small_loaders[1].dataset.tensors
    model.eval()
    with torch.no_grad():  # the test loader's batches are 30 images: one batch, as accuracy() sees it
        right = int((model(x).argmax(dim=1) == y).sum())
    assert accuracy(model, small_loaders[1]) == right / len(y)
    assert model.training is False  # accuracy() leaves the mode as it found it
    model.train()
    accuracy(model, small_loaders[1])
    assert model.training


def test_nan_loss_stops_training_with_advice(small_loaders, monkeypatch):
    monkeypatch.setattr(training, "logitcrossentropy", lambda logits, y: logits.sum() * torch.nan)
    with pytest.raises(TrainingDivergedError, match="epoch 1, batch 1: lower the learning rate"):
        train(epochs=1, loaders=small_loaders, progress=False, log=None)


def test_nan_images_stop_the_solver_at_the_start(small_loaders):
    x, y = small_loaders[0].dataset.tensors
    poisoned = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x.clone().fill_(torch.nan), y), 64)
    with pytest.raises(NonFiniteStateError, match="at t=0 during the forward solve"):
        train(epochs=1, loaders=(poisoned, small_loaders[1]), progress=False, log=None)


@pytest.mark.parametrize("kwargs, match", [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr")])
def test_bad_training_settings_are_explained(kwargs, match, small_loaders):
    with pytest.raises(InputError, match=match):
        train(loaders=small_loaders, progress=False, log=None, **kwargs)


def test_reused_loaders_give_the_same_table_for_the_same_seed(small_loaders):
    first = train(epochs=1, loaders=small_loaders, progress=False, log=None)
    second = train(epochs=1, loaders=small_loaders, progress=False, log=None)
    assert first.loss == second.loss and first.test_accuracy == second.test_accuracy
