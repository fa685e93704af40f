"""How a sweep's configurations are named, shown and ordered: the config keys shown under a short name, the
order of their values (rnn before lstm before gru), and a configuration's short key (`word2vec-lstm-2l-bi`).
runs.json rows (reporting/sweep_runs.py, the sweep stage) and the report (the report stage) share them; this
module keeps the sweep stage's code apart from the report's, so a change of the report re-runs no sweep."""

from __future__ import annotations

# configuration keys shown under a short name (every other key that varies in a sweep is shown as is)
CONFIG_LABELS = {"model": "model", "embedding.name": "embedding", "model.cell": "cell", "model.num_layers": "layers",
                 "model.bidirectional": "direction", "model.crf": "crf", "data.length": "T",
                 "model.forget_bias": "forget bias", "model.hidden_size": "hidden", "model.attention": "attention"}
ALWAYS_SHOWN = ["embedding.name", "model.cell", "model.num_layers", "model.bidirectional"]
ORDER = {"bag": 0, "cnn": 1, "recurrent": 2, "rnn": 0, "lstm": 1, "gru": 2, "onehot": 0, "learned": 1, "word2vec": 2,
         "glove": 3, "pretrained": 4, "uni": 0, "bi": 1, "none": 0, "additive": 1, "dot": 2}


def number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def sort_key(config: dict) -> tuple:
    return tuple((ORDER.get(str(v), 9), number(str(v)) if isinstance(number(str(v)), float) else 0, str(v))
                 for v in config.values())


def config_of(row: dict) -> dict:
    """A row's configuration, the usual columns first (runs.json stores its keys sorted)."""
    first = [CONFIG_LABELS[key] for key in ["model", *ALWAYS_SHOWN, "model.crf"]]
    return {**{k: row["config"][k] for k in first if k in row["config"]},
            **{k: v for k, v in sorted(row["config"].items()) if k not in first}}


def describe(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


KEY_FORMS = {"model": "{}", "embedding": "{}", "cell": "{}", "direction": "{}", "layers": "{}l", "T": "T{}", "forget bias": "fb{}",
             "hidden": "h{}"}


def config_key(config: dict) -> str:
    """A short stable name of a configuration, e.g. `word2vec-lstm-2l-bi` or `lstm-1l-uni-T400`."""
    parts = []
    for label, value in config.items():
        if label == "crf":
            parts += ["crf"] if str(value) == "True" else []
        elif value is not None:
            parts.append(KEY_FORMS.get(label, label.split(".")[-1] + "{}").format(value))
    return "-".join(parts)
