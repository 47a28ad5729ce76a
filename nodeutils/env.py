"""Devices and the environment report shown at the end of every notebook."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import TextIO

import torch

from .checks import check_threads
from .errors import InputError

__all__ = ["pick_device", "default_device_name", "DEVICE_VARIABLE", "default_threads", "versioninfo",
           "versioninfo_text", "cpu_name", "nvidia_driver_version"]

_PACKAGES = ("torch", "torchdiffeq", "torchvision", "numpy", "matplotlib", "ipywidgets", "nodeutils")


#: Environment variable that chooses the device when none is passed (``cpu``, ``cuda``, ``cuda:N`` or ``auto``).
DEVICE_VARIABLE = "NODEUTILS_DEVICE"


def default_device_name() -> str:
    """The device asked for by ``NODEUTILS_DEVICE``, or ``"cpu"`` when it is unset or empty.

    Returns:
        The name as set, e.g. ``"cuda"`` (checked by :func:`pick_device`, not here).
    """
    return os.environ.get(DEVICE_VARIABLE, "").strip() or "cpu"


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve a device name: ``None`` -> ``NODEUTILS_DEVICE`` (default ``cpu``); ``"auto"`` -> CUDA when
    available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` as given.

    The notebooks never name a device, so ``NODEUTILS_DEVICE=cuda`` (or ``auto``) moves all of their
    training to a GPU, e.g. on a Colab GPU runtime, without editing a cell.

    Args:
        device: ``None``, ``"auto"``, a device name or a ``torch.device``.

    Returns:
        The ``torch.device``.

    Raises:
        InputError: an unknown device name (also in ``NODEUTILS_DEVICE``), or a CUDA device this machine lacks.
    """
    if isinstance(device, torch.device):  # checked like its name, so torch.device("cuda") without a GPU is refused
        device = str(device)
    from_variable = device is None
    if from_variable:
        device = default_device_name()
    if isinstance(device, str):
        device = device.strip().lower()  # " CPU" means cpu
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not device.startswith(("cpu", "cuda")):
        if from_variable:
            raise InputError(f"{DEVICE_VARIABLE}={device!r} is not a device: set it to cpu, cuda or auto, or unset it")
        raise InputError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'auto'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was requested but no CUDA GPU is available: use 'cpu' or 'auto'")
    try:
        picked = torch.device(device)
    except RuntimeError as err:  # e.g. "cuda:x"
        raise InputError(f"unknown device {device!r} ({err}): use 'cpu', 'cuda', 'cuda:0' or 'auto'") from None
    if picked.type == "cpu" and picked.index not in (None, 0):
        raise InputError(f"device {device!r} names a CPU by number, but PyTorch has one CPU device: use 'cpu'")
    if picked.type == "cuda" and picked.index is not None and picked.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise InputError(f"device {device!r} was requested but this machine has {count} CUDA GPU"
                         f"{'s' * (count != 1)} (cuda:0 to cuda:{count - 1}): use 'cuda' or 'auto'")
    return torch.device("cpu") if picked.type == "cpu" else picked


def default_threads(warn: bool = False) -> int:
    """PyTorch's intra-op threads for the notebooks: ``OMP_NUM_THREADS`` when set, else 1.

    One thread is as fast as two on an idle 2-core machine and many times faster on a busy or shared
    one (Colab, Binder); results are the same for every thread count.

    Args:
        warn: whether to warn (:class:`~nodeutils.errors.NodeUtilsWarning`) about more threads than CPU cores.

    Returns:
        The number of threads, for ``torch.set_num_threads``.

    Raises:
        InputError: ``OMP_NUM_THREADS`` is set to something other than a whole number from 1 to 1024.
    """
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return check_threads(value, "OMP_NUM_THREADS", warn=warn) if value else 1


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where available, else platform.processor().

    Returns:
        E.g. ``"AMD EPYC 7763 64-Core Processor"``; ``platform.machine()`` (``"x86_64"``) when neither is known.
    """
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_driver_version() -> str:
    """The NVIDIA driver version reported by ``nvidia-smi``.

    Returns:
        E.g. ``"550.54.15"``, or ``"unknown"`` when ``nvidia-smi`` is missing or fails.
    """
    if shutil.which("nvidia-smi") is None:
        return "unknown"
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def versioninfo(file: TextIO | None = None) -> None:
    """Print versions, CPU and threads, and CUDA details when a GPU is present (the tutorial's appendix).

    Args:
        file: an open text file to print to (default: standard output).
    """
    if file is not None and not callable(getattr(file, "write", None)):
        raise InputError(f"file must be an open text file (something with .write), such as sys.stdout or "
                         f"open('versions.txt', 'w'); got {file!r}")
    print(versioninfo_text(), file=file)


def versioninfo_text() -> str:
    """The report printed by :func:`versioninfo`.

    Returns:
        The report's lines, joined by newlines (no newline at the end).
    """
    lines = [
        f"Python {sys.version.split()[0]} ({platform.python_implementation()})",
        f"Platform: {platform.system()} {platform.machine()}",
        f"CPU: {os.cpu_count()} x {cpu_name()}",
        f"Torch threads: {torch.get_num_threads()}",
        "Packages:",
        *[f"  {name}: {_version(name)}" for name in _PACKAGES],
    ]
    if torch.cuda.is_available():
        lines.append(f"CUDA runtime {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            free, total = torch.cuda.mem_get_info(i)
            lines.append(f"  {i}: {props.name} (sm_{props.major}{props.minor}, "
                         f"{free / 2**30:.3f} GiB / {total / 2**30:.3f} GiB available)")
        lines.append(f"NVIDIA driver {nvidia_driver_version()}")
    else:
        lines.append("CUDA: no GPU found")
    return "\n".join(lines)
