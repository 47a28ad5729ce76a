"""What a learner may type, entry point by entry point: each bad input ends in a NodeUtilsError (or a
warning) that names the argument, the value and the fix; plausible inputs with a clear meaning are
accepted and give the right result."""

import errno
import gzip
import math
import struct
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from nodeutils import analysis, training, widgets  # noqa: E402
from nodeutils.cli import main  # noqa: E402
from nodeutils.data import load_arrays, load_mnist  # noqa: E402
from nodeutils.errors import (  # noqa: E402
    DataError,
    InputError,
    NodeUtilsError,
    NodeUtilsWarning,
    NonFiniteStateError,
)
from nodeutils.models import create_model  # noqa: E402
from nodeutils.sensitivity import (  # noqa: E402
    BacksolveAdjoint,
    GaussAdjoint,
    InterpolatingAdjoint,
    QuadratureAdjoint,
    make_sensealg,
    odeint,
)
from nodeutils.training import accuracy, train  # noqa: E402


def decay(t, y):
    return -y


Y0 = torch.tensor([1.0, 2.0, 3.0])
SPAN = [0.0, 1.0]


def raises(error, *words, call):
    """Assert that ``call()`` raises ``error`` whose message contains every one of ``words``."""
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, NodeUtilsError)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    return str(info.value)


