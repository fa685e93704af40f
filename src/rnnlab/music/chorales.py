"""Bach chorales read into melodies (music21 parses the MusicXML / Humdrum files), and split by chorale.

Each score gives its soprano line or its four voices, as events: tied notes merged into one, grace
notes dropped, a chord (none in the chorales' voices) read as its top note. The key is the score's own key
signature with its mode when the file names one, else music21's analysis (Krumhansl-Schmuckler) of the score.
A file that does not parse, or a voice without notes, is skipped and counted by name (`read_chorales`), never
passed on: a corpus run reports what it left out instead of stopping at one bad file of 400.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from rnnlab.errors import DataError
from rnnlab.music.melody import MODES, Melody, in_common_key, melody_tokens, transposed

SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")
VOICES = ("soprano", "all")
SUNG = ("soprano", "alto", "tenor", "bass")


def read_score_melodies(path: str | Path, voices: str = "soprano") -> list[Melody]:
    """The melodies of one score file: its soprano's (`soprano`) or each sung part's (`all`); DataError when the
    file does not parse or a voice has no notes."""
    from music21 import converter

    path = Path(path)
    if voices not in VOICES:
        raise DataError(f"voices={voices!r} is not one of {VOICES}")
    try:
        score = converter.parse(str(path))
    except Exception as err:  # music21 raises many types for a file it cannot read
        raise DataError(f"{path.name}: not a score music21 can parse ({type(err).__name__}: {err})") from err
    parts = list(getattr(score, "parts", []))
    if not parts:
        raise DataError(f"{path.name}: no parts in the score")
    tonic, mode = _key_of(score)
    signature = _time_signature(score)
    melodies = []
    for index, part in _voices(parts, voices, path.name):
        events = _events(part)
        if not any(pitch is not None for pitch, _ in events):
            raise DataError(f"{path.name}: part {index + 1} ({part.partName}) has no notes")
        voice = " ".join((part.partName or f"part{index + 1}").lower().split())
        melodies.append(Melody(f"{path.stem}:{voice}", tuple(events), tonic, mode, signature,
                               {"file": path.name, "voice": voice}))
    return melodies


def _voices(parts, voices: str, name: str) -> list[tuple[int, object]]:
    """The sung parts, by the first word of their names (some chorales open with trumpets and timpani, and a
    part may be named "Soprano Oboe 1 Violin1"); a score without part names (the Humdrum files) gives every part,
    its first being the soprano; a score with names but no sung part is not a chorale (DataError)."""
    def voice(part) -> str:
        words = (part.partName or "").lower().split()
        return words[0] if words else ""

    if all(not voice(p) for p in parts):
        chosen = list(enumerate(parts))
    else:
        chosen = [(i, p) for i, p in enumerate(parts) if voice(p) in SUNG]
        if not any(voice(p) == "soprano" for _, p in chosen):
            raise DataError(f"{name}: no soprano among its parts ({', '.join(p.partName or '?' for p in parts)}): "
                            "not a chorale")
    return chosen if voices == "all" else [next((i, p) for i, p in chosen if voice(p) in ("soprano", ""))]


def _key_of(score) -> tuple[int, str]:
    from music21 import key

    found = [k for k in score.flatten().getElementsByClass(key.Key) if k.mode in MODES]
    analysed = found[0] if found else score.analyze("key")
    if analysed.mode not in MODES:
        raise DataError(f"the key {analysed} is neither major nor minor")
    return analysed.tonic.pitchClass, analysed.mode


def _time_signature(score) -> str:
    from music21 import meter

    found = list(score.flatten().getElementsByClass(meter.TimeSignature))
    return found[0].ratioString if found else "4/4"


def _events(part) -> list[tuple[int | None, Fraction]]:
    events: list[tuple[int | None, Fraction]] = []
    tied = False
    for element in part.flatten().notesAndRests:
        duration = Fraction(element.quarterLength).limit_denominator(48)
        if duration <= 0:  # a grace note
            continue
        if element.isRest:
            pitch = None
        elif element.isChord:
            pitch = max(p.midi for p in element.pitches)
        else:
            pitch = element.pitch.midi
        if tied and events and events[-1][0] == pitch and pitch is not None:
            events[-1] = (pitch, events[-1][1] + duration)  # the tie's continuation
        elif pitch is None and events and events[-1][0] is None:
            events[-1] = (None, events[-1][1] + duration)  # rests in a row are one silence
        else:
            events.append((pitch, duration))
        tied = element.tie is not None and element.tie.type in ("start", "continue")
    while events and events[-1][0] is None:  # trailing silence carries nothing to learn
        events.pop()
    while events and events[0][0] is None:
        events.pop(0)
    return events


def read_chorales(paths: list[Path], voices: str = "soprano") -> tuple[list[Melody], dict[str, str]]:
    """Every readable score's melodies, and {file name: why it was skipped} for the rest."""
    melodies, skipped = [], {}
    for path in sorted(paths):
        try:
            melodies.extend(read_score_melodies(path, voices))
        except DataError as err:
            skipped[Path(path).name] = str(err)
    if not melodies:
        raise DataError(f"no melody could be read from {len(paths)} score files"
                        + (f" (first problem: {next(iter(skipped.values()))})" if skipped else ""))
    return melodies, skipped


def score_files(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in SCORE_SUFFIXES)


def split_by_chorale(melodies: list[Melody], validation: float, test: float, seed: int) -> dict[str, list[Melody]]:
    """Train / validation / test with every chorale whole in one split. Chorales whose soprano lines are the same
    tune (Bach set one hymn in several cantatas; the corpus keeps such variants) count as one chorale, so no tune
    is learned in train and scored in test. The groups are shuffled with `seed` and cut by the fractions."""
    by_file: dict[str, list[Melody]] = {}
    for melody in melodies:
        by_file.setdefault(melody.notes["file"], []).append(melody)
    groups: dict[tuple, list[str]] = {}
    for file, members in sorted(by_file.items()):  # a score's tune: its first voice's, in the common key
        groups.setdefault(tuple(melody_tokens(in_common_key(members[0]))[1:]), []).append(file)
    order = sorted(groups.values())
    np.random.default_rng(seed).shuffle(order)
    n_test, n_validation = round(len(order) * test), round(len(order) * validation)
    split_of_file = {}
    for index, files in enumerate(order):
        split = "test" if index < n_test else "validation" if index < n_test + n_validation else "train"
        split_of_file.update({file: split for file in files})
    splits: dict[str, list[Melody]] = {"train": [], "validation": [], "test": []}
    for melody in melodies:
        splits[split_of_file[melody.notes["file"]]].append(melody)
    for name, members in splits.items():
        if not members:
            raise DataError(f"the {name} split of {len(order)} chorales is empty: use larger split fractions")
    return splits


def training_transpositions(melodies: list[Melody], transpose: str) -> list[Melody]:
    """`common`: every melody in C major / A minor. `augment`: each melody in all twelve keys, moved by -5 to +6
    semitones from where it was written (the train split only: the others stay as written). `none`: as written."""
    if transpose == "common":
        return [in_common_key(m) for m in melodies]
    if transpose == "augment":
        return [transposed(m, shift) for m in melodies for shift in range(-5, 7)]
    if transpose == "none":
        return list(melodies)
    raise DataError(f"transpose={transpose!r} is not one of common, augment, none")
