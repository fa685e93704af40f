"""rnnlab: reproducible experiments with recurrent neural networks on text."""

from rnnlab import cpu_kernels

cpu_kernels.pin()  # before numpy or torch load: the same float kernels on every x86-64 CPU (cpu_kernels.py)

__version__ = "0.1.0"
