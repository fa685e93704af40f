"""The music study's judge, as a Lightning callback of a language-model run (task=lm on music tokens): after the
test, the selected model writes `samples` melodies from the test chorales' keys (rnnlab.music.evaluation), logs
their measures against the test set as `melody_<measure>` metrics (and the baselines' as
`melody_<baseline>_<measure>`, so every run's numbers come with their scale), and logs the first `examples` as
MIDI, WAV and piano-roll PNG under the run's `music/` artifacts."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from rnnlab.analysis.callbacks import log_metrics, quietly
from rnnlab.data.tokenization import load_tokenizer
from rnnlab.music.melody import key_token


class MelodyEvaluation(pl.Callback):
    def __init__(self, prepared_dir: str, samples: int = 20, max_events: int = 200, strategy: str = "topk",
                 temperature: float = 1.0, top_k: int = 10, seed: int = 0, examples: int = 3):
        self.prepared_dir, self.samples, self.max_events = prepared_dir, samples, max_events
        self.options = {"strategy": strategy, "temperature": temperature, "top_k": top_k, "seed": seed}
        self.examples = examples

    def on_test_end(self, trainer, pl_module) -> None:
        from rnnlab.music.corpus import prepared_melodies
        from rnnlab.music.evaluation import generate_melodies, judge, write_examples

        test = prepared_melodies(self.prepared_dir, "test")
        train = prepared_melodies(self.prepared_dir, "train")
        tokenizer = load_tokenizer(Path(trainer.datamodule.tokenized_dir) / "tokenizer.json")
        keys = [key_token(test[i % len(test)]) for i in range(self.samples)]
        with quietly(pl_module):  # the run's random streams and train/eval modes are left as they were
            generated = generate_melodies(pl_module.model, tokenizer, keys, self.max_events, **self.options)
        measures = judge(generated, test, train, self.options["seed"])
        metrics = {f"melody_{name}": value for name, value in measures["generated"].items()}
        for baseline in ("train", "shuffled test", "random"):
            tag = baseline.replace(" ", "_")
            metrics.update({f"melody_{tag}_{name}": value for name, value in measures[baseline].items()})
        metrics["melody_empty"] = sum(not m.pitches for m in generated)
        log_metrics(trainer, metrics)
        out = Path(trainer.default_root_dir) / "music"
        files = write_examples(generated, out, self.examples)
        _log_artifacts(trainer, files)


def _log_artifacts(trainer, paths: list[Path]) -> None:
    for logger in trainer.loggers:
        if hasattr(logger, "run_id") and hasattr(logger.experiment, "log_artifact"):
            for path in paths:
                logger.experiment.log_artifact(logger.run_id, str(path), "music")
