"""Many-to-many, encoder-decoder: translation (Tatoeba English -> Spanish by default).

Training minimises the target words' cross-entropy (padding never counts), reading the true previous word with
probability `task.teacher_forcing`. Validation decodes greedily and reports BLEU and chrF (sacrebleu) on the
lowercased words of the project's tokenizers, both sides split the same way: the objective is val_bleu.
The test split is decoded with `task.beam_size` (1 = greedy); BLEU is also reported separately for source
sentences of at least `task.long_words` words (test_bleu_long) and shorter ones (test_bleu_short), which is where
attention should show. A table of example translations and (with attention) attention maps are logged.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.data.conventions import BOS, EOS, PAD_ID
from rnnlab.data.tokenization import load_tokenizer, words
from rnnlab.errors import ConfigError
from rnnlab.tasks.base import Built, SplitPerplexity, TaskModule


def build(cfg) -> Built:
    from hydra.utils import instantiate

    from rnnlab.data.pairs import PairDataModule

    tokenized_dir = Path(cfg.paths.tokenized_dir)
    target_file = tokenized_dir / "target_tokenizer.json"
    if not target_file.exists():
        raise ConfigError(f"{tokenized_dir} has no target_tokenizer.json: task=translation needs a data set of "
                          "sentence pairs (data=tatoeba_spa, tokenizer=pairs) tokenized by `dvc repro`")
    source_tokenizer, target_tokenizer = load_tokenizer(tokenized_dir / "tokenizer.json"), load_tokenizer(target_file)
    datamodule = PairDataModule(str(tokenized_dir), bos_id=target_tokenizer.token_to_id(BOS),
                                eos_id=target_tokenizer.token_to_id(EOS), batch_size=cfg.data.batch_size,
                                eval_batch_size=cfg.data.eval_batch_size, pool_batches=cfg.data.pool_batches,
                                num_workers=cfg.data.num_workers, seed=cfg.seed)
    datamodule.setup()
    model = make_model(cfg, source_tokenizer, target_tokenizer)
    task = cfg.task
    module = TranslationTask(model, source_tokenizer, target_tokenizer, datamodule, optimizer=instantiate(cfg.optimizer),
                             teacher_forcing=task.teacher_forcing, beam_size=task.beam_size,
                             length_penalty=task.length_penalty, long_words=task.long_words,
                             examples=task.examples, attention_maps=task.attention_maps)
    return Built(datamodule, module, [tokenized_dir / "tokenizer.json", target_file])


def make_model(config, source_tokenizer, target_tokenizer):
    from hydra.utils import instantiate

    if not 0 <= config.task.get("teacher_forcing", 1.0) <= 1:
        raise ConfigError(f"task.teacher_forcing={config.task.teacher_forcing} must be in [0, 1]")
    model = instantiate(config.model, source_vocab_size=source_tokenizer.get_vocab_size(),
                        target_vocab_size=target_tokenizer.get_vocab_size(),
                        embedding_dim=config.embedding.get("dim", 0) or 256, embedding_kind=config.embedding.name)
    model.target_tokenizer = target_tokenizer  # what `translate` needs to turn ids back into words
    return model


def model_for_run(config, tokenizer, files: Path):
    return make_model(config, tokenizer, load_tokenizer(files / "target_tokenizer.json"))


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the real target words: positions whose target is `<pad>` (id 0) never count."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD_ID)


def count_words(words: list[str]) -> int:
    """Words that hold a letter or digit (punctuation does not make a sentence long)."""
    return sum(1 for word in words if re.search(r"\w", word))


def detokenize(words: list[str]) -> str:
    """Readable text from the tokenizer's words: no space before closing punctuation or after ¿ ¡."""
    text = " ".join(words)
    text = re.sub(r" ([.,!?;:%)»])", r"\1", text)
    return re.sub(r"([¿¡(«]) ", r"\1", text)


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """BLEU and chrF of space-separated words (already tokenized alike, so sacrebleu does not re-tokenize)."""
    import sacrebleu

    if not hypotheses:
        return {"bleu": 0.0, "chrf": 0.0}
    # force: the text is tokenized on purpose (sacrebleu would warn that it looks undetokenized)
    return {"bleu": sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none", force=True).score,
            "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score}


TRANSLATE_BATCH = 64  # sentences decoded together by `translate`


def translate(model, source_tokenizer, texts: list[str], beam: int = 5, length_penalty: float = 1.0) -> list[dict]:
    """Translate each text: {"text", "translation", "words", "source_words", "attention"}."""
    from rnnlab.models.decoding import beam_search

    target = model.target_tokenizer
    encoded = [source_tokenizer.encode(text).ids for text in texts]
    for text, ids in zip(texts, encoded, strict=True):
        if not ids:
            raise ConfigError(f"nothing to translate in {text!r}: give a sentence with at least one word")
    out = []
    for start in range(0, len(texts), TRANSLATE_BATCH):  # all the beams of a batch of sentences at once
        chunk = encoded[start:start + TRANSLATE_BATCH]
        ids = torch.full((len(chunk), max(map(len, chunk))), PAD_ID, dtype=torch.long)
        for row, sentence in enumerate(chunk):
            ids[row, :len(sentence)] = torch.tensor(sentence)
        out += beam_search(model, ids, torch.tensor([len(s) for s in chunk]), target.token_to_id(BOS),
                           target.token_to_id(EOS), beam=beam, length_penalty=length_penalty)
    results = []
    for text, decoded in zip(texts, out, strict=True):
        output = [target.id_to_token(i) for i in decoded.ids]
        results.append({"text": text, "translation": detokenize(output), "words": output,
                        "source_words": words(source_tokenizer, text), "attention": decoded.attention})
    return results


def model_example(config) -> tuple[str, dict | None]:
    """The MLflow model's input example and params (tasks/mlflow_model.py): the beam and length penalty."""
    return "Where is the train station ?", {"beam": int(config["task"].get("beam_size", 5)),
                                            "length_penalty": float(config["task"].get("length_penalty", 1.0))}


def predict_rows(model, tokenizer, config, texts: list[str], params: dict) -> list[dict]:
    """The MLflow model's output: a `translation` per text."""
    beam = int(params.get("beam", config.task.get("beam_size", 5)))
    penalty = float(params.get("length_penalty", config.task.get("length_penalty", 1.0)))
    return [{"translation": row["translation"]}
            for row in translate(model, tokenizer, texts, beam=beam, length_penalty=penalty)]


def attention_map(weights: torch.Tensor, source_words: list[str], output_words: list[str]):
    """A matplotlib Figure: rows = output words (the last one `<eos>`), columns = source words, cells = weights."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = weights.detach().cpu().float().numpy()[:len(output_words), :len(source_words)]
    figure, ax = plt.subplots(figsize=(1.0 + 0.45 * len(source_words), 1.0 + 0.35 * len(output_words)))
    image = ax.imshow(grid, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(source_words)), source_words, rotation=60, ha="right")
    ax.set_yticks(range(len(output_words)), output_words)
    ax.set_xlabel("source word")
    ax.set_ylabel("output word")
    figure.colorbar(image, ax=ax, fraction=0.04, label="attention weight")
    figure.tight_layout()
    return figure


class TranslationTask(SplitPerplexity, TaskModule):
    validation_metrics = ("val_loss", "val_ppl", "val_bleu", "val_chrf", "val_acc")

    def __init__(self, model: nn.Module, source_tokenizer, target_tokenizer, datamodule, optimizer,
                 scheduler=None, teacher_forcing: float = 1.0, beam_size: int = 1, length_penalty: float = 1.0,
                 long_words: int = 10, examples: int = 20, attention_maps: int = 3):
        super().__init__(model, optimizer, scheduler)

        if beam_size < 1:
            raise ConfigError(f"task.beam_size={beam_size} must be at least 1 (1 = greedy decoding)")
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.bos_id, self.eos_id = target_tokenizer.token_to_id(BOS), target_tokenizer.token_to_id(EOS)
        self.texts = {split: data.texts for split, data in datamodule.splits.items()}
        self.teacher_forcing, self.beam_size, self.length_penalty = teacher_forcing, beam_size, length_penalty
        self.long_words, self.examples, self.attention_maps = long_words, examples, attention_maps
        self.decoded: dict[int, object] = {}  # row -> Decoded: the split's decoding (test: with task.beam_size)
        self.greedy_decoded: dict[int, object] = {}
        self.loss_sums: dict[str, torch.Tensor] = {}
        self.token_counts: dict[str, int] = {}
        self.correct = 0  # teacher-forced next-word predictions that were right, this evaluation

    def forward(self, batch, teacher_forcing: float = 1.0):
        return self.model(batch["source_ids"], batch["source_lengths"], batch["target_ids"][:, :-1],
                          teacher_forcing=teacher_forcing)

    def batch_loss(self, batch):
        return sequence_loss(self(batch)[0], batch["target_ids"][:, 1:])

    def training_step(self, batch, batch_idx):
        targets = batch["target_ids"][:, 1:]
        self.count_tokens(int((targets != PAD_ID).sum()), targets.numel())
        loss = sequence_loss(self(batch, self.teacher_forcing)[0], targets)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=targets.size(0))
        return loss

    def _evaluate(self, batch, split: str, prefix: str) -> None:
        from rnnlab.models.decoding import beam_search, greedy

        logits, _ = self(batch)
        targets = batch["target_ids"][:, 1:]
        real = targets != PAD_ID
        self.add_to_split(prefix, F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD_ID,
                                                  reduction="sum"), int(real.sum()))
        self.correct += int(((logits.argmax(-1) == targets) & real).sum())
        rows = batch["index"].tolist()
        found = greedy(self.model, batch["source_ids"], batch["source_lengths"], self.bos_id, self.eos_id)
        self.greedy_decoded.update(zip(rows, found, strict=True))
        if split == "test" and self.beam_size > 1:
            found = beam_search(self.model, batch["source_ids"], batch["source_lengths"], self.bos_id, self.eos_id,
                                beam=self.beam_size, length_penalty=self.length_penalty)
        self.decoded.update(zip(rows, found, strict=True))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "validation", "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test", "test")

    def on_validation_epoch_start(self) -> None:
        self._reset("val")

    def on_test_epoch_start(self) -> None:
        self._reset("test")

    def _reset(self, prefix: str) -> None:
        self.decoded, self.greedy_decoded, self.correct = {}, {}, 0
        self.reset_split(prefix)

    def _finish(self, split: str, prefix: str) -> dict[str, float]:
        texts = self.texts[split]
        rows = sorted(self.decoded)
        references = [" ".join(words(self.target_tokenizer, texts["target"][r])) for r in rows]
        hypotheses = self._hypotheses(self.decoded, rows)
        scores = {f"{prefix}_{k}": v for k, v in corpus_scores(hypotheses, references).items()}
        if prefix == "test":  # what the beam adds over greedy decoding, on the same sentences
            scores["test_bleu_greedy"] = corpus_scores(self._hypotheses(self.greedy_decoded, rows), references)["bleu"]
        self.log_split(prefix)
        scores[f"{prefix}_acc"] = self.correct / max(self.token_counts[prefix], 1)
        if prefix == "test":
            long = [count_words(words(self.source_tokenizer, texts["source"][r])) >= self.long_words for r in rows]
            for name, wanted in (("long", True), ("short", False)):
                chosen = [i for i, is_long in enumerate(long) if is_long == wanted]
                part = corpus_scores([hypotheses[i] for i in chosen], [references[i] for i in chosen])
                scores[f"test_bleu_{name}"] = part["bleu"]
                scores[f"test_sentences_{name}"] = float(len(chosen))
            self._log_examples(texts, rows, hypotheses)
        self.log_dict(scores)
        return scores

    def _hypotheses(self, decoded: dict, rows: list[int]) -> list[str]:
        return [" ".join(self.target_tokenizer.id_to_token(i) for i in decoded[r].ids) for r in rows]

    def on_validation_epoch_end(self) -> None:
        if self.decoded:
            self._finish("validation", "val")

    def on_test_epoch_end(self) -> None:
        self._finish("test", "test")

    def _log_examples(self, texts: dict, rows: list[int], hypotheses: list[str]) -> None:
        """translations_test.md (every k-th test sentence, so short and long ones appear) and attention maps."""
        if self.logger is None or not hasattr(self.logger, "run_id"):
            return
        client, run_id = self.logger.experiment, self.logger.run_id
        chosen = list(range(0, len(rows), max(1, len(rows) // max(self.examples, 1))))[:self.examples]
        lines = ["| source | reference | model |", "|---|---|---|"]
        for i in chosen:
            cells = (texts["source"][rows[i]], texts["target"][rows[i]],
                     detokenize(hypotheses[i].split()))
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        client.log_text(run_id, "\n".join(lines) + "\n", "translations_test.md")
        if self.model.attention is None or not self.attention_maps:
            return
        import matplotlib.pyplot as plt

        longest = sorted(chosen, key=lambda i: -len(self.decoded[rows[i]].ids))[:self.attention_maps]
        for n, i in enumerate(longest):
            decoded = self.decoded[rows[i]]
            source = words(self.source_tokenizer, texts["source"][rows[i]])
            source = [w if self.source_tokenizer.token_to_id(w) is not None else f"{w} (unk)" for w in source]
            output = [self.target_tokenizer.id_to_token(t) for t in decoded.ids] + ["<eos>"]
            figure = attention_map(decoded.attention, source, output)
            client.log_figure(run_id, figure, f"attention/sentence_{n}.png")
            plt.close(figure)
