"""rnnlab: reproducible experiments with recurrent neural networks on text."""

__version__ = "0.1.0"
