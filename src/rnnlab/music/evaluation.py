"""Melodies written by a trained language model over music tokens, judged against the test chorales.

The model starts each melody from a test chorale's key token (so the generated set has the test set's keys), and
writes event tokens until `<eos>` or `max_events`; each melody is seeded (seed + its index), so a rerun writes the
same music. The set is measured against the test melodies (rnnlab.music.measures) beside the shuffled-note and
random baselines and the train melodies, which give the numbers their scale, and the first few melodies are
written as MIDI, WAV and piano-roll PNG for a person to hear and see.
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.data.conventions import EOS
from rnnlab.music.measures import melody_measures, random_baseline, shuffled_baseline
from rnnlab.music.melody import Melody, tokens_to_melody
from rnnlab.music.render import write_midi, write_piano_roll, write_wav


def generate_melodies(model, tokenizer, key_tokens: list[str], max_events: int, strategy: str = "topk",
                      temperature: float = 1.0, top_k: int = 10, seed: int = 0) -> list[Melody]:
    """One melody per key token: the model reads `<eos>` and the key, then writes until `<eos>`."""
    from rnnlab.models.sampling import continue_prompt

    melodies = []
    for index, key in enumerate(key_tokens):
        tokens = continue_prompt(model, tokenizer, key, words=max_events, strategy=strategy,
                                 temperature=temperature, top_k=top_k, seed=seed + index)
        if EOS in tokens:
            tokens = tokens[:tokens.index(EOS)]
        melodies.append(tokens_to_melody([key, *tokens], name=f"generated-{index + 1}"))
    return melodies


def judge(generated: list[Melody], test: list[Melody], train: list[Melody], seed: int) -> dict[str, dict]:
    """{set name: its measures against the test melodies} for the generated set and the reference points."""
    sets = {"generated": generated, "train": train, "shuffled test": shuffled_baseline(test, seed),
            "random": random_baseline(test, seed), "test": test}
    return {name: melody_measures([m for m in melodies if m.pitches], test) for name, melodies in sets.items()}


def write_examples(melodies: list[Melody], out_dir: str | Path, count: int) -> list[Path]:
    """MIDI, WAV and piano-roll PNG of the first `count` melodies with notes; the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for melody in [m for m in melodies if m.pitches][:count]:
        stem = out / melody.name
        written += [write_midi(melody, stem.with_suffix(".mid")), write_wav(melody, stem.with_suffix(".wav")),
                    write_piano_roll(melody, stem.with_suffix(".png"))]
    return written


def learned_keys(tokenizer) -> list[str]:
    """The key tokens in a music model's vocabulary: the starts it can write from."""
    return sorted(token for token in tokenizer.get_vocab() if token.startswith("<key:"))


def written_melody(tokens: list[str], midi: str | Path | None = None) -> Melody:
    """The melody of a key token and the events written after it (up to `<eos>`); also a MIDI file if `midi`."""
    if EOS in tokens:
        tokens = tokens[:tokens.index(EOS)]
    melody = tokens_to_melody(tokens, name=Path(midi).stem if midi else "generated")
    if midi:
        write_midi(melody, midi)
    return melody
