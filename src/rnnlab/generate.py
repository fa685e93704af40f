"""`rnnlab-generate`: continue a prompt with the language model of a finished MLflow run (task=lm), or write a
text for a label with the conditional generator of one (task=generate).

    rnnlab-generate run_id=<MLflow run id> prompt="the company said" words=20 strategy=topk top_k=10 seed=0
    rnnlab-generate model=models:/<registered name>/<version> prompt="the" strategy=sample temperature=0.8
    rnnlab-generate run_id=<a task=generate run> label=positive words=15 strategy=topk seed=0
    rnnlab-generate run_id=<a music run> prompt="<key:A-minor>" words=40 strategy=topk seed=3 midi=melody.mid

The model first reads `<eos>` (it learned that a sentence starts after one) and then the prompt, whose words
outside the vocabulary are read as `<unk>` (with a note on stderr). It then emits `words` tokens one at a time,
carrying its state. `<eos>` is one of them and prints as a line break. Strategies (rnnlab.models.sampling): greedy,
sample, topk. The same seed gives the same text. `<pad>` is never emitted; `<unk>` can be, as in the training
text.

A music run (data.format: chorales) starts from a key token it learned, `prompt="<key:A-minor>"` (an unknown key
is refused, naming the learned ones), and `midi=melody.mid` writes the melody as a MIDI file as well.

A task=generate run needs `label=` (one of its data.labels): the model starts from the state that label gives,
reads `<bos>` and the prompt (optional), and writes until its `<eos>` (not printed) or `words` words.
"""

from __future__ import annotations

import os
import sys

from rnnlab.cli import key_values, print_help_if_asked, run_id_of
from rnnlab.config_schema import SCRIPT_ARGS
from rnnlab.data.conventions import EOS
from rnnlab.data.tokenization import words as split_words
from rnnlab.errors import ConfigError, exit_on_user_error
from rnnlab.music.melody import melody_tokens
from rnnlab.tasks import load_run

USAGE = ('usage: rnnlab-generate run_id=<MLflow run id> | model=models:/<name>/<version> [prompt="..."] '
         "[words=20] [strategy=greedy|sample|topk] [temperature=1.0] [top_k=10] [seed=0] [tracking_uri=...] "
         "[label=... (a task=generate run)] [midi=out.mid (a music run)]")


def render(prompt: str, tokens: list[str]) -> str:
    """The prompt and its continuation as text: `<eos>` ends a line."""
    text = " ".join([prompt.strip(), *tokens]).strip()
    return "\n".join(line.strip() for line in text.split(EOS))


def parse(argv: list[str]) -> dict:
    """key=value arguments, typed and checked (rnnlab.config_schema.SCRIPT_ARGS): one error naming the bad
    argument and what it should be; the defaults for the options not given."""
    args = key_values(argv, SCRIPT_ARGS["rnnlab-generate"], USAGE)
    defaults = {"prompt": "", "strategy": "greedy", "words": 20, "top_k": 10, "seed": 0, "temperature": 1.0}
    return {**defaults, **args}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, USAGE, __doc__):
        return
    args = parse(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from rnnlab.models import sampling  # torch


    tracking_uri = args.get("tracking_uri")
    run_id = run_id_of(args, USAGE)
    model, tokenizer, config = load_run(run_id, tracking_uri)
    kind = config.task.get("kind", "classify")
    if kind not in ("lm", "generate"):
        raise ConfigError(f"run {run_id} trained a task.kind={kind} model, not a language model (task=lm) nor a "
                          "conditional generator (task=generate)")
    labels = [str(label) for label in config.data.labels] if kind == "generate" else []
    if kind == "generate" and args.get("label") not in labels:
        given = f"label={args['label']!r} is not one of its labels" if "label" in args else "give label="
        raise ConfigError(f"run {run_id} writes a text for a label (task=generate): {given}; choose one of "
                          f"{'|'.join(labels)}")
    if kind == "lm" and "label" in args:
        raise ConfigError(f"label= is for a task=generate run; run {run_id} is a language model (task=lm): "
                          "drop label=")
    music = config.data.get("format") == "chorales"
    if "midi" in args and not music:
        raise ConfigError(f"midi= writes a melody: run {run_id} did not learn music (its data.format is "
                          f"{config.data.get('format', 'csv')!r}, not 'chorales'); drop midi=")
    if music:
        from rnnlab.music.evaluation import learned_keys

        keys = learned_keys(tokenizer)
        start = (args["prompt"].split() or [""])[0]
        if start not in keys:
            raise ConfigError(f"prompt={args['prompt']!r}: a music run starts from a key it learned; begin the "
                              f"prompt with one of {' '.join(keys)}")
    unknown = [w for w in split_words(tokenizer, args["prompt"]) if tokenizer.token_to_id(w) is None]
    if unknown:
        print(f"rnnlab: note: not in the vocabulary, read as <unk>: {' '.join(unknown)}", file=sys.stderr)
    options = {key: args[key] for key in ("words", "strategy", "temperature", "top_k", "seed")}
    if kind == "generate":
        tokens = sampling.write_for_label(model, tokenizer, labels.index(args["label"]), args["prompt"],
                                          **options)
    else:
        tokens = sampling.continue_prompt(model, tokenizer, args["prompt"], **options)
    if music:
        from rnnlab.music.evaluation import written_melody

        melody = written_melody([*args["prompt"].split(), *tokens], args.get("midi"))
        print(f"{melody.key_name}, {len(melody.events)} events: {' '.join(melody_tokens(melody)[1:])}")
        if "midi" in args:
            print(f"wrote {args['midi']}")
        return
    print(render(args["prompt"], tokens))


if __name__ == "__main__":
    main()
