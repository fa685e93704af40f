"""Objective measures of a set of melodies against a reference set (Yang and Lerch 2020, "On the evaluation of
generative models in music"): pitch-class histogram, pitch range, in-key ratio, interval and duration
distributions, repeated-note ratio.

Distributions (pitch classes, intervals, durations) are pooled over each set and compared by total variation
distance: half the L1 distance of the two probability vectors, 0 when they are the same, 1 when they share
nothing. Per-melody features (pitch range in semitones, in-key ratio, repeated-note ratio) are set means,
reported beside the reference set's own. Two baselines give the numbers a scale: the reference melodies with
their events shuffled (the same notes, no order) and random melodies (pitches uniform over the reference's range,
durations drawn from the reference's, the same lengths), both seeded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from fractions import Fraction

import numpy as np

from rnnlab.music.melody import Melody

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor with the raised leading tone of the harmonic minor
MAX_INTERVAL = 12  # larger leaps pooled in the octave bins


def pitch_class_histogram(melodies: list[Melody]) -> np.ndarray:
    """Pitch classes relative to each melody's tonic (0 = tonic), pooled, as probabilities."""
    counts = np.zeros(12)
    for melody in melodies:
        for pitch in melody.pitches:
            counts[(pitch - melody.tonic) % 12] += 1
    return counts / max(counts.sum(), 1)


def intervals(melody: Melody) -> list[int]:
    """Semitone steps between successive notes (rests skipped), clipped to +-MAX_INTERVAL."""
    pitches = melody.pitches
    return [int(np.clip(b - a, -MAX_INTERVAL, MAX_INTERVAL)) for a, b in zip(pitches, pitches[1:], strict=False)]


def interval_histogram(melodies: list[Melody]) -> dict[int, float]:
    return _probabilities(Counter(step for melody in melodies for step in intervals(melody)))


def duration_histogram(melodies: list[Melody]) -> dict[Fraction, float]:
    return _probabilities(Counter(duration for melody in melodies for pitch, duration in melody.events
                                  if pitch is not None))


def _probabilities(counts: Counter) -> dict:
    total = sum(counts.values())
    return {key: n / total for key, n in counts.items()} if total else {}


def total_variation(p: dict | np.ndarray, q: dict | np.ndarray) -> float:
    if isinstance(p, np.ndarray):
        return float(0.5 * np.abs(p - q).sum())
    return 0.5 * sum(abs(p.get(key, 0.0) - q.get(key, 0.0)) for key in set(p) | set(q))


def pitch_range(melody: Melody) -> int:
    pitches = melody.pitches
    return max(pitches) - min(pitches) if pitches else 0


def in_key_ratio(melody: Melody) -> float:
    """The share of notes whose pitch class is in the melody's key (major, or minor with its leading tone)."""
    scale = MAJOR_SCALE if melody.mode == "major" else MINOR_SCALE
    pitches = melody.pitches
    return sum((p - melody.tonic) % 12 in scale for p in pitches) / len(pitches) if pitches else 0.0


def repeated_note_ratio(melody: Melody) -> float:
    steps = intervals(melody)
    return sum(step == 0 for step in steps) / len(steps) if steps else 0.0


def melody_measures(melodies: list[Melody], reference: list[Melody]) -> dict[str, float]:
    """The measures of `melodies` against `reference` (distances) and on their own (means)."""
    if not melodies:
        return {}
    return {
        "pitch_class_tv": total_variation(pitch_class_histogram(melodies), pitch_class_histogram(reference)),
        "interval_tv": total_variation(interval_histogram(melodies), interval_histogram(reference)),
        "duration_tv": total_variation(duration_histogram(melodies), duration_histogram(reference)),
        "pitch_range": float(np.mean([pitch_range(m) for m in melodies])),
        "in_key_ratio": float(np.mean([in_key_ratio(m) for m in melodies])),
        "repeated_note_ratio": float(np.mean([repeated_note_ratio(m) for m in melodies])),
        "notes_per_melody": float(np.mean([len(m.pitches) for m in melodies])),
    }


def shuffled_baseline(reference: list[Melody], seed: int) -> list[Melody]:
    """Each reference melody with its events in a random order (seeded): its notes, without their order."""
    rng = np.random.default_rng(seed)
    return [replace(m, name=f"{m.name}:shuffled", events=tuple(m.events[i] for i in rng.permutation(len(m.events))))
            for m in reference]


def random_baseline(reference: list[Melody], seed: int) -> list[Melody]:
    """Random melodies as long as the reference's: pitches uniform over the reference's range, durations drawn
    from the reference's notes."""
    rng = np.random.default_rng(seed)
    pitches = [p for m in reference for p in m.pitches]
    durations = [d for m in reference for p, d in m.events if p is not None]
    low, high = min(pitches), max(pitches)
    return [replace(m, name=f"{m.name}:random",
                    events=tuple((int(rng.integers(low, high + 1)), durations[int(rng.integers(len(durations)))])
                                 for _ in m.events))
            for m in reference]
