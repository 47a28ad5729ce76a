from types import SimpleNamespace

import pytest
import torch

from nodeutils import env
from nodeutils.errors import InputError


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
    from nodeutils.env import pick_device
    from nodeutils.errors import InputError

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
