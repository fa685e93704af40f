"""A melody made audible and visible: a MIDI file (music21 writes it), a WAV file (a small additive synthesiser in
numpy: a few harmonics under an attack-decay envelope) and a piano-roll PNG (matplotlib)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from rnnlab.io import atomic_file
from rnnlab.music.melody import Melody, pitch_name

SAMPLE_RATE = 22_050
TEMPO_BPM = 90  # quarter notes a minute: a chorale's walking pace


def write_midi(melody: Melody, path: str | Path, tempo_bpm: int = TEMPO_BPM) -> Path:
    from music21 import meter, note, stream, tempo

    part = stream.Part()
    part.append(tempo.MetronomeMark(number=tempo_bpm))
    try:
        part.append(meter.TimeSignature(melody.time_signature))
    except Exception:  # a signature music21 does not take: the notes still play
        pass
    for pitch, duration in melody.events:
        part.append(note.Rest(quarterLength=duration) if pitch is None
                    else note.Note(midi=pitch, quarterLength=duration))
    path = Path(path)
    with atomic_file(path, "wb") as out:
        out.write(_midi_bytes(part))
    return path


def _midi_bytes(part) -> bytes:
    from music21.midi.translate import streamToMidiFile

    midi = streamToMidiFile(part)
    return midi.writestr()


def read_midi_events(path: str | Path) -> list[tuple[int | None, float]]:
    """(MIDI pitch or None, quarter notes) of a MIDI file's notes and rests, as music21 reads them back (a note
    it splits at a bar line, tied, is read as the one note it is)."""
    from music21 import converter

    score = converter.parse(str(path)).stripTies()
    events = [(None if n.isRest else n.pitch.midi, float(n.quarterLength)) for n in score.flatten().notesAndRests]
    while events and events[-1][0] is None:  # the rest music21 adds to fill the last bar
        events.pop()
    return events


def synthesize(melody: Melody, tempo_bpm: int = TEMPO_BPM, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The melody as float32 samples in [-1, 1]: each note a fundamental and two overtones, 10 ms attack and an
    exponential decay, so repeated notes are heard as two."""
    seconds_per_quarter = 60.0 / tempo_bpm
    lengths = [round(float(duration) * seconds_per_quarter * sample_rate) for _, duration in melody.events]
    out = np.zeros(sum(lengths), np.float32)
    start = 0
    for (pitch, _), length in zip(melody.events, lengths, strict=True):
        if pitch is not None and length:
            t = np.arange(length) / sample_rate
            frequency = 440.0 * 2 ** ((pitch - 69) / 12)
            tone = sum(weight * np.sin(2 * np.pi * frequency * k * t) for k, weight in ((1, 1.0), (2, 0.4), (3, 0.2)))
            envelope = np.minimum(1.0, t / 0.01) * np.exp(-3.0 * t)
            out[start:start + length] = (0.45 * tone * envelope).astype(np.float32)
        start += length
    return out


def write_wav(melody: Melody, path: str | Path, tempo_bpm: int = TEMPO_BPM, sample_rate: int = SAMPLE_RATE) -> Path:
    samples = synthesize(melody, tempo_bpm, sample_rate)
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    path = Path(path)
    with atomic_file(path, "wb") as out, wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return path


def write_piano_roll(melody: Melody, path: str | Path, title: str | None = None) -> Path:
    """Time (quarter notes) across, pitch up: one bar per note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = np.cumsum([0.0] + [float(d) for _, d in melody.events])[:-1]
    notes = [(s, float(d), p) for s, (p, d) in zip(starts, melody.events, strict=True) if p is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, (starts[-1] if len(starts) else 0) / 6 + 3)), 3.2))
    for start, duration, pitch in notes:
        ax.broken_barh([(start, duration * 0.95)], (pitch - 0.4, 0.8), facecolors="tab:blue")
    pitches = [p for _, _, p in notes] or [60]
    ticks = range(min(pitches), max(pitches) + 1)
    ax.set_yticks([p for p in ticks if p % 12 in (0, 4, 7)] or [pitches[0]])
    ax.set_yticklabels([pitch_name(p) for p in ticks if p % 12 in (0, 4, 7)] or [pitch_name(pitches[0])])
    ax.set_ylim(min(pitches) - 1, max(pitches) + 1)
    ax.set_xlabel("quarter notes")
    ax.set_title(title or f"{melody.name} ({melody.key_name})", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path, "wb") as out:
        fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