@pytest.fixture(scope="module")
def tiny_loaders():
    x = torch.rand(24, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(24) % 10
    return (DataLoader(TensorDataset(x[:20], y[:20]), batch_size=10, shuffle=True, generator=torch.Generator()),
            DataLoader(TensorDataset(x[20:], y[20:]), batch_size=10))


def quiet_train(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NodeUtilsWarning)
        return train(*args, progress=False, log=None, **kwargs)


# ---------------------------------------------------------------------------------------------------
# odeint
# ---------------------------------------------------------------------------------------------------
def test_odeint_fixed_step_method_without_step_size_is_refused():
    raises(InputError, "method='euler' takes fixed steps", "options={'step_size'", "'tsit5'",
           call=lambda: odeint(decay, Y0, SPAN, method="euler"))


def test_odeint_fixed_step_method_with_a_step_size_is_right():
    ys = odeint(decay, Y0.double(), SPAN, method="euler", options={"step_size": 1e-4})
    assert torch.allclose(ys[-1], Y0.double() * math.exp(-1), rtol=1e-4)


def test_odeint_float16_state_is_refused():
    raises(InputError, "torch.float16", "float32 or float64", "y0.float()",
           call=lambda: odeint(decay, Y0.half(), SPAN))


def test_odeint_bfloat16_state_is_refused():
    raises(InputError, "torch.bfloat16", "float32 or float64", call=lambda: odeint(decay, Y0.bfloat16(), SPAN))


def test_odeint_empty_state_is_refused():
    raises(InputError, "y0 is empty", "shape (0,)", call=lambda: odeint(decay, torch.ones(0), SPAN))


def test_odeint_nan_right_hand_side_names_f():
    raises(NonFiniteStateError, "right-hand side returned NaN", "at the start (t=0)", "f itself",
           call=lambda: odeint(lambda t, y: y * torch.nan, Y0, SPAN))


def test_odeint_nan_initial_state_names_the_input():
    raises(NonFiniteStateError, "initial state contains NaN", "before the first step", "input is not finite",
           call=lambda: odeint(decay, torch.tensor([1.0, torch.nan]), SPAN))


def test_odeint_tolerance_given_as_a_string_is_refused():
    raises(InputError, "rtol must be a positive finite number", "without quotes",
           call=lambda: odeint(decay, Y0, SPAN, rtol="1e-3"))


def test_odeint_tolerance_tensor_of_several_numbers_is_refused():
    raises(InputError, "atol must be", "shape (3,)", "one number",
           call=lambda: odeint(decay, Y0, SPAN, atol=torch.full((3,), 1e-6)))


def test_odeint_one_element_tolerance_tensor_is_accepted():
    ys = odeint(decay, Y0.double(), SPAN, rtol=torch.tensor(1e-8), atol=torch.tensor(1e-10))
    assert torch.allclose(ys[-1], Y0.double() * math.exp(-1), rtol=1e-7)


def test_odeint_boolean_tolerance_is_refused():
    raises(InputError, "rtol must be a positive finite number", "True",
           call=lambda: odeint(decay, Y0, SPAN, rtol=True))


def test_odeint_options_that_are_not_a_dict_are_refused():
    raises(InputError, "options must be a dict", call=lambda: odeint(decay, Y0, SPAN, options=[("max_num_steps", 5)]))


def test_odeint_unknown_option_lists_the_accepted_ones():
    raises(InputError, "option 'max_steps' is not understood by method='tsit5'", "max_num_steps",
           call=lambda: odeint(decay, Y0, SPAN, options={"max_steps": 5}))


def test_odeint_fractional_step_limit_is_refused():
    raises(InputError, "options['max_num_steps'] must be an integer",
           call=lambda: odeint(decay, Y0, SPAN, options={"max_num_steps": 2.5}))


def test_odeint_negative_step_size_is_refused():
    raises(InputError, "options['step_size'] must be a positive finite number", "-0.1",
           call=lambda: odeint(decay, Y0, SPAN, method="rk4", options={"step_size": -0.1}))


def test_odeint_function_of_y_alone_is_refused_with_a_wrapper():
    raises(InputError, "f(t, y)", "signature is (y)", "lambda t, y: f(y)",
           call=lambda: odeint(lambda y: -y, Y0, SPAN))


def test_odeint_func_that_is_not_callable_is_refused():
    raises(InputError, "func must be an nn.Module or a callable", call=lambda: odeint(3.0, Y0, SPAN))


def test_odeint_list_state_is_refused_with_the_conversion():
    raises(InputError, "y0 must be a tensor; got list", "torch.as_tensor", call=lambda: odeint(decay, [1.0, 2.0], SPAN))


def test_odeint_time_span_given_as_a_string_is_refused():
    raises(InputError, "time span must be a sequence", "(0.0, 1.0)", call=lambda: odeint(decay, Y0, "0 1"))


def test_odeint_time_span_holding_strings_is_refused():
    raises(InputError, "time span must hold numbers only", call=lambda: odeint(decay, Y0, ["0", "1"]))


def test_odeint_float32_tolerances_beyond_its_precision_name_the_dtype():
    raises(InputError, "more accuracy than a torch.float32 state can hold", "float64",
           call=lambda: odeint(decay, Y0, SPAN, rtol=1e-14, atol=1e-16))


def test_odeint_float64_solves_to_tight_tolerances():
    ys = odeint(decay, Y0.double(), SPAN, rtol=1e-13, atol=1e-15)
    assert torch.allclose(ys[-1], Y0.double() * math.exp(-1), rtol=1e-11, atol=0)


def test_odeint_stats_of_the_wrong_type_is_refused():
    raises(InputError, "stats must be a SolveStats()", call=lambda: odeint(decay, Y0, SPAN, stats={}))


def test_odeint_algorithm_class_without_parentheses_is_refused():
    raises(InputError, "not the class GaussAdjoint", "GaussAdjoint()",
           call=lambda: odeint(decay, Y0, SPAN, sensealg=GaussAdjoint))


# ---------------------------------------------------------------------------------------------------
# sensitivity algorithms
# ---------------------------------------------------------------------------------------------------
def test_interpolating_adjoint_rtol_zero_is_refused_not_replaced():
    raises(InputError, "rtol must be a positive finite number", "None for the forward rtol", "0.0",
           call=lambda: InterpolatingAdjoint(rtol=0))


def test_backsolve_seminorm_string_is_refused():
    raises(InputError, "seminorm must be True or False", "'no'", call=lambda: BacksolveAdjoint(seminorm="no"))


def test_quadrature_max_panels_zero_is_refused():
    raises(InputError, "max_panels must be a positive integer", "got 0", call=lambda: QuadratureAdjoint(max_panels=0))


def test_gauss_fractional_nodes_are_refused():
    raises(InputError, "nodes must be an integer", "2.5", call=lambda: GaussAdjoint(nodes=2.5))


def test_julia_style_autojacvec_false_points_to_jacobian():
    raises(InputError, "unknown autojacvec False", "autojacvec='jacobian'",
           call=lambda: InterpolatingAdjoint(autojacvec=False))


def test_checkpoints_given_as_one_number_are_refused():
    raises(InputError, "checkpoints must be a list of times", "[0.5]",
           call=lambda: GaussAdjoint(checkpointing=True, checkpoints=0.5))


def test_make_sensealg_vjp_ignored_by_discrete_backprop_is_refused():
    raises(InputError, "vjp='jacobian' has no effect with the 'autograd' algorithm", "interpolating",
           call=lambda: make_sensealg("autograd", vjp="jacobian"))


def test_make_sensealg_vjp_conflicting_with_an_object_is_refused():
    raises(InputError, "vjp='func' conflicts with GaussAdjoint", "autojacvec='func'",
           call=lambda: make_sensealg(GaussAdjoint(), vjp="func"))


def test_make_sensealg_settings_reach_the_algorithm():
    algorithm = make_sensealg("gauss", vjp="func", nodes=3)
    assert isinstance(algorithm, GaussAdjoint) and algorithm.nodes == 3 and algorithm.autojacvec == "func"


def test_make_sensealg_unknown_setting_lists_the_accepted_ones():
    raises(InputError, "GaussAdjoint does not take node", "nodes", call=lambda: make_sensealg("gauss", node=3))


# ---------------------------------------------------------------------------------------------------
# create_model and the model's forward pass
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return create_model(sensealg="autograd")


IMAGES = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_model_accepts_float64_images_as_float32(model):
    with torch.no_grad():
        assert torch.equal(model(IMAGES.double()), model(IMAGES))


def test_model_uint8_images_are_told_to_scale(model):
    raises(InputError, "floating-point images in [0, 1]", "torch.uint8", "x.float() / 255",
           call=lambda: model((IMAGES * 255).to(torch.uint8)))


def test_model_pixel_values_0_to_255_are_told_to_divide(model):
    raises(InputError, "values in [0, 1]", "divide by 255", call=lambda: model(IMAGES * 255))


def test_model_huge_values_are_told_to_rescale(model):
    raises(InputError, "values in [0, 1]", "e+29", "rescale", call=lambda: model(IMAGES * 1e30))


def test_model_empty_batch_is_refused(model):
    raises(InputError, "empty batch (0 images)", "x[:1]", call=lambda: model(IMAGES[:0]))


def test_model_in_float16_is_refused(model):
    half = create_model(sensealg="autograd").half()
    raises(InputError, "converted to torch.float16", "model.float()", call=lambda: half(IMAGES))


def test_model_in_bfloat16_is_refused():
    bf16 = create_model(sensealg="autograd").bfloat16()
    raises(InputError, "converted to torch.bfloat16", "model.float()", call=lambda: bf16(IMAGES))


def test_model_in_float64_takes_float32_images():
    double = create_model(sensealg="autograd").double()
    with torch.no_grad():
        assert double(IMAGES).dtype == torch.float64


def test_model_range_check_can_be_switched_off_for_normalised_images():
    normalised = create_model(sensealg="autograd")
    normalised.check.value_range = None
    with torch.no_grad():
        assert normalised((IMAGES - 0.1307) / 0.3081).shape == (3, 10)


def test_model_numpy_images_are_told_to_convert(model):
    raises(InputError, "got ndarray", "torch.as_tensor", call=lambda: model(IMAGES.numpy()))


def test_create_model_unknown_keyword_lists_the_accepted_ones():
    raises(InputError, "create_model does not take dropout", "options", call=lambda: create_model(dropout=0.1))


def test_create_model_fractional_seed_is_refused():
    raises(InputError, "seed must be an integer", "1.5", call=lambda: create_model(seed=1.5))


def test_create_model_structured_params_string_is_refused():
    raises(InputError, "structured_params must be True or False", "'yes'",
           call=lambda: create_model(structured_params="yes"))


def test_create_model_fixed_step_solver_needs_a_step_size():
    raises(InputError, "method='rk4' takes fixed steps", "step_size",
           call=lambda: create_model(solver="rk4", sensealg="autograd"))


def test_create_model_unknown_layer_lists_the_choices():
    raises(InputError, "unknown layer 'lux'", "class, compact, stateful", call=lambda: create_model("lux"))


# ---------------------------------------------------------------------------------------------------
# load_mnist (embedded and torchvision sources)
# ---------------------------------------------------------------------------------------------------
def test_load_mnist_subset_too_small_for_the_split_names_the_minimum():
    message = raises(InputError, "subset=2 with train_split=0.9 leaves 2 training and 0 test images",
                     "at least 5 images", call=lambda: load_mnist(subset=2))
    assert "500 or more" in message


def test_load_mnist_tiny_test_split_warns():
    with pytest.warns(NodeUtilsWarning, match="the test split has only 1 image, so its accuracy moves in steps of 100"):
        load_mnist(subset=5)


def test_load_mnist_subset_given_as_a_string_is_refused():
    raises(InputError, "subset must be an integer", "'1500'", call=lambda: load_mnist(subset="1500"))


def test_load_mnist_train_split_given_as_a_string_is_refused():
    raises(InputError, "train_split must lie strictly between 0 and 1", "'0.9'",
           call=lambda: load_mnist(train_split="0.9"))


def test_load_mnist_root_with_the_embedded_source_is_refused():
    raises(InputError, "root='mnist' is only used by source='torchvision'", call=lambda: load_mnist(root="mnist"))


def test_load_mnist_subset_beyond_the_embedded_images_names_60000():
    message = raises(InputError, "subset=70000 asks for more images than the embedded source has (5,000)",
                     "60,000 training images", "--source torchvision", call=lambda: load_mnist(subset=70000))
    assert "70,000" not in message


def _write_idx(path: Path, array: np.ndarray, magic: int | None = None, compress: bool = False) -> None:
    magic = (0x0800 | array.ndim) if magic is None else magic
    payload = struct.pack(">i", magic) + b"".join(struct.pack(">i", d) for d in array.shape)
    payload += array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as fh:
        fh.write(payload)


def _fake_train_files(root: Path, n: int = 60, compress: bool = False) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    suffix = ".gz" if compress else ""
    _write_idx(raw / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), compress=compress)
    _write_idx(raw / f"train-labels-idx1-ubyte{suffix}", np.arange(n) % 10, compress=compress)
    return raw


