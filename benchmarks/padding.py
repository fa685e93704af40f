"""Padding: bucketed against random batches, and the project's exact masking against `pack_padded_sequence`, on the
real IMDB train sequences; real (non-pad) tokens per second of LSTM classifier training steps.

    python benchmarks/padding.py [--rounds 4] [--pool-batches 8] [--threads 1] [--device cpu|cuda]
                                 [--layers 1] [--bidirectional] [--out PATH] [hydra overrides ...]

The sequences are the project's: `ClassificationDataModule` of `experiment=imdb` (token ids of the train split,
truncated as conf/data/imdb.yaml says: 400 tokens, tail). One set S of `pool_batches * batch_size` of them is
taken the way the project's `BucketBatchSampler` takes its first pool (seeded shuffle), and cut into batches two
ways: *random* (consecutive chunks of the shuffled order, the textbook DataLoader(shuffle=True)) and *bucketed*
(`BucketBatchSampler` over S: sorted by length, cut, batch order shuffled). Each batch is right-padded to its own
longest sequence. Both ways hold the same real tokens, so tokens per second compare directly. Four variants:

    (a) random + pack_padded_sequence   (b) random + masking   (c) bucketed + packing   (d) bucketed + masking

*masking* is the project's `SequenceClassifier` (embedding -> `RecurrentEncoder`, which handles padding exactly
with fused kernels and no packing -> last state -> linear); *packing* is the textbook classifier (embedding ->
`pack_padded_sequence(enforce_sorted=False)` -> `nn.LSTM` -> h_n -> linear) with the very same weights. A step is
forward, cross-entropy, backward, clip_grad_norm_(1.0), Adam step, zero_grad, on a model copied from the same
initial weights for every variant and round; dropout is 0 so both compute the same function. The variants
alternate in every round (rotating which goes first), so load on a shared machine hits all of them; the table
gives the median per variant and, against (a), the median over rounds of the ratio within each round, from wall
time and from the process's CPU time (less moved by load). Goal: (d) >= 1.5x the real tokens per second of (a),
with identical results: the script prints the largest differences between masking and packing on the same
batches (final states, logits, loss, every gradient, and the parameters after a few Adam steps).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_step import REPO, compose_config, cpu_name, paired, synchronize  # noqa: E402

from rnnlab.data.batching import BucketBatchSampler, pad_batch  # noqa: E402
from rnnlab.models.classifier import SequenceClassifier  # noqa: E402

GOAL = 1.5
VARIANTS = {"a": ("random", "packed"), "b": ("random", "masked"), "c": ("bucketed", "packed"),
            "d": ("bucketed", "masked")}


class PackedClassifier(nn.Module):
    """The textbook way: embedding -> pack_padded_sequence -> nn.LSTM -> final hidden state(s) -> linear."""

    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int, hidden_size: int, num_layers: int,
                 bidirectional: bool, cell: str = "lstm"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](
            embedding_dim, hidden_size, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
        self.bidirectional = bidirectional
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def summary(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(input_ids), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, state = self.rnn(packed)
        h_n = state[0] if isinstance(state, tuple) else state  # [layers * directions, B, H]
        return torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.bidirectional else h_n[-1]

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.summary(input_ids, lengths))

    @classmethod
    def like(cls, masked: SequenceClassifier) -> PackedClassifier:
        """A packed classifier holding exactly the weights of the project's masked one."""
        enc = masked.encoder
        packed = cls(masked.embedding.num_embeddings, masked.head.out_features, masked.embedding.embedding_dim,
                     enc.hidden_size, enc.num_layers, enc.bidirectional, enc.cell)
        with torch.no_grad():
            packed.embedding.weight.copy_(masked.embedding.weight)
            packed.head.load_state_dict(masked.head.state_dict())
            for layer in range(enc.num_layers):
                directions = [("", enc.forward_layers[layer])]
                if enc.bidirectional:
                    directions.append(("_reverse", enc.backward_layers[layer]))
                for suffix, module in directions:
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        getattr(packed.rnn, f"{name}_l{layer}{suffix}").copy_(getattr(module, f"{name}_l0"))
        return packed.to(masked.head.weight.device)

    def masked_names(self, masked: SequenceClassifier) -> dict[str, str]:
        """This model's parameter name -> the masked model's name for the same tensor."""
        enc = masked.encoder
        names = {"embedding.weight": "embedding.weight", "head.weight": "head.weight", "head.bias": "head.bias"}
        for layer in range(enc.num_layers):
            for suffix, side in (("", "forward_layers"), ("_reverse", "backward_layers")):
                if suffix and not enc.bidirectional:
                    continue
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    names[f"rnn.{name}_l{layer}{suffix}"] = f"encoder.{side}.{layer}.{name}_l0"
        return names


