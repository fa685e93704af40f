"""`rnnlab-predict`: label texts with the best checkpoint of a finished MLflow run (classifier or tagger).

    rnnlab-predict run_id=<MLflow run id> text="the movie was okay"
    rnnlab-predict model=models:/sentiment@best file=reviews.txt
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rnnlab.cli import key_values, print_help_if_asked, run_id_of
from rnnlab.config_schema import SCRIPT_ARGS
from rnnlab.errors import ConfigError, exit_on_user_error
from rnnlab.tasks import load_run

USAGE = ('usage: rnnlab-predict run_id=<MLflow run id> | model=models:/<name>@<alias> text="..." | '
         'file=<one text per line> [tracking_uri=...]')


def predict(model, tokenizer, config, texts: list[str]) -> list[dict]:
    """Label and class probabilities for each text (truncated as in training); for a tagger, the tag of each
    whitespace-separated word."""
    if config.task.get("kind", "classify") == "ner":
        from rnnlab.tasks.ner import tag

        sentences = [text.split() for text in texts]
        if not all(sentences):
            raise ConfigError("an empty text cannot be tagged: give at least one word per line")
        return [{"text": text, "tags": list(zip(words, tags, strict=True))}
                for text, words, tags in zip(texts, sentences, tag(model, tokenizer, sentences), strict=True)]

    from rnnlab.tasks.classify import classify_texts

    return classify_texts(model, tokenizer, config.data, texts)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, USAGE, __doc__):
        return

    args = key_values(argv, SCRIPT_ARGS["rnnlab-predict"], USAGE)
    if not ({"text", "file"} & args.keys()):
        raise ConfigError(USAGE)
    run_id = run_id_of(args, USAGE)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    texts = [args["text"]] if "text" in args else Path(args["file"]).read_text().splitlines()
    model, tokenizer, config = load_run(run_id, args.get("tracking_uri"))
    elsewhere = {"lm": f"it is a language model: continue text with `rnnlab-generate run_id={run_id} "
                       'prompt="..."`',
                 "generate": f"it generates text: `rnnlab-generate run_id={run_id} label=...`",
                 "translation": f"it translates: `rnnlab-translate run_id={run_id} text=\"...\"`"}
    kind = config.task.get("kind", "classify")
    if kind in elsewhere:
        raise ConfigError(f"run {run_id} does not label texts: {elsewhere[kind]}")
    for row in predict(model, tokenizer, config, texts):
        if "tags" in row:
            print(" ".join(f"{word}/{tag}" for word, tag in row["tags"]))
        else:
            print(f"{row['label']}\t{row['probabilities']}\t{row['text']}")


if __name__ == "__main__":
    main()
