"""Importing nodeutils changes no environment variable and no signal handler (``python -m nodeutils`` alone
installs its Ctrl-C handler, while the package loads)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, os, signal, sys
before_env, before_sigint = dict(os.environ), signal.getsignal(signal.SIGINT)
import nodeutils
{statement}
print(json.dumps({{"changed": sorted(k for k in set(before_env) | set(os.environ)
                                    if before_env.get(k) != os.environ.get(k)),
                  "sigint_kept": signal.getsignal(signal.SIGINT) is before_sigint}}))
"""


def _probe(statement: str, **env: str) -> dict:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
               **env}
    environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", PROBE.format(statement=statement)], capture_output=True, text=True,
                          env=environ, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", [
    "",
    "from nodeutils import create_model, odeint, train",
    "import nodeutils.compilation, nodeutils.plots, nodeutils.cli",
])
def test_importing_nodeutils_writes_no_environment_variable_and_keeps_the_sigint_handler(statement):
    # ATEN_CPU_CAPABILITY set is the case in which the compile cache folder used to be chosen at import
    result = _probe(statement, ATEN_CPU_CAPABILITY="default")
    assert result == {"changed": [], "sigint_kept": True}


def test_the_compile_cache_folder_is_chosen_per_cpu_capability_when_compiling(monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from nodeutils import compilation

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    compilation._separate_compile_cache_per_cpu_capability()
    # torch.compile's own default folder, with the capability appended
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == default_cache_dir() + "_default"

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/chosen-by-the-user")  # a folder the user set is kept
    compilation._separate_compile_cache_per_cpu_capability()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/tmp/chosen-by-the-user"


def test_explain_keeps_the_compile_cache_folder_per_cpu_capability(monkeypatch):
    import torch
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from nodeutils import compilation

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    compilation.explain("a sum", lambda t: t.sum(), torch.ones(3))  # tracing loads Inductor, which sets the folder
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == default_cache_dir() + "_default"


def test_every_exported_name_resolves_and_dir_lists_it():
    import nodeutils

    for name in nodeutils.__all__:
        assert getattr(nodeutils, name) is not None, name
    assert set(nodeutils.__all__) <= set(dir(nodeutils))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        nodeutils.not_a_name  # noqa: B018
