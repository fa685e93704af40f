"""Long-range synthetic problems: can a cell carry information across `length` time steps?

The adding problem (Hochreiter & Schmidhuber 1997, as set up by Le et al. 2015 and Arjovsky et al. 2016) and
the copy-memory problem (Arjovsky et al. 2016). Both are generated from a seed with numpy's PCG64, so the same
seed gives the same data on every machine; `SyntheticDataModule` serves seeded train/validation/test sets.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.data.conventions import SPLITS
from rnnlab.data.datamodule import SplitDataModule
from rnnlab.errors import ConfigError

PROBLEMS = ("adding", "copy")


def adding_problem(n: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` sequences of `length` steps: inputs float [n, length, 2], targets float [n].

    Channel 0 holds values drawn from U(0, 1); channel 1 marks exactly two of them with a 1, one in the first
    half (steps < length // 2) and one in the second half. The target is the sum of the two marked values, so
    predicting the constant 1 scores MSE = Var(sum) = 1/6: a model must remember a value for up to `length`
    steps to do better.
    """
    if length < 2:
        raise ConfigError(f"data.length={length} is too short for the adding problem: it needs at least 2 steps "
                          "(one marker in each half); set data.length=2 or more")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = np.stack([values, markers], axis=-1)
    targets = values[rows, first] + values[rows, second]
    return torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(targets, dtype=torch.float32)


def copy_memory(n: int, length: int, seed: int, num_symbols: int = 8,
                copy_length: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` copy-memory sequences: inputs long [n, copy_length + length + copy_length], targets long
    [n, copy_length].

    Layout of one input row (0 = blank, 1..num_symbols = symbols, num_symbols + 1 = delimiter):

        positions 0 .. copy_length-1                  the symbols to remember, uniform over 1..num_symbols
        positions copy_length .. copy_length+length-2 blanks (the delay)
        position  copy_length+length-1                the delimiter: "start recalling after this"
        the last copy_length positions                blanks; here the model must output the symbols in order

    The targets are the first copy_length inputs, to be predicted at the last copy_length positions, i.e.
    `length + copy_length` steps after each was seen. A memoryless model can only guess: cross-entropy
    log(num_symbols) per recalled symbol, accuracy 1 / num_symbols.
    """
    if length < 1:
        raise ConfigError(f"data.length={length} must be at least 1 for the copy problem (the delimiter's step)")
    if num_symbols < 2 or copy_length < 1:
        raise ConfigError(f"data.num_symbols={num_symbols} must be at least 2 and data.copy_length={copy_length} "
                          "at least 1")
    rng = np.random.default_rng(seed)
    symbols = rng.integers(1, num_symbols + 1, size=(n, copy_length))
    inputs = np.zeros((n, copy_length + length + copy_length), dtype=np.int64)
    inputs[:, :copy_length] = symbols
    inputs[:, copy_length + length - 1] = num_symbols + 1
    return torch.as_tensor(inputs), torch.as_tensor(symbols, dtype=torch.long)


def split_seed(seed: int, split: str) -> int:
    """A seed for one split derived from the data seed, so the splits never share sequences by construction."""
    return int(np.random.SeedSequence([seed, SPLITS.index(split)]).generate_state(1)[0])


def check_problem(problem: str) -> None:
    if problem not in PROBLEMS:
        raise ConfigError(f"data.problem={problem!r} is not a long-range problem: choose one of "
                          f"{list(PROBLEMS)} (data=adding or data=copy)")


def generate(problem: str, n: int, length: int, seed: int, num_symbols: int = 8,
             copy_length: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    check_problem(problem)
    if problem == "adding":
        return adding_problem(n, length, seed)
    return copy_memory(n, length, seed, num_symbols, copy_length)


def collate(items) -> dict[str, torch.Tensor]:
    inputs = torch.stack([x for x, _ in items])
    # every sequence has the full length; `lengths` keeps the RecurrentEncoder(x, lengths) API of the other tasks
    return {"inputs": inputs, "targets": torch.stack([y for _, y in items]),
            "lengths": torch.full((len(items),), inputs.size(1), dtype=torch.long)}


class SyntheticDataModule(SplitDataModule):
    """Seeded train / validation / test sets of one long-range problem; batches hold `inputs` (float
    [B, T, 2] for adding, symbol ids [B, T] for copy), `targets` and `lengths`."""

    def __init__(self, problem: str, length: int, sizes: dict[str, int], batch_size: int = 50,
                 eval_batch_size: int = 500, seed: int = 0, num_symbols: int = 8, copy_length: int = 10):
        super().__init__()
        check_problem(problem)
        missing = [split for split in SPLITS if int(sizes.get(split, 0)) < 1]
        if missing:
            raise ConfigError(f"data.sizes needs a positive size for {missing}, e.g. data.sizes.{missing[0]}=1000")
        self.problem, self.length, self.sizes = problem, length, {s: int(sizes[s]) for s in SPLITS}
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.num_symbols, self.copy_length = num_symbols, copy_length
        self.splits: dict[str, torch.utils.data.TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        for split in SPLITS:
            inputs, targets = generate(self.problem, self.sizes[split], self.length, split_seed(self.seed, split),
                                       self.num_symbols, self.copy_length)
            self.splits[split] = torch.utils.data.TensorDataset(inputs, targets)

    def _loader(self, split: str, train: bool) -> torch.utils.data.DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if train else None
        return torch.utils.data.DataLoader(self.splits[split], batch_size=self.batch_size if train
                                           else self.eval_batch_size, shuffle=train, generator=generator,
                                           collate_fn=collate)
