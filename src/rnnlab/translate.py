"""`rnnlab-translate`: translate sentences with the encoder-decoder of a finished MLflow run (task=translation).

    rnnlab-translate run_id=<MLflow run id> text="Where is the train station?" [beam=5] [length_penalty=1.0]
    rnnlab-translate run_id=<MLflow run id> file=<one sentence per line> [attention=maps/]

Words outside the source vocabulary are read as `<unk>` (a note on stderr names them). With `attention=DIR`
and a model that attends, an attention map per sentence is written to DIR/sentence_<n>.png.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rnnlab.cli import key_values, print_help_if_asked, run_id_of
from rnnlab.config_schema import SCRIPT_ARGS
from rnnlab.data.tokenization import words
from rnnlab.errors import ConfigError, exit_on_user_error
from rnnlab.tasks import load_run

USAGE = ('usage: rnnlab-translate run_id=<MLflow run id> | model=models:/<name>@<alias> text="..." | '
         'file=<one sentence per line> [beam=5] '
         "[length_penalty=1.0] [attention=<dir for attention maps>] [tracking_uri=...]")


def parse(argv: list[str]) -> dict:
    """key=value arguments, typed and checked (rnnlab.config_schema.SCRIPT_ARGS): beam=0 is one clear error."""
    args = key_values(argv, SCRIPT_ARGS["rnnlab-translate"], USAGE)
    if ("text" in args) == ("file" in args):
        raise ConfigError(f"give exactly one of text= and file=; {USAGE}")
    return {"beam": 5, "length_penalty": 1.0, **args, "run_id": run_id_of(args, USAGE)}


def read_texts(args: dict) -> list[str]:
    if "text" in args:
        texts = [args["text"]]
    else:
        path = Path(args["file"])
        if not path.is_file():
            raise ConfigError(f"file={str(path)!r} does not exist: give a text file with one sentence per line")
        texts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not any(text.strip() for text in texts):
        raise ConfigError("nothing to translate: the text is empty")
    return texts


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, USAGE, __doc__):
        return
    args = parse(argv)
    texts = read_texts(args)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from rnnlab.tasks.translation import translate

    model, tokenizer, config = load_run(args["run_id"], args.get("tracking_uri"))
    if config.task.get("kind") != "translation":
        raise ConfigError(f"run {args['run_id']} trained a task.kind={config.task.get('kind', 'classify')} model, "
                          "not a translation model (task=translation)")
    unknown = sorted({w for text in texts for w in words(tokenizer, text) if tokenizer.token_to_id(w) is None})
    if unknown:
        print(f"rnnlab: note: not in the source vocabulary, read as <unk>: {' '.join(unknown)}", file=sys.stderr)
    results = translate(model, tokenizer, texts, beam=args["beam"], length_penalty=args["length_penalty"])
    for n, row in enumerate(results):
        print(f"{row['text']}\t{row['translation']}")
        if args.get("attention") and row["attention"] is not None:
            from rnnlab.tasks.translation import attention_map

            out = Path(args["attention"])
            out.mkdir(parents=True, exist_ok=True)
            figure = attention_map(row["attention"], row["source_words"], [*row["words"], "<eos>"])
            figure.savefig(out / f"sentence_{n}.png", dpi=110)
            print(f"rnnlab: attention map: {out / f'sentence_{n}.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