def test_torchvision_source_needs_only_the_training_files(tmp_path):
    _fake_train_files(tmp_path)  # no t10k files: they are not used
    x, y = load_arrays("torchvision", root=tmp_path, download=False)
    assert x.shape == (60, 1, 28, 28) and y.tolist()[:3] == [0, 1, 2]


def test_torchvision_source_reads_gzipped_files(tmp_path):
    _fake_train_files(tmp_path, compress=True)
    x, _ = load_arrays("torchvision", root=tmp_path, download=False)
    assert x.shape == (60, 1, 28, 28) and float(x.max()) <= 1.0


def test_torchvision_source_missing_file_is_named(tmp_path):
    raw = _fake_train_files(tmp_path)
    (raw / "train-labels-idx1-ubyte").unlink()
    raises(DataError, "train-labels-idx1-ubyte is missing from", str(raw), "source='embedded'",
           call=lambda: load_arrays("torchvision", root=tmp_path, download=False))


def test_torchvision_source_wrong_magic_number_names_the_file(tmp_path):
    raw = _fake_train_files(tmp_path)
    _write_idx(raw / "train-images-idx3-ubyte", np.zeros((60, 28, 28)), magic=0x0801)
    raises(DataError, "train-images-idx3-ubyte is not an MNIST images file", "0x00000803", "found 0x00000801",
           call=lambda: load_arrays("torchvision", root=tmp_path, download=False))