def make_masked(vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int, bidirectional: bool,
                cell: str = "lstm", seed: int = 0) -> SequenceClassifier:
    torch.manual_seed(seed)
    return SequenceClassifier(vocab_size, 2, embedding_dim=embedding_dim, cell=cell, hidden_size=hidden_size,
                              num_layers=num_layers, bidirectional=bidirectional, dropout=0.0,
                              embedding_dropout=0.0, output_dropout=0.0, pooling="last")


def make_batches(sequences: list[torch.Tensor], labels: torch.Tensor, batch_size: int, pool_batches: int,
                 seed: int) -> dict[str, list[dict]]:
    """The set S (the project sampler's first pool of the seeded shuffle) cut into random and bucketed batches."""
    lengths = np.array([len(s) for s in sequences])
    order = np.random.default_rng([seed, 0]).permutation(len(sequences))  # as BucketBatchSampler, epoch 0
    pool = order[:batch_size * pool_batches]
    random_batches = [pool[i:i + batch_size] for i in range(0, len(pool), batch_size)]
    sampler = BucketBatchSampler(lengths[pool], batch_size, shuffle=True, seed=seed, pool_batches=pool_batches)
    bucketed_batches = [pool[np.asarray(b)] for b in sampler]

    def collate(rows):
        ids, lens = pad_batch([sequences[i] for i in rows])
        return {"input_ids": ids, "lengths": lens, "labels": labels[torch.as_tensor(rows)]}

    return {"random": [collate(b) for b in random_batches], "bucketed": [collate(b) for b in bucketed_batches]}


def padding_fraction(batches: list[dict]) -> float:
    real = sum(int(b["lengths"].sum()) for b in batches)
    return 1 - real / sum(b["input_ids"].numel() for b in batches)


def epoch_padding(lengths: np.ndarray, batch_size: int, pool_batches: int, seed: int) -> dict[str, float]:
    """Padding fraction of a whole epoch (from lengths only): random batches, and the project's sampler."""
    order = np.random.default_rng([seed, 0]).permutation(len(lengths))
    random_batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    bucketed = list(BucketBatchSampler(lengths, batch_size, shuffle=True, seed=seed, pool_batches=pool_batches))

    def frac(batches):
        return 1 - sum(lengths[b].sum() for b in batches) / sum(len(b) * lengths[b].max() for b in batches)

    return {"random": float(frac(random_batches)), "bucketed": float(frac(bucketed))}


def to_device(batch: dict, device: str) -> dict:
    return {key: value.to(device) for key, value in batch.items()}


