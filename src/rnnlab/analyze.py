"""`rnnlab-analyze`: gradient flow and gate activity of a finished run's model, logged to that run.

    rnnlab-analyze run_id=<MLflow run id> [sentence="the movie was okay"] [batches=2] [tracking_uri=...]

Run it in the project the run was trained in: it rebuilds the task from the run's config, which reads the
validation data (and embeddings) under the config's relative paths. It logs what `analysis.gradient_flow=true
analysis.gates=true` would have (rnnlab.analysis.callbacks): analysis/gradient_flow.csv and .png with stage
init (the run's initial weights, rebuilt from its seed) and trained (its best checkpoint, where the in-training
callback uses the last epoch's weights), analysis/gate_stats.csv, analysis/gates_layer<k>.png, and the
grad_h_ratio_* metrics. The heatmaps show `sentence` when given, else validation sequence `sentence_index`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from itertools import islice
from pathlib import Path

from rnnlab.cli import key_values, print_help_if_asked
from rnnlab.config_schema import SCRIPT_ARGS
from rnnlab.data.case import case_id
from rnnlab.data.tokenization import word_id
from rnnlab.errors import ConfigError, exit_on_user_error
from rnnlab.tasks import build, load_run
from rnnlab.tracking import runs

USAGE = ('usage: rnnlab-analyze run_id=<MLflow run id> [sentence="..."] [batches=2] [sentence_index=0] '
         "[max_units=32] [max_tokens=60] [tracking_uri=...]")


def sentence_batch(kind: str, tokenizer, datamodule, sentence: str) -> tuple[dict, list[str]]:
    """A batch of one made from `sentence` as the task's data would encode it, and its token strings."""
    import torch

    from rnnlab.analysis.gates import token_strings

    if kind == "ner":
        from rnnlab.data.tagging import collate, encode_sentence

        words = sentence.split()
        chars = datamodule.chars if datamodule.use_chars else None
        item = encode_sentence([word_id(tokenizer, w) for w in words], [case_id(w) for w in words],
                               [0] * len(words), words, chars, datamodule.max_chars)
        return collate([item]), words
    ids = torch.tensor([tokenizer.encode(sentence).ids])
    if kind == "lm":  # the targets only feed the (unused) loss of the gate pass
        return {"input_ids": ids, "targets": ids}, token_strings(tokenizer, ids[0])
    return {"input_ids": ids, "lengths": torch.tensor([ids.size(1)]), "labels": torch.zeros(1, dtype=torch.long)}, \
        token_strings(tokenizer, ids[0])


def analyze(run_id: str, tracking_uri: str | None = None, sentence: str | None = None, batches: int = 2,
            sentence_index: int = 0, max_units: int = 32, max_tokens: int = 60) -> dict[str, float]:
    """Compute, write and log the analyses of run `run_id`; return its grad_h_ratio_* metrics."""
    import pytorch_lightning as pl
    import torch

    from rnnlab.analysis import callbacks, gates
    from rnnlab.analysis.gradient_flow import gradient_flow, write_csv

    if batches < 1:
        raise ConfigError(f"batches={batches} must be at least 1")
    trained, tokenizer, config = load_run(run_id, tracking_uri)
    kind = config.task.get("kind", "classify")
    if config.get("torch_threads"):
        torch.set_num_threads(config.torch_threads)
    torch.set_flush_denormal(bool(config.get("flush_denormal", True)))
    pl.seed_everything(config.seed, workers=True, verbose=False)  # as rnnlab-train did: the same initial weights
    built = build(config)
    task = built.module.eval()
    val = list(islice(built.datamodule.val_dataloader(), batches))
    rows = [{"stage": "init", **row} for row in gradient_flow(task, val)]
    metrics = callbacks.ratio_metrics([r for r in rows if r["stage"] == "init"], "init")
    task.model.load_state_dict(trained.state_dict())
    trained_rows = gradient_flow(task, val)
    rows += [{"stage": "trained", **row} for row in trained_rows]
    metrics.update(callbacks.ratio_metrics(trained_rows, "trained"))
    if sentence:
        sequence, tokens = sentence_batch(kind, tokenizer, built.datamodule, sentence)
    else:
        sequence = gates.one_sequence(built.datamodule.val_dataloader(), sentence_index)
        tokens = gates.token_strings(tokenizer, sequence["input_ids"][0])
    client = runs.client(tracking_uri or runs.tracking_uri())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = callbacks.write_gradient_flow(rows, task, out)
        files.append(write_csv(gates.gate_statistics(task, val), out / "gate_stats.csv"))
        files += gates.plot_gate_heatmaps(task, sequence, out, tokens, max_units, max_tokens)
        for path in files:
            client.log_artifact(run_id, str(path), "analysis")
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value))
    return metrics


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, USAGE, __doc__):
        return

    args = key_values(argv, SCRIPT_ARGS["rnnlab-analyze"], USAGE)  # typed and checked: batches=0 is an error
    if "run_id" not in args:
        raise ConfigError(USAGE)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    numbers = {key: args[key] for key in ("batches", "sentence_index", "max_units", "max_tokens") if key in args}
    metrics = analyze(args["run_id"], args.get("tracking_uri"), args.get("sentence"), **numbers)
    print(f"run {args['run_id']}: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
          + "; logged under analysis/")


if __name__ == "__main__":
    main()