def test_torchvision_source_truncated_file_is_named(tmp_path):
    raw = _fake_train_files(tmp_path)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    raises(DataError, "train-images-idx3-ubyte is truncated", call=lambda: load_arrays("torchvision", root=tmp_path,
                                                                                       download=False))


def test_torchvision_source_read_only_folder_says_data_dir(tmp_path, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    raises(DataError, "cannot write the MNIST files into", "Read-only file system", "--data-dir", "root=",
           call=lambda: load_arrays("torchvision", root=tmp_path / "data"))


def test_torchvision_source_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "data").write_text("")
    raises(DataError, "is a file, not a folder", call=lambda: load_arrays("torchvision", root=tmp_path / "data"))


# ---------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------
def test_train_data_arguments_ignored_with_loaders_are_refused(tiny_loaders):
    raises(InputError, "batch_size=64 would be ignored because loaders were given", "load_mnist(batch_size",
           call=lambda: quiet_train(loaders=tiny_loaders, batch_size=64))


def test_train_empty_training_loader_is_refused(tiny_loaders):
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)))
    raises(InputError, "the training loader is empty", call=lambda: quiet_train(loaders=(empty, tiny_loaders[1])))


def test_train_empty_test_loader_is_refused_before_training(tiny_loaders):
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)))
    raises(InputError, "the test loader is empty", call=lambda: quiet_train(loaders=(tiny_loaders[0], empty)))