def train_steps(model: nn.Module, batches: list[dict], clip: float = 1.0, lr: float = 1e-3) -> list:
    """forward, cross-entropy, backward, clip, Adam step, zero_grad for each batch; the losses (device tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for batch in batches:
        loss = loss_fn(model(batch["input_ids"], batch["lengths"]), batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.detach())
    return losses


def compare(masked: SequenceClassifier, batches: list[dict], steps: int = 3) -> dict[str, float]:
    """Largest |masking - packing| on the same batches with the same weights: the final states (the summary the
    head reads), logits, loss and every gradient on the first batch; the losses and all parameters after
    `steps` Adam steps."""
    masked = copy.deepcopy(masked).train()
    packed = PackedClassifier.like(masked).train()
    names = packed.masked_names(masked)
    batch = batches[0]
    loss_fn = nn.CrossEntropyLoss()
    _, summary_m = masked.encoder(masked.embedding(batch["input_ids"]), batch["lengths"])
    summary_p = packed.summary(batch["input_ids"], batch["lengths"])
    logits_m = masked(batch["input_ids"], batch["lengths"])
    logits_p = packed(batch["input_ids"], batch["lengths"])
    loss_m, loss_p = loss_fn(logits_m, batch["labels"]), loss_fn(logits_p, batch["labels"])
    loss_m.backward()
    loss_p.backward()
    masked_params = dict(masked.named_parameters())
    grad = max(float((p.grad - masked_params[names[n]].grad).abs().max()) for n, p in packed.named_parameters())
    grad_scale = max(float(p.grad.abs().max()) for p in packed.parameters())
    masked.zero_grad()
    packed.zero_grad()
    losses_m = train_steps(masked, batches[:steps])
    losses_p = train_steps(packed, batches[:steps])
    after = max(float((p - masked_params[names[n]]).detach().abs().max()) for n, p in packed.named_parameters())
    return {"final_state": float((summary_m - summary_p).detach().abs().max()),
            "logits": float((logits_m - logits_p).detach().abs().max()),
            "loss": abs(float(loss_m.detach()) - float(loss_p.detach())),
            "gradients": grad, "largest_gradient": grad_scale,
            f"losses_{steps}_steps": max(abs(float(a) - float(b)) for a, b in zip(losses_m, losses_p, strict=True)),
            f"parameters_after_{steps}_steps": after}


def measure(sequences: list[torch.Tensor], labels: torch.Tensor, *, vocab_size: int, batch_size: int = 32,
            pool_batches: int = 8, seed: int = 0, embedding_dim: int = 100, hidden_size: int = 128,
            num_layers: int = 1, bidirectional: bool = False, rounds: int = 4, warmup: int = 2,
            device: str = "cpu", report=print) -> dict:
    """Time the four variants over the same set of sequences; their tokens per second and the equality check."""
    batches = make_batches(sequences, labels, batch_size, pool_batches, seed)
    batches = {kind: [to_device(b, device) for b in bs] for kind, bs in batches.items()}
    real = sum(int(b["lengths"].sum()) for b in batches["random"])
    assert real == sum(int(b["lengths"].sum()) for b in batches["bucketed"])
    initial = make_masked(vocab_size, embedding_dim, hidden_size, num_layers, bidirectional, seed=seed).to(device)
    models = {"masked": lambda: copy.deepcopy(initial).train(),
              "packed": lambda: PackedClassifier.like(initial).train()}
    equality = {kind: compare(initial, batches[kind]) for kind in ("random", "bucketed")}
    for key in VARIANTS:  # warm-up (allocator, kernel caches), untimed
        kind, method = VARIANTS[key]
        train_steps(models[method](), batches[kind][:warmup])
    seconds = {key: [] for key in VARIANTS}
    cpu_seconds = {key: [] for key in VARIANTS}
    keys = list(VARIANTS)
    for r in range(rounds):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            kind, method = VARIANTS[key]
            model = models[method]()
            synchronize(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            train_steps(model, batches[kind])
            synchronize(device)
            seconds[key].append(time.perf_counter() - start)
            cpu_seconds[key].append(time.process_time() - cpu_start)
        report(f"  round {r + 1}/{rounds}: " + ", ".join(f"({k}) {seconds[k][-1]:.1f} s" for k in keys), flush=True)
    median = {key: statistics.median(v) for key, v in seconds.items()}
    variants = {}
    for key, (kind, method) in VARIANTS.items():
        variants[key] = {
            "batches": kind, "padding": method, "padding_fraction": padding_fraction(batches[kind]),
            "seconds": seconds[key], "cpu_seconds": cpu_seconds[key], "tokens_per_sec": real / median[key],
            "ms_per_step": 1000 * median[key] / len(batches[kind]),
            "vs_a": paired(seconds["a"], seconds[key]), "vs_a_cpu_time": paired(cpu_seconds["a"], cpu_seconds[key]),
            "vs_a_of_medians": median["a"] / median[key],
            "vs_a_per_round": [a / x for a, x in zip(seconds["a"], seconds[key], strict=True)]}
    return {"sequences": len(batches["random"]) * batch_size, "batches_per_variant": len(batches["random"]),
            "batch_size": batch_size, "pool_batches": pool_batches, "real_tokens": real, "rounds": rounds,
            "cell": "lstm", "num_layers": num_layers, "bidirectional": bidirectional, "hidden_size": hidden_size,
            "embedding_dim": embedding_dim, "vocab_size": vocab_size, "variants": variants,
            "equality_max_abs_diff": equality}


def markdown(result: dict, epoch: dict | None = None) -> str:
    names = {"a": "(a) random + packing", "b": "(b) random + masking", "c": "(c) bucketed + packing",
             "d": "(d) bucketed + masking"}
    lines = ["| variant | padding | real tokens/s | ms/step | vs (a), wall (rounds: min-max) | vs (a), CPU time |",
             "|---|---|---|---|---|---|"]
    for key, v in result["variants"].items():
        per = v["vs_a_per_round"]
        lines.append(f"| {names[key]} | {v['padding_fraction']:.1%} | {v['tokens_per_sec']:,.0f} | "
                     f"{v['ms_per_step']:.0f} | {v['vs_a']:.2f}x ({min(per):.2f}-{max(per):.2f}) | {v['vs_a_cpu_time']:.2f}x |")
    d = result["variants"]["d"]["vs_a"]
    lines.append(f"\nGoal: (d) >= {GOAL}x (a) real tokens/s: {d:.2f}x, {'met' if d >= GOAL else 'NOT met'}.")
    if epoch:
        lines.append(f"Padding over a whole epoch of the train split: random batches {epoch['random']:.1%}, the "
                     f"project's bucketing (pool of {epoch['pool_batches']} batches) {epoch['bucketed']:.1%}.")
    lines.append("\n| masking vs packing, same weights and batch | max abs diff, random batch | bucketed batch |")
    lines.append("|---|---|---|")
    eq = result["equality_max_abs_diff"]
    for key in eq["random"]:
        label = key.replace("_", " ") + (" (scale, not a difference)" if key == "largest_gradient" else "")
        lines.append(f"| {label} | {eq['random'][key]:.2e} | {eq['bucketed'][key]:.2e} |")
    return "\n".join(lines)


def describe(doc: dict) -> str:
    return (f"LSTM {doc['num_layers']} layer(s){' bidirectional' if doc['bidirectional'] else ''}, hidden "
            f"{doc['hidden_size']}, embedding {doc['embedding_dim']}, batch {doc['batch_size']}; S = "
            f"{doc['sequences']} sequences, {doc['real_tokens']:,} real tokens, {doc['batches_per_variant']} batches "
            "per variant")


def markdown_page(doc: dict) -> str:
    """The short markdown next to the JSON: machine, command, tables."""
    command = " ".join(["python benchmarks/padding.py", *doc["argv"]])
    return (f"# Padding: bucketing and masking vs random batches and packing\n\n{doc['device']} "
            f"({doc['device_name']}, {doc['cpu_count']} cores visible), {doc['threads']} thread(s), torch "
            f"{doc['torch']}\n\n`{command}`\n\n{describe(doc)}\n\n"
            f"{markdown(doc, doc['epoch_padding_fraction'])}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pool-batches", type=int, default=8,
                        help="batches in the timed set S (the project buckets pools of data.pool_batches=50)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches per variant before the rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results (default benchmarks/results/padding-<device>.json; .md next to it)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (data.batch_size, data.max_length, "
                                                     "model.hidden_size, embedding.dim ...)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as train.py does by default (flush_denormal: true)

    from rnnlab.data.datamodule import ClassificationDataModule
    from rnnlab.data.tokenization import load_tokenizer

    cfg = compose_config(["experiment=imdb", *args.overrides])
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else cpu_name()
    print(f"padding: bucketed vs random batches, masking vs packing, {args.device} ({device_name}), "
          f"{args.threads} thread(s), {os.cpu_count()} cores visible, torch {torch.__version__}", flush=True)
    start = time.perf_counter()
    data = ClassificationDataModule(cfg.paths.tokenized_dir, batch_size=cfg.data.batch_size,
                                    max_length=cfg.data.max_length, truncation_side=cfg.data.truncation_side,
                                    pool_batches=cfg.data.pool_batches, seed=cfg.seed)
    data.setup()
    train = data.splits["train"]
    vocab_size = load_tokenizer(Path(cfg.paths.tokenized_dir) / "tokenizer.json").get_vocab_size()
    lengths = np.array([len(s) for s in train.ids])
    epoch = {**epoch_padding(lengths, cfg.data.batch_size, cfg.data.pool_batches, cfg.seed),
             "pool_batches": cfg.data.pool_batches}
    print(f"IMDB train: {len(lengths):,} sequences, truncated to {cfg.data.max_length} ({cfg.data.truncation_side}): "
          f"mean length {lengths.mean():.0f}, median {np.median(lengths):.0f}; vocabulary {vocab_size:,}", flush=True)
    result = measure(train.ids, train.labels, vocab_size=vocab_size, batch_size=cfg.data.batch_size,
                     pool_batches=args.pool_batches, seed=cfg.seed, embedding_dim=cfg.embedding.dim,
                     hidden_size=cfg.model.hidden_size, num_layers=args.layers, bidirectional=args.bidirectional,
                     rounds=args.rounds, warmup=args.warmup, device=args.device)
    table = markdown(result, epoch)
    print(f"\n{describe(result)}\n\n{table}\n\ntotal {time.perf_counter() - start:.0f} s")
    doc = {"benchmark": "padding", "device": args.device, "device_name": device_name, "threads": args.threads,
           "cpu_count": os.cpu_count(), "torch": torch.__version__, "goal": GOAL, "argv": sys.argv[1:],
           "max_length": cfg.data.max_length, "truncation_side": cfg.data.truncation_side,
           "train_sequences": len(lengths), "epoch_padding_fraction": epoch, **result}
    out = args.out or REPO / "benchmarks/results" / f"padding-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown_page(doc))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
