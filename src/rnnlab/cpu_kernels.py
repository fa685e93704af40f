"""One set of float kernels on every x86-64 CPU with AVX2, so results repeat bit for bit on another CPU model.

Numerical libraries choose their kernels by CPU: OpenBLAS (numpy, scipy, gensim's Word2Vec) its Haswell or
SkylakeX kernels, MKL (torch's matrix products) AVX2 or AVX-512 code, ATen (torch's element-wise ops) and oneDNN
(convolutions) the widest vector unit. Other kernels round differently, and training turns one differing bit
into another model. Seen: Word2Vec on the same text and seed gave other vectors on an Intel Xeon (AVX-512) than
on an AMD EPYC (AVX2), and the same vectors once OpenBLAS was held to its Haswell kernels.

`pin()` sets each library's own switch to its AVX2 code, before numpy or torch load (rnnlab/__init__.py calls
it first thing). A value already in the environment wins (a machine may set OPENBLAS_CORETYPE for its own
reasons), a CPU without AVX2 keeps the libraries' choice, and RNNLAB_NATIVE_KERNELS=1 turns the pins off (the
widest kernels: faster on an AVX-512 CPU, results then repeat on that CPU model only). `effective()` says what a
run used (tagged on every run with the machine).
"""

from __future__ import annotations

import os
import platform

PINS = {"OPENBLAS_CORETYPE": "Haswell", "MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2"}
# MKL honours a branch on Intel CPUs only (elsewhere it would fall back to its AUTO reproducibility mode, which may
# change what an AMD CPU computes); there its own dispatch is already the AVX2 code
INTEL_ONLY = {"MKL_CBWR"}
OFF = "RNNLAB_NATIVE_KERNELS"


def _cpu() -> tuple[str, set[str]]:
    """(vendor, flags) of the first CPU in /proc/cpuinfo; ("", set()) elsewhere than on x86-64 Linux."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "", set()
    vendor, flags = "", set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id":
                    vendor = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                elif not line.strip():
                    break
    except OSError:
        pass
    return vendor, flags


def pin() -> None:
    """Hold the libraries to their AVX2 kernels (see the module's doc); a no-op where it cannot apply."""
    if os.environ.get(OFF, "0") == "1":
        return
    vendor, flags = _cpu()
    if "avx2" not in flags:
        return
    for name, value in PINS.items():
        if name not in INTEL_ONLY or vendor == "GenuineIntel":
            os.environ.setdefault(name, value)


def effective() -> str:
    """The kernel switches in force, `NAME=value` joined by spaces ("native" when none is set)."""
    found = [f"{name}={os.environ[name]}" for name in PINS if os.environ.get(name)]
    return " ".join(found) or "native"