def test_train_huge_learning_rate_warns_before_anything_else(tiny_loaders):
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)))
    with pytest.warns(NodeUtilsWarning, match=r"lr=1e\+06 is far above the usual range for Adam"):
        with pytest.raises(InputError, match="test loader is empty"):  # stops it here; the CLI test trains
            train(loaders=(tiny_loaders[0], empty), lr=1e6, progress=False, log=None)


def test_train_vjp_ignored_by_the_algorithm_is_refused(tiny_loaders):
    raises(InputError, "vjp='func' has no effect with the 'backsolve' algorithm",
           call=lambda: quiet_train(loaders=tiny_loaders, sensealg="backsolve", vjp="func"))


def test_train_vjp_with_the_default_algorithm_is_used(tiny_loaders):
    history = quiet_train(loaders=tiny_loaders, epochs=1, vjp="func")
    assert history.settings["sensealg"].startswith("InterpolatingAdjoint(autojacvec='func'")


def test_train_float_epochs_are_refused(tiny_loaders):
    raises(InputError, "epochs must be an integer, like 2 (not the float 2.0)",
           call=lambda: quiet_train(loaders=tiny_loaders, epochs=2.0))


def test_train_log_that_is_not_callable_is_refused(tiny_loaders):
    raises(InputError, "log must be a function", call=lambda: train(loaders=tiny_loaders, log="print"))


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


def test_accuracy_of_an_empty_loader_is_refused(model):
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)))
    raises(InputError, "the loader holds no images", call=lambda: accuracy(model, empty))


# ---------------------------------------------------------------------------------------------------
# command line (in-process; the Ctrl-C tests are in test_interrupts.py)
# ---------------------------------------------------------------------------------------------------
def cli_error(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main(["train", *argv])
    assert info.value.code == 2
    return capsys.readouterr().err


def test_cli_subset_too_small_names_the_cli_flag(capsys):
    err = cli_error(capsys, "--subset", "2")
    assert "--subset 2 leaves no image for testing" in err and "--subset 5 or more" in err
    assert "train_split" not in err


def test_cli_vjp_ignored_by_the_algorithm_is_refused(capsys):
    assert "--vjp jacobian has no effect with --sensealg autograd" in cli_error(
        capsys, "--sensealg", "autograd", "--vjp", "jacobian")


def test_cli_data_dir_without_torchvision_source_is_refused(capsys):
    assert "--data-dir is the folder of --source torchvision" in cli_error(capsys, "--data-dir", "/tmp")


def test_cli_zero_epochs_is_refused(capsys):
    assert "argument --epochs: expected a positive integer, got 0" in cli_error(capsys, "--epochs", "0")


def test_cli_zero_threads_is_refused(capsys):
    assert "argument --threads: expected a positive number of threads, got 0" in cli_error(capsys, "--threads", "0")


def test_cli_negative_learning_rate_is_refused(capsys):
    assert "argument --lr: expected a positive number" in cli_error(capsys, "--lr=-1")


def test_cli_corrupt_data_dir_file_is_named(tmp_path, capsys):
    raw = _fake_train_files(tmp_path)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03 not labels")
    status = main(["train", "--source", "torchvision", "--data-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "error: " in err and "train-labels-idx1-ubyte is not an MNIST labels file" in err


@pytest.mark.filterwarnings("default:the test split has only")
def test_cli_huge_learning_rate_prints_a_one_line_warning(capsys):
    main(["train", "--lr", "1e6", "--subset", "60", "--epochs", "1", "--sensealg", "autograd", "--no-progress"])
    err = capsys.readouterr().err
    assert "warning: lr=1e+06 is far above the usual range for Adam" in err
    assert "warning: the test split has only 6 images" in err


# ---------------------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------------------
def test_hidden_trajectories_fractional_n_times_is_refused(model):
    raises(InputError, "n_times must be an integer", call=lambda: analysis.hidden_trajectories(
        model, IMAGES, torch.arange(3), n_times=2.5))


def test_hidden_trajectories_plain_module_is_refused():
    raises(InputError, "expected a model built by create_model", call=lambda: analysis.hidden_trajectories(
        torch.nn.Linear(784, 10), IMAGES, torch.arange(3)))


def test_hidden_trajectories_label_count_mismatch_is_refused(model):
    raises(InputError, "3 images with labels shaped (2,)", "one class index per image",
           call=lambda: analysis.hidden_trajectories(model, IMAGES, torch.arange(2)))


def test_hidden_trajectories_takes_labels_as_accuracy_does(model):
    """(N, 1) labels are converted with a warning, as accuracy() converts them; soft rows are refused."""
    reference = analysis.hidden_trajectories(model, IMAGES, torch.arange(3), n_times=2)
    with pytest.warns(NodeUtilsWarning, match=r"flattened labels shaped \(N, 1\)"):
        column = analysis.hidden_trajectories(model, IMAGES, torch.arange(3)[:, None], n_times=2)
    assert column.labels.shape == (3,) and torch.equal(column.labels, reference.labels)
    assert torch.equal(column.states, reference.states)
    raises(InputError, "not one-hot", call=lambda: analysis.hidden_trajectories(
        model, IMAGES, torch.full((3, 10), 0.1)))


def test_tolerance_grid_with_zero_low_end_is_refused():
    raises(InputError, "low must be a positive finite number", call=lambda: analysis.tolerance_grid(low=0.0))


def test_confusion_matrix_of_scores_says_argmax():
    raises(InputError, "predicted must be a 1-D tensor of integer labels", "argmax",
           call=lambda: analysis.confusion_matrix(torch.arange(3), torch.rand(3, 10)))


def test_predict_with_an_empty_loader_is_refused(model):
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)))
    raises(InputError, "nothing to predict", call=lambda: analysis.predict(model, empty))


