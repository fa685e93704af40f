"""Importing rnnlab holds numpy's OpenBLAS and torch to their AVX2 kernels before they load (rnnlab/cpu_kernels.py),
so a run computes the same bits on any x86-64 CPU with AVX2; a value the machine sets wins, and the pins can be
turned off. Each check starts a fresh interpreter: the libraries read these switches once, when they load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rnnlab import cpu_kernels

VENDOR, FLAGS = cpu_kernels._cpu()
pytestmark = pytest.mark.skipif("avx2" not in FLAGS, reason="no AVX2 on this CPU: the libraries keep their choice")

PROBE = """\
import json
import rnnlab
import numpy, threadpoolctl, torch
print(json.dumps({"openblas": sorted({i["architecture"] for i in threadpoolctl.threadpool_info()
                                      if i["internal_api"] == "openblas"}),
                  "aten": torch.backends.cpu.get_cpu_capability(), "kernels": rnnlab.cpu_kernels.effective()}))
"""


def _probe(**env_changes: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in cpu_kernels.PINS and k != cpu_kernels.OFF}
    proc = subprocess.run([sys.executable, "-c", PROBE], env={**env, **env_changes}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_importing_rnnlab_holds_numpy_and_torch_to_their_avx2_kernels():
    found = _probe()
    assert found["openblas"] == ["Haswell"] and found["aten"] == "AVX2"
    assert ("MKL_CBWR=AVX2" in found["kernels"]) == (VENDOR == "GenuineIntel")  # MKL's branches: Intel CPUs only


def test_a_machine_setting_wins_and_the_pins_can_be_turned_off():
    assert _probe(OPENBLAS_CORETYPE="Sandybridge")["openblas"] == ["Sandybridge"]
    native = _probe(**{cpu_kernels.OFF: "1"})
    assert native["kernels"] == "native"
    if "avx512f" in FLAGS:  # where the libraries would choose wider kernels, the pins are what changed them
        assert native["aten"] == "AVX512" and native["openblas"] != ["Haswell"]
