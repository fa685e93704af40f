"""`rnnlab-generate`: continue a prompt with the language model of a finished MLflow run (task=lm), or write a
text for a label with the conditional generator of one (task=generate).

    rnnlab-generate run_id=<MLflow run id> prompt="the company said" words=20 strategy=topk top_k=10 seed=0
    rnnlab-generate model=models:/<registered name>/<version> prompt="the" strategy=sample temperature=0.8
    rnnlab-generate run_id=<a task=generate run> label=positive words=15 strategy=topk seed=0

The model first reads `<eos>` (it learned that a sentence starts after one) and then the prompt, whose words
outside the vocabulary are read as `<unk>` (with a note on stderr). It then emits `words` tokens one at a time,
carrying its state. `<eos>` is one of them and prints as a line break. Strategies: greedy (the most probable
word: deterministic), sample (from softmax(logits / temperature)), topk (the same, among the top_k words only).
The same seed gives the same text. `<pad>` is never emitted; `<unk>` can be, as in the training text.

A task=generate run needs `label=` (one of its data.labels): the model starts from the state that label gives,
reads `<bos>` and the prompt (optional), and writes until its `<eos>` (not printed) or `words` words.
"""

from __future__ import annotations

import os
import sys

from rnnlab.errors import ConfigError, exit_on_user_error

USAGE = ('usage: rnnlab-generate run_id=<MLflow run id> | model=models:/<name>/<version> [prompt="..."] '
         "[words=20] [strategy=greedy|sample|topk] [temperature=1.0] [top_k=10] [seed=0] [tracking_uri=...] "
         "[label=... (a task=generate run)]")
STRATEGIES = ("greedy", "sample", "topk")
EOS, PAD_ID = "<eos>", 0


def generate(model, tokenizer, prompt: str, words: int = 20, strategy: str = "greedy", temperature: float = 1.0,
             top_k: int = 10, seed: int = 0) -> list[str]:
    """The `words` tokens the model emits after reading `<eos>` and the prompt (`<eos>` included as a token)."""
    import torch

    eos_id = tokenizer.token_to_id(EOS)
    if eos_id is None:
        raise ConfigError(f"the run's tokenizer has no {EOS} token: it is not a language model's tokenizer")
    generator = torch.Generator().manual_seed(seed)
    ids = [eos_id, *tokenizer.encode(prompt).ids] if prompt.strip() else [eos_id]
    emitted = []
    model.eval()
    with torch.no_grad():
        logits, state = model(torch.tensor([ids]))
        for _ in range(words):
            next_id = _choose(logits[0, -1], strategy, temperature, top_k, generator)
            emitted.append(tokenizer.id_to_token(next_id))
            logits, state = model(torch.tensor([[next_id]]), state)
    return emitted


def generate_for_label(model, tokenizer, label_id: int, prompt: str = "", words: int = 20,
                       strategy: str = "greedy", temperature: float = 1.0, top_k: int = 10,
                       seed: int = 0) -> list[str]:
    """The words a conditional generator (models/conditional_lm.py) writes for class `label_id` after `<bos>`
    and the prompt: until its `<eos>` (not included) or `words` words."""
    import torch

    prompt_ids = tokenizer.encode(prompt).ids if prompt.strip() else []
    generator = torch.Generator().manual_seed(seed)
    (written,) = model.sample(torch.tensor([label_id]), words, strategy, temperature, top_k, generator,
                              prompts=[prompt_ids])
    return [tokenizer.id_to_token(i) for i in written]


def _choose(logits, strategy: str, temperature: float, top_k: int, generator) -> int:
    """The next id from one step's logits [V] (never `<pad>`)."""
    return int(choose_next(logits.unsqueeze(0), strategy, temperature, top_k, generator)[0])


def choose_next(logits, strategy: str, temperature: float, top_k: int, generator, banned=(PAD_ID,)):
    """The next id of each row of logits [B, V], by `strategy`; the `banned` ids are never chosen."""
    import torch

    logits = logits.float().clone()
    logits[:, list(banned)] = float("-inf")
    if strategy == "greedy":
        return logits.argmax(-1)
    if strategy == "topk":
        kept = torch.topk(logits, min(top_k, logits.size(-1) - len(banned)), dim=-1)
        choice = torch.multinomial(torch.softmax(kept.values / temperature, -1), 1, generator=generator)
        return kept.indices.gather(-1, choice).squeeze(-1)
    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator).squeeze(-1)


def render(prompt: str, tokens: list[str]) -> str:
    """The prompt and its continuation as text: `<eos>` ends a line."""
    text = " ".join([prompt.strip(), *tokens]).strip()
    return "\n".join(line.strip() for line in text.split(EOS))


def run_of_model(uri: str, tracking_uri: str | None) -> str:
    """The run id behind `models:/<name>/<version>` or `models:/<name>@<alias>` in the model registry."""
    from rnnlab.tracking import runs

    spec = uri.removeprefix("models:/")
    name, sep, version = spec.rpartition("/")
    alias = None
    if not sep:
        name, sep, alias = spec.rpartition("@")
    if not uri.startswith("models:/") or not sep or not name or not (version or alias):
        raise ConfigError(f"model={uri!r} is not models:/<registered name>/<version> (or models:/<name>@<alias>)")
    client = runs.client(tracking_uri or runs.tracking_uri())
    try:
        found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except Exception as err:
        raise ConfigError(f"model={uri!r} is not in the model registry of {tracking_uri or runs.tracking_uri()}: "
                          "check the name and version (MLflow UI, Models)") from err
    if not found.run_id:
        raise ConfigError(f"model={uri!r} was registered without a run: register it from a training run")
    return found.run_id


def parse(argv: list[str]) -> dict:
    """key=value arguments, typed and checked (rnnlab.config_schema.SCRIPT_ARGS): one error naming the bad
    argument and what it should be; the defaults for the options not given."""
    from rnnlab.cli import key_values
    from rnnlab.config_schema import SCRIPT_ARGS

    args = key_values(argv, SCRIPT_ARGS["rnnlab-generate"], USAGE)
    if ("run_id" in args) == ("model" in args):
        raise ConfigError(f"give exactly one of run_id= and model=; {USAGE}")
    defaults = {"prompt": "", "strategy": "greedy", "words": 20, "top_k": 10, "seed": 0, "temperature": 1.0}
    return {**defaults, **args}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    from rnnlab.cli import print_help_if_asked

    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, USAGE, __doc__):
        return
    args = parse(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from rnnlab.data.tokenization import words as split_words
    from rnnlab.predict import load_run

    tracking_uri = args.get("tracking_uri")
    run_id = args.get("run_id") or run_of_model(args["model"], tracking_uri)
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
    unknown = [w for w in split_words(tokenizer, args["prompt"]) if tokenizer.token_to_id(w) is None]
    if unknown:
        print(f"rnnlab: note: not in the vocabulary, read as <unk>: {' '.join(unknown)}", file=sys.stderr)
    options = {key: args[key] for key in ("words", "strategy", "temperature", "top_k", "seed")}
    if kind == "generate":
        tokens = generate_for_label(model, tokenizer, labels.index(args["label"]), args["prompt"], **options)
    else:
        tokens = generate(model, tokenizer, args["prompt"], **options)
    print(render(args["prompt"], tokens))


if __name__ == "__main__":
    main()
