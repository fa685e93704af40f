"""`rnnlab-predict`: label texts with the best checkpoint of a finished MLflow run (classifier or tagger).

    rnnlab-predict run_id=<MLflow run id> text="the movie was okay"
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from rnnlab.errors import ConfigError, exit_on_user_error

USAGE = 'usage: rnnlab-predict run_id=<MLflow run id> text="..." | file=<one text per line> [tracking_uri=...]'


def load_run(run_id: str, tracking_uri: str | None = None):
    """(model, tokenizer, config) of a training run, rebuilt from its logged artifacts; its checkpoint is read
    as tensors only, its config may build only rnnlab's models (rnnlab.checkpoints): nothing in them runs."""
    from omegaconf import OmegaConf

    from rnnlab import checkpoints
    from rnnlab.data.tokenization import load_tokenizer
    from rnnlab.tasks import task_module
    from rnnlab.tracking import runs

    uri = runs.tracking_uri({"tracking_uri": tracking_uri})  # any user info goes into MLflow's variables
    runs.check_reachable(uri)
    client = runs.client(uri)
    try:
        client.get_run(run_id)
    except Exception as err:
        raise ConfigError(f"run_id={run_id!r} is not a run in {uri}: "
                          "take one from the MLflow UI or results/<study>/runs.json") from err
    with tempfile.TemporaryDirectory() as tmp:
        try:
            files = Path(client.download_artifacts(run_id, "", tmp))
            config = OmegaConf.load(files / "config.yaml")
        except Exception as err:
            raise ConfigError(f"run {run_id} has no config.yaml artifact: is it a training run that started?") from err
        if config.task.get("kind") == "longrange":
            raise ConfigError(f"run {run_id} learned a synthetic long-range task ({config.data.name}): it has no "
                              f"text to label: its gradient flow and gates are in its analysis/ artifacts")
        best = files / "checkpoints/best.ckpt"
        try:
            tokenizer = load_tokenizer(files / "tokenizer.json")
            if not best.is_file():
                raise FileNotFoundError(best)
        except Exception as err:
            raise ConfigError(f"run {run_id} has no model artifacts (config.yaml, tokenizer.json, "
                              "checkpoints/best.ckpt); did it finish?") from err
        checkpoint = checkpoints.load(best, f"the checkpoint checkpoints/best.ckpt of run {run_id}")
        checkpoints.check_targets(config, f"the config.yaml of run {run_id}")
        # older runs predate task.kind: they are all classifiers
        model = task_module(config.task.get("kind", "classify")).model_for_run(config, tokenizer, files)
    state = {key.removeprefix("model."): value for key, value in checkpoint["state_dict"].items()
             if key.startswith("model.")}
    model.load_state_dict(state)
    return model.eval(), tokenizer, config


def predict(model, tokenizer, config, texts: list[str]) -> list[dict]:
    """Label and class probabilities for each text (truncated as in training); for a tagger, the tag of each
    whitespace-separated word."""
    import torch

    if config.task.get("kind", "classify") == "ner":
        from rnnlab.tasks.ner import tag

        sentences = [text.split() for text in texts]
        if not all(sentences):
            raise ConfigError("an empty text cannot be tagged: give at least one word per line")
        return [{"text": text, "tags": list(zip(words, tags, strict=True))}
                for text, words, tags in zip(texts, sentences, tag(model, tokenizer, sentences), strict=True)]

    from rnnlab.data.batching import pad_batch, truncate

    ids = [torch.tensor(truncate(tokenizer.encode(text).ids, config.data.max_length, config.data.truncation_side))
           for text in texts]
    input_ids, lengths = pad_batch(ids)
    with torch.no_grad():
        probs = torch.softmax(model(input_ids, lengths), dim=-1)
    labels = list(config.data.labels)
    return [{"text": text, "label": labels[int(p.argmax())],
             "probabilities": {name: round(float(v), 4) for name, v in zip(labels, p, strict=True)}}
            for text, p in zip(texts, probs, strict=True)]


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    from rnnlab.cli import key_values, print_help_if_asked
    from rnnlab.config_schema import SCRIPT_ARGS

    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, USAGE, __doc__):
        return

    args = key_values(argv, SCRIPT_ARGS["rnnlab-predict"], USAGE)
    if "run_id" not in args or not ({"text", "file"} & args.keys()):
        raise ConfigError(USAGE)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    texts = [args["text"]] if "text" in args else Path(args["file"]).read_text().splitlines()
    model, tokenizer, config = load_run(args["run_id"], args.get("tracking_uri"))
    elsewhere = {"lm": f"it is a language model: continue text with `rnnlab-generate run_id={args['run_id']} "
                       'prompt="..."`',
                 "generate": f"it generates text: `rnnlab-generate run_id={args['run_id']} label=...`",
                 "translation": f"it translates: `rnnlab-translate run_id={args['run_id']} text=\"...\"`"}
    kind = config.task.get("kind", "classify")
    if kind in elsewhere:
        raise ConfigError(f"run {args['run_id']} does not label texts: {elsewhere[kind]}")
    for row in predict(model, tokenizer, config, texts):
        if "tags" in row:
            print(" ".join(f"{word}/{tag}" for word, tag in row["tags"]))
        else:
            print(f"{row['label']}\t{row['probabilities']}\t{row['text']}")


if __name__ == "__main__":
    main()