def test_solver_settings_unknown_name_is_refused_not_set(model):
    def change():
        with analysis.solver_settings(model, rtl=1e-6):
            pass

    raises(InputError, "solver_settings cannot change rtl", "rtol", call=change)
    assert not hasattr(model.ode.settings, "rtl")


def test_pca_with_more_components_than_features_is_refused():
    raises(InputError, "components must be an integer from 1 to 3", call=lambda: analysis.PCA(torch.rand(5, 3), 4))


# ---------------------------------------------------------------------------------------------------
# widgets
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trajectories():
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(12) % 10
    return analysis.Trajectories(torch.linspace(0, 1, 4, dtype=torch.float64), torch.randn(4, 12, 20, generator=g),
                                 labels, (labels + 1) % 10)


def test_show_without_a_widget_front_end_draws_the_static_figure(trajectories, monkeypatch):
    shown = []
    monkeypatch.delenv("NODEUTILS_STATIC_VIEWS", raising=False)
    monkeypatch.setattr(widgets, "display", lambda obj: shown.append("widget"))
    monkeypatch.setattr(widgets.plt, "show", lambda: shown.append("static figure"))
    widgets.show(widgets.TrajectoryExplorer(trajectories))  # pytest is a plain Python process: no front end
    assert shown == ["static figure"]


def test_show_environment_variable_zero_forces_the_widget(trajectories, monkeypatch):
    shown = []
    monkeypatch.setenv("NODEUTILS_STATIC_VIEWS", "0")
    monkeypatch.setattr(widgets, "display", lambda obj: shown.append(type(obj).__name__))
    widgets.show(widgets.TrajectoryExplorer(trajectories))
    assert shown[-1] == "VBox"  # (the figure before it is drawn into the widget's Output area)


def test_show_unknown_environment_value_is_refused(trajectories, monkeypatch):
    monkeypatch.setenv("NODEUTILS_STATIC_VIEWS", "maybe")
    raises(InputError, "NODEUTILS_STATIC_VIEWS='maybe' is not understood", "1 (static figures)",
           call=lambda: widgets.show(widgets.TrajectoryExplorer(trajectories)))


def test_show_of_something_else_is_refused():
    raises(InputError, "show() takes a TrajectoryExplorer", "plt.show()", call=lambda: widgets.show(42))


def test_trajectory_explorer_digit_out_of_range_is_refused(trajectories):
    raises(InputError, "each digit must be an integer from 0 to 9", "11",
           call=lambda: widgets.TrajectoryExplorer(trajectories, digits=[3, 11]))


def test_tolerance_explorer_empty_tolerance_list_is_refused(model, tiny_loaders):
    raises(InputError, "tolerances must be a non-empty list",
           call=lambda: widgets.ToleranceExplorer(model, tiny_loaders[1], tolerances=[]))


def test_mistake_explorer_zero_images_is_refused(trajectories):
    raises(InputError, "max_images must be a positive integer",
           call=lambda: widgets.MistakeExplorer(torch.rand(12, 1, 28, 28), trajectories, max_images=0))

