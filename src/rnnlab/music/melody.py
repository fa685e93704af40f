"""A melody as a sequence of events, and its tokens.

An event is (pitch, duration): a MIDI pitch number (None for a rest) and a duration in quarter notes (a Fraction,
so triplets stay exact). A melody carries its key (tonic pitch class and mode) and time signature.

Tokens: one per event, pitch and duration together (`D5_2`, `F#4_1/2`, `R_1`), and one key token before the first
(`<key:C-major>`). One token per event keeps the language model's step an event, so next-event perplexity and
accuracy mean what they say, and a Bach soprano line uses few (pitch, duration) pairs (about a hundred; the
vocabulary is the train split's), so the joint token costs little over two streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

from rnnlab.errors import DataError

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MODES = ("major", "minor")
REST = "R"
# a common key per mode: C major and A minor share the white keys
COMMON_TONIC = {"major": 0, "minor": 9}


@dataclass(frozen=True)
class Melody:
    name: str
    events: tuple[tuple[int | None, Fraction], ...]
    tonic: int          # pitch class of the key's tonic, 0 = C
    mode: str           # "major" or "minor"
    time_signature: str = "4/4"
    notes: dict = field(default_factory=dict, compare=False)  # where it came from (file, voice, transposition)

    @property
    def pitches(self) -> list[int]:
        return [pitch for pitch, _ in self.events if pitch is not None]

    @property
    def key_name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]}-{self.mode}"


def transposed(melody: Melody, semitones: int) -> Melody:
    """The melody moved by `semitones` (its key with it); intervals and durations unchanged."""
    events = tuple((None if pitch is None else pitch + semitones, duration) for pitch, duration in melody.events)
    return replace(melody, events=events, tonic=(melody.tonic + semitones) % 12,
                   notes={**melody.notes, "transposed": melody.notes.get("transposed", 0) + semitones})


def shift_to_common_key(melody: Melody) -> int:
    """The smallest move (-6..5 semitones) that takes the melody's tonic to C (major) or A (minor)."""
    shift = (COMMON_TONIC[melody.mode] - melody.tonic) % 12
    return shift - 12 if shift >= 6 else shift


def in_common_key(melody: Melody) -> Melody:
    return transposed(melody, shift_to_common_key(melody))


def pitch_name(pitch: int) -> str:
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def parse_pitch(name: str) -> int:
    letters = name.rstrip("-0123456789")
    if letters not in PITCH_NAMES or not name[len(letters):].lstrip("-").isdigit():
        raise DataError(f"{name!r} is not a pitch name such as C4 or F#5")
    return PITCH_NAMES.index(letters) + 12 * (int(name[len(letters):]) + 1)


def key_token(melody: Melody) -> str:
    return f"<key:{melody.key_name}>"


def event_token(pitch: int | None, duration: Fraction) -> str:
    return f"{REST if pitch is None else pitch_name(pitch)}_{duration}"


def parse_event(token: str) -> tuple[int | None, Fraction]:
    """`D5_2` -> (74, 2); `R_1/2` -> (None, 1/2)."""
    head, sep, tail = token.partition("_")
    try:
        duration = Fraction(tail)
    except (ValueError, ZeroDivisionError):
        duration = None
    if not sep or duration is None or duration <= 0:
        raise DataError(f"{token!r} is not a music event token (pitch_duration, e.g. D5_2 or R_1/2)")
    return (None if head == REST else parse_pitch(head)), duration


def melody_tokens(melody: Melody) -> list[str]:
    """The key token, then one token per event."""
    return [key_token(melody)] + [event_token(pitch, duration) for pitch, duration in melody.events]


def tokens_to_melody(tokens: list[str], name: str = "generated") -> Melody:
    """A melody from tokens: its key from a key token before the first event (C major without one); other special
    tokens (<eos>, <unk>, a key token a model wrote mid-melody) are skipped."""
    tonic, mode = COMMON_TONIC["major"], "major"
    events = []
    for token in tokens:
        if token.startswith("<key:") and token.endswith(">") and not events:
            letters, _, mode_name = token[5:-1].partition("-")
            if letters in PITCH_NAMES and mode_name in MODES:
                tonic, mode = PITCH_NAMES.index(letters), mode_name
        elif not token.startswith("<"):
            events.append(parse_event(token))
    return Melody(name, tuple(events), tonic, mode)
