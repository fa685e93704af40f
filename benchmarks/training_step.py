"""The project's training loop (real DataModule, bucketed batches, Lightning) against a plain PyTorch loop over the
same batches and the same model, real tokens per second side by side in one run.

    python benchmarks/training_step.py [--rounds 9] [--batches 6] [--warmup 2] [--threads 1] [--device cpu|cuda]
                                       [--logger mlflow|none] [--ablations] [--out PATH] [overrides ...]

The task, model and DataModule are built exactly as `rnnlab-train experiment=imdb` builds them (Hydra compose +
`rnnlab.tasks.build`), for an LSTM of 1 layer and of 2 bidirectional layers (`--models`). Each round runs both
sides from the same initial weights on the same first `warmup + batches` batches of the train loader (same
sampler order, same collate, DataLoader included on both sides):

- project: a real `pytorch_lightning.Trainer` made from conf/trainer/default.yaml (deterministic, gradient
  clipping, no progress bar; NaN-filling of new tensors off, as `rnnlab-train` sets it), the config's callbacks (early stopping, checkpoint) and, by default, the real
  MLflow logger writing to a temporary SQLite store; one epoch limited to the batches, no validation. A callback
  reads the clock at the start of batch `warmup` and at the end of the last batch.
- plain: the same model class and optimizer in a hand-written loop: forward, cross-entropy, backward,
  clip_grad_norm_, step, zero_grad; torch's default flags (not deterministic).

Sides alternate in every round (which goes first rotates), so load from other processes on a shared machine hits
both; the table gives the median per side and the ratio project / plain (goal: >= 0.95: the median over rounds
of the ratio within each round) from wall time, and the same ratio from the process's CPU time (with one thread: the training thread's work; less moved by load, not
immune to it). `--ablations` adds four more loops to every round, the project's with trainer.deterministic=false,
with torch.utils.deterministic.fill_uninitialized_memory=true (torch's default in deterministic mode: every new
tensor filled with NaN, 12-17% of a CPU step; conf/train.yaml turns it off), with the task as the proposed patch makes it (no per-step host sync: `no_sync_task`) and with
a lean task (no per-step metrics, token count or self.log), to show where the project's time goes.
With `--device cuda` the project side composes `trainer=gpu` (as a user's GPU run: deterministic "warn"), the
plain loop runs on cuda, and both clocks are read after torch.cuda.synchronize(). Extra arguments are Hydra overrides for both sides, e.g. for the GPU comparison
with anchors.md: `data.batch_size=64 data.max_length=256 model.hidden_size=256 embedding=learned
embedding.dim=128`.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (label, overrides): the two encoders the issue names
MODELS = {
    "lstm-1l-uni": ["model.cell=lstm", "model.num_layers=1", "model.bidirectional=false"],
    "lstm-2l-bi": ["model.cell=lstm", "model.num_layers=2", "model.bidirectional=true"],
}
GOAL = 0.95
# --ablations: the project's loop with one thing changed, to see where its time goes
ABLATIONS = {"project-nondeterministic": {"deterministic": False},
             "project-nan-fill": {"fill_uninitialized_memory": True},
             "project-no-host-sync": {"variant": "no_sync"},
             "project-lean-task": {"variant": "lean"}}


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def compose_config(overrides: list[str]):
    """The composed `rnnlab-train` config, with data paths made absolute (the script may run from anywhere)."""
    from rnnlab.config import compose

    cfg = compose(overrides)
    if not Path(cfg.paths.data_dir).is_absolute():
        base = Path.cwd() if (Path.cwd() / "conf/train.yaml").exists() else REPO
        cfg.paths.data_dir = str(base / cfg.paths.data_dir)
    return cfg


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _flags():
    import torch

    return {"deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "fill_uninitialized_memory": torch.utils.deterministic.fill_uninitialized_memory,
            "cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def _restore(flags) -> None:
    """Undo what Trainer(deterministic=True) set process-wide, so the plain loop runs with torch's defaults."""
    import torch

    torch.use_deterministic_algorithms(flags["deterministic"], warn_only=flags["warn_only"])
    torch.backends.cudnn.deterministic = flags["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    torch.utils.deterministic.fill_uninitialized_memory = flags["fill_uninitialized_memory"]
    if flags["cublas"] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = flags["cublas"]


def make_clock(warmup: int, device: str):
    import pytorch_lightning as pl

    class StepClock(pl.Callback):
        """Clock from the start of batch `warmup` to the end of the last batch; keeps each timed batch's lengths
        and loss (references only: nothing is read from the device inside the timed window)."""

        def __init__(self):
            self.start = self.end = self.cpu_start = self.cpu_end = None
            self.lengths, self.losses = [], []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == warmup:
                synchronize(device)
                self.start, self.cpu_start = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx >= warmup:
                self.lengths.append(batch["lengths"])
                self.losses.append(outputs["loss"].detach())
                synchronize(device)  # a no-op on cpu; on cuda only the last one matters for the clock
                self.end, self.cpu_end = time.perf_counter(), time.process_time()

    return StepClock()


def no_sync_task(task_class):
    """The task as the proposed patch makes it (see the report): tokens counted on the host batch before it moves
    to the device (`int(lengths.sum())` of a cuda tensor waits for the device), and torchmetrics without argument
    validation (its `torch.unique` checks wait for the device too). Same numbers, no per-step host sync."""

    class NoSyncTask(task_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for collection in (self.train_metrics, self.val_metrics, self.test_metrics):
                for metric in collection.values():
                    metric.validate_args = False

        def on_before_batch_transfer(self, batch, dataloader_idx):
            if self.trainer.training:
                self.count_tokens(int(batch["lengths"].sum()), batch["input_ids"].numel())
            return batch

        def training_step(self, batch, batch_idx):
            return self._step(batch, "train")

    return NoSyncTask


def lean_task(task_class):
    """The task with its per-step extras taken out (metric updates, token counting and its host sync, self.log,
    the step timer hooks): what the bare Lightning loop costs."""

    class LeanTask(task_class):
        def training_step(self, batch, batch_idx):
            return self.loss(self(batch), batch["labels"])

        def on_train_batch_start(self, batch, batch_idx):
            pass

        def on_train_batch_end(self, outputs, batch, batch_idx):
            pass

        def on_train_epoch_end(self):
            pass

    return LeanTask


def run_project(built, cfg, pristine, *, batches: int, warmup: int, device: str, logger: str, store: Path,
                seed: int, deterministic: bool | None = None, fill_uninitialized_memory: bool | None = None,
                variant: str | None = None) -> dict:
    """One Trainer.fit over `warmup + batches` training batches; the seconds of the last `batches` ones.
    Ablations: `deterministic` overrides trainer.deterministic; `fill_uninitialized_memory` sets torch's flag of
    that name (deterministic mode fills every new tensor with NaN unless it is False); `variant` "lean" /
    "no_sync" changes the task."""
    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate

    callbacks = []
    for name, cb_cfg in cfg.callbacks.items():
        extra = {"strict": False} if name == "early_stopping" else {}  # no validation here: nothing to monitor
        callbacks.append(instantiate(cb_cfg, **extra))
    for cb in callbacks:
        if isinstance(cb, pl.callbacks.ModelCheckpoint):
            cb.dirpath = str(store / "checkpoints")
    clock = make_clock(warmup, device)
    if logger == "mlflow":
        import mlflow  # noqa: F401  (imported first: it sets its loggers' level on import)
        from pytorch_lightning.loggers import MLFlowLogger

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        run_logger = MLFlowLogger(experiment_name="benchmark-training-step",
                                  tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    else:
        run_logger = False
    task_class = {None: lambda c: c, "lean": lean_task, "no_sync": no_sync_task}[variant](type(built.module))
    task = task_class(copy.deepcopy(pristine), len(cfg.data.labels), optimizer=instantiate(cfg.optimizer))
    extra = {} if deterministic is None else {"deterministic": deterministic}
    before = _flags()  # read before the Trainer exists: its constructor sets them process-wide
    try:
        trainer = instantiate(cfg.trainer, **extra, accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                              max_epochs=1, limit_train_batches=warmup + batches, limit_val_batches=0,
                              logger=run_logger, callbacks=[*callbacks, clock], default_root_dir=str(store))
        if fill_uninitialized_memory is None:  # as rnnlab-train sets it (conf/train.yaml)
            fill_uninitialized_memory = bool(cfg.get("fill_uninitialized_memory", False))
        torch.utils.deterministic.fill_uninitialized_memory = fill_uninitialized_memory
        torch.manual_seed(seed)  # the same dropout masks as the plain side (when both draw in the same order)
        trainer.fit(task, datamodule=built.datamodule)
    finally:
        _restore(before)
    return {"seconds": clock.end - clock.start, "cpu_seconds": clock.cpu_end - clock.cpu_start,
            "lengths": [x.cpu() for x in clock.lengths], "losses": [float(x) for x in clock.losses]}


def run_plain(built, cfg, pristine, *, batches: int, warmup: int, device: str, seed: int) -> dict:
    """The same model, optimizer and batches in a hand-written loop."""
    import torch
    from hydra.utils import instantiate

    model = copy.deepcopy(pristine).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = instantiate(cfg.optimizer)(params=params)
    loss_fn = torch.nn.CrossEntropyLoss()
    clip = cfg.trainer.gradient_clip_val
    lengths, losses, start, cpu_start = [], [], None, None
    torch.manual_seed(seed)
    loader = built.datamodule.train_dataloader()
    loader.batch_sampler.set_epoch(0)  # as Lightning does at the start of epoch 0
    for index, batch in enumerate(loader):
        if index == warmup:
            synchronize(device)
            start, cpu_start = time.perf_counter(), time.process_time()
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        loss = loss_fn(model(batch["input_ids"], batch["lengths"]), batch["labels"])
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        optimizer.zero_grad()
        if index >= warmup:
            lengths.append(batch["lengths"])
            losses.append(loss.detach())
        if index + 1 == warmup + batches:
            break
    synchronize(device)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "lengths": [x.cpu() for x in lengths],
            "losses": [float(x) for x in losses]}


def measure(overrides: list[str] | None = None, models: dict[str, list[str]] | None = None, *, rounds: int = 9,
            batches: int = 6, warmup: int = 2, device: str = "cpu", logger: str = "mlflow",
            base: tuple[str, ...] = ("experiment=imdb",), ablations: bool = False, report=print) -> list[dict]:
    """For each model: alternate project and plain (and, with `ablations`, ABLATIONS) for `rounds` rounds; one
    result dict per model. The config is `rnnlab-train`'s with the overrides `base`, the model's, then
    `overrides`."""
    import pytorch_lightning as pl
    import torch

    from rnnlab.tasks import build

    quiet_lightning()
    results = []
    with tempfile.TemporaryDirectory(prefix="rnnlab-bench-") as tmp:
        store = Path(tmp)
        for label, model_overrides in (models or MODELS).items():
            user_trainer = any(o.startswith("trainer=") for o in overrides or [])
            gpu = ["trainer=gpu"] if device == "cuda" and not user_trainer else []  # as a user's GPU run
            cfg = compose_config([*base, *gpu, *model_overrides, *(overrides or [])])
            torch.set_flush_denormal(bool(cfg.get("flush_denormal", True)))  # as train.py does
            pl.seed_everything(cfg.seed, workers=True, verbose=False)
            built = build(cfg)
            pristine = copy.deepcopy(built.module.model)
            sides = ["project", "plain", *(ABLATIONS if ablations else [])]
            times = {side: [] for side in sides}
            cpu_times = {side: [] for side in sides}
            check = {}
            for r in range(rounds):
                for side in sides[r % len(sides):] + sides[:r % len(sides)]:  # who goes first rotates
                    if side == "plain":
                        out = run_plain(built, cfg, pristine, batches=batches, warmup=warmup, device=device,
                                        seed=cfg.seed)
                    else:
                        out = run_project(built, cfg, pristine, batches=batches, warmup=warmup, device=device,
                                          logger=logger, store=store, seed=cfg.seed, **ABLATIONS.get(side, {}))
                    times[side].append(out["seconds"])
                    cpu_times[side].append(out["cpu_seconds"])
                    check[side] = out
                report(f"  {label} round {r + 1}/{rounds}: " + ", ".join(
                    f"{side} {times[side][-1]:.2f} s" for side in sides), flush=True)
            same_batches = all(torch.equal(a, b) for a, b in zip(check["project"]["lengths"],
                                                                   check["plain"]["lengths"], strict=True))
            real = sum(int(x.sum()) for x in check["plain"]["lengths"])
            slots = sum(x.numel() * int(x.max()) for x in check["plain"]["lengths"])
            project_s, plain_s = statistics.median(times["project"]), statistics.median(times["plain"])
            results.append({
                "model": label, "overrides": [*model_overrides, *(overrides or [])],
                "cell": cfg.model.cell, "num_layers": cfg.model.num_layers,
                "bidirectional": cfg.model.bidirectional, "hidden_size": cfg.model.hidden_size,
                "embedding": cfg.embedding.name, "embedding_dim": cfg.embedding.get("dim"),
                "batch_size": cfg.data.batch_size, "max_length": cfg.data.max_length,
                "batches": batches, "warmup_batches": warmup, "rounds": rounds,
                "real_tokens": real, "padded_slots": slots, "padding_fraction": 1 - real / slots,
                "batch_lengths_max": [int(x.max()) for x in check["plain"]["lengths"]],
                "same_batches": same_batches,
                "loss_max_abs_diff": max(abs(a - b) for a, b in zip(check["project"]["losses"],
                                                                   check["plain"]["losses"], strict=True)),
                "seconds": times, "cpu_seconds": cpu_times,
                "project_tokens_per_sec": real / project_s, "plain_tokens_per_sec": real / plain_s,
                "project_ms_per_step": 1000 * project_s / batches, "plain_ms_per_step": 1000 * plain_s / batches,
                "ratio": paired(times["plain"], times["project"]),
                "ratio_of_medians": plain_s / project_s,
                "ratio_per_round": [p / q for p, q in zip(times["plain"], times["project"], strict=True)],
                "cpu_time_ratio": paired(cpu_times["plain"], cpu_times["project"]),
                "sides": {side: {"ms_per_step": 1000 * statistics.median(times[side]) / batches,
                                 "tokens_per_sec": real / statistics.median(times[side]),
                                 "vs_plain": paired(times["plain"], times[side]),
                                 "vs_plain_cpu_time": paired(cpu_times["plain"], cpu_times[side])}
                          for side in sides},
            })
    return results


def paired(reference: list[float], other: list[float]) -> float:
    """Median over rounds of reference / other, each round's two times taken side by side (load drift cancels)."""
    return statistics.median(r / o for r, o in zip(reference, other, strict=True))


def markdown(results: list[dict]) -> str:
    lines = ["| model | batches x size (truncation) | padding | project tok/s | plain tok/s | project ms/step | "
             "plain ms/step | project / plain, wall (rounds: min-max) | by CPU time | goal >= 0.95 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        per = r["ratio_per_round"]
        lines.append(
            f"| {r['model']} | {r['batches']} x {r['batch_size']} ({r['max_length']}) | {r['padding_fraction']:.1%} | "
            f"{r['project_tokens_per_sec']:,.0f} | {r['plain_tokens_per_sec']:,.0f} | {r['project_ms_per_step']:.1f} | "
            f"{r['plain_ms_per_step']:.1f} | {r['ratio']:.3f} ({min(per):.3f}-{max(per):.3f}) | "
            f"{r['cpu_time_ratio']:.3f} | {'yes' if r['ratio'] >= GOAL else 'NO'} |")
    if any(len(r["sides"]) > 2 for r in results):
        lines += ["", "Ablations: *nondeterministic* = trainer.deterministic=false; *nan-fill* = deterministic with "
                  "torch.utils.deterministic.fill_uninitialized_memory=True (torch's default; rnnlab-train turns it off); *no-host-sync* = tokens counted on the "
                  "host batch, torchmetrics validate_args=False; *lean-task* = no per-step metrics, token count or "
                  "self.log.", "", "| model | loop | ms/step | tokens/s | vs plain, wall | vs plain, CPU time |",
                  "|---|---|---|---|---|---|"]
        for r in results:
            for side, v in r["sides"].items():
                lines.append(f"| {r['model']} | {side} | {v['ms_per_step']:.1f} | {v['tokens_per_sec']:,.0f} | "
                             f"{v['vs_plain']:.3f} | {v['vs_plain_cpu_time']:.3f} |")
    return "\n".join(lines)


def markdown_page(doc: dict) -> str:
    """The short markdown next to the JSON: machine, command, table."""
    command = " ".join(["python benchmarks/training_step.py", *doc["argv"]])
    return (f"# Training step: project loop vs plain PyTorch loop\n\n{doc['device']} ({doc['device_name']}, "
            f"{doc['cpu_count']} cores visible), {doc['threads']} thread(s), torch {doc['torch']}, "
            f"Lightning {doc['pytorch_lightning']}, project logger: {doc['logger']}\n\n`{command}`\n\n"
            f"{markdown(doc['results'])}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batches", type=int, default=6, help="timed batches per side and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches before them")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--logger", choices=("mlflow", "none"), default="mlflow",
                        help="the project side's logger: the real MLflow logger to a temporary SQLite store, or none")
    parser.add_argument("--ablations", action="store_true",
                        help="also time the project's loop with trainer.deterministic=false, with "
                             "fill_uninitialized_memory=false, with the proposed no-host-sync task, and with a lean "
                             "task (no per-step metrics, token count or self.log): where the project's time goes")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results (default benchmarks/results/training_step-<device>.json; .md next to it)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both sides (e.g. data.batch_size=64)")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch")
    torch.set_num_threads(args.threads)
    out = args.out or REPO / "benchmarks/results" / f"training_step-{args.device}.json"
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else cpu_name()
    print(f"training step: project (Lightning) vs plain loop, {args.device} ({device_name}), {args.threads} thread(s), "
          f"{os.cpu_count()} cores visible, torch {torch.__version__}", flush=True)
    start = time.perf_counter()
    results = measure(args.overrides, {name: MODELS[name] for name in args.models}, rounds=args.rounds,
                      batches=args.batches, warmup=args.warmup, device=args.device, logger=args.logger,
                      ablations=args.ablations)
    table = markdown(results)
    print("\n" + table)
    for r in results:
        print(f"{r['model']}: same batches on both sides: {r['same_batches']}; "
              f"max |loss project - loss plain| over the timed batches: {r['loss_max_abs_diff']:.2e}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    import pytorch_lightning as pl

    doc = {"benchmark": "training_step", "device": args.device, "device_name": device_name,
           "threads": args.threads, "cpu_count": os.cpu_count(), "torch": torch.__version__,
           "pytorch_lightning": pl.__version__, "logger": args.logger,
           "project_side": "pytorch_lightning.Trainer from the composed trainer config (conf/trainer/default.yaml: "
                           "deterministic=true, gradient_clip_val, no progress bar; trainer=gpu with --device cuda), "
                           "config callbacks, "
                           + ("MLFlowLogger to a temporary SQLite store" if args.logger == "mlflow" else "no logger")
                           + ", limit_train_batches, no validation",
           "plain_side": "same model/optimizer/DataLoader; forward, CE, backward, clip_grad_norm_, step, zero_grad; "
                         "torch default (non-deterministic) flags",
           "goal": GOAL, "argv": sys.argv[1:], "results": results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown_page(doc))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
