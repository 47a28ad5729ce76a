"""nodeutils.env: version information, devices and thread counts."""

from types import SimpleNamespace

import pytest
import torch
from helpers import assert_refused
from torch.utils.data import DataLoader, TensorDataset

from nodeutils import env
from nodeutils.env import default_threads, pick_device
from nodeutils.errors import InputError
from nodeutils.evaluation import accuracy


def test_versioninfo_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    env.versioninfo()
    text = capsys.readouterr().out
    assert "torch: " in text and "torchdiffeq: " in text and "CUDA: no GPU found" in text


def test_versioninfo_with_a_mocked_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: SimpleNamespace(name="Fake GPU 9000", major=9, minor=0))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (10 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    monkeypatch.setattr(env, "nvidia_driver_version", lambda: "560.35.03")
    text = env.versioninfo_text()
    assert "0: Fake GPU 9000 (sm_90, 10.000 GiB / 16.000 GiB available)" in text
    assert "cuDNN 90100" in text and "NVIDIA driver 560.35.03" in text


def test_pick_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert env.pick_device("auto").type == "cpu"
    with pytest.raises(InputError, match="no CUDA GPU is available"):
        env.pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert env.pick_device("auto").type == "cuda"


def test_driver_version_is_unknown_without_nvidia_smi(monkeypatch):
    monkeypatch.setattr(env.shutil, "which", lambda name: None)
    assert env.nvidia_driver_version() == "unknown"


def test_nodeutils_device_variable_chooses_the_default_device(monkeypatch):
    monkeypatch.delenv("NODEUTILS_DEVICE", raising=False)
    assert pick_device().type == "cpu"
    monkeypatch.setenv("NODEUTILS_DEVICE", "cpu")
    assert pick_device(None).type == "cpu"
    monkeypatch.setenv("NODEUTILS_DEVICE", "auto")
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu").type == "cpu"  # an explicit device wins over the variable
    monkeypatch.setenv("NODEUTILS_DEVICE", "gpu")
    with pytest.raises(InputError, match="NODEUTILS_DEVICE='gpu' is not a device"):
        pick_device()


def test_default_threads_reads_omp_num_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert default_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "two")
    with pytest.raises(InputError, match="OMP_NUM_THREADS='two'"):
        default_threads()


def _loader() -> DataLoader:
    x = torch.rand(24, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, torch.arange(24) % 10), batch_size=10)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_device_object_without_gpu(model):
    for device in (torch.device("cuda"), torch.device("cuda", 1)):
        with pytest.raises(InputError, match="no CUDA GPU"):
            pick_device(device)
        with pytest.raises(InputError, match="no CUDA GPU"):
            accuracy(model, _loader(), device=device)


def test_device_names_normalised(model):
    assert pick_device(" CPU") == pick_device(torch.device("cpu", 0)) == torch.device("cpu")
    assert 0 <= accuracy(model, _loader(), device=torch.device("cpu")) <= 1
    with pytest.raises(InputError, match="unknown device"):
        accuracy(model, _loader(), device="tpu")


BAD_INPUTS = [
    pytest.param(lambda: env.versioninfo(file="out.txt"), InputError,
                 ("file must be an open text file", "'out.txt'"), id="versioninfo to a file name"),
    pytest.param(lambda: pick_device(torch.device("meta")), InputError, ("unknown device", "meta"), id="meta"),
    pytest.param(lambda: pick_device("cpu:3"), InputError, ("one CPU",), id="cpu:3"),
    pytest.param(lambda: pick_device(torch.device("cpu", 2)), InputError, ("one CPU",), id="torch.device(cpu, 2)"),
    pytest.param(lambda: pick_device("gpu"), InputError, ("unknown device",), id="gpu"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments):
    assert_refused(call, error, fragments)
