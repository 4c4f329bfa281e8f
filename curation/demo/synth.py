"""Procedural music for the demo corpus: oscillators, envelopes, instruments, drums and a
small arranger, in vectorized NumPy.

The demo corpus (curation/demo/corpus.py) needs music whose tempo, key, genre and lead
instrument are known exactly, so that curation and labeling can be checked against ground
truth with nothing downloaded. Every random choice is drawn from the caller's Generator, so
a piece is a pure function of its seed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import signal

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
KEYS = tuple(f"{note} {mode}" for mode in SCALES for note in NOTE_NAMES)
# Chord roots as 0-based scale degrees, one chord per `bars_per_chord` bars.
PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 0, 4), (1, 4, 0, 0)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6)),
}
STEPS_PER_BAR = 16  # the grid is sixteenth notes in 4/4
PHRASE_FORM = "AABA"  # which melodic phrase each successive phrase plays


# Oscillators and envelopes ------------------------------------------------------------
# Oscillators run in float32 on phases wrapped in float64: NumPy's float32 sin is about 50x
# faster than its float64 one here, and the wrap keeps the phase exact over long notes.


def _seconds(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _partials(freq: float, ratios, amps, decays, n: int, sr: int) -> np.ndarray:
    """Additive synthesis: exponentially decaying sines; partials above 0.45*sr are
    dropped, so nothing aliases at any sample rate."""
    ratios, amps, decays = (np.asarray(v, dtype=float) for v in (ratios, amps, decays))
    keep = freq * ratios < 0.45 * sr
    t = _seconds(n, sr)
    cycles = np.outer(t, freq * ratios[keep])
    cycles -= np.floor(cycles)
    sines = np.sin(cycles.astype(np.float32) * np.float32(2 * np.pi))
    sines *= np.exp(np.outer(t.astype(np.float32), -decays[keep].astype(np.float32)))
    return sines @ amps[keep].astype(np.float32)


def _saw(freq: float | np.ndarray, n: int, sr: int) -> np.ndarray:
    """Naive sawtooth from an instantaneous frequency; callers low-pass it, which hides
    most of its aliasing far more cheaply than summing band-limited harmonics."""
    phase = np.cumsum(np.broadcast_to(freq, (n,))) / sr
    return (2.0 * (phase - np.floor(phase)) - 1.0).astype(np.float32)


def _filter(x: np.ndarray, cutoff: float, sr: int, kind: str) -> np.ndarray:
    sos = signal.butter(2, min(cutoff, 0.45 * sr), btype=kind, fs=sr, output="sos")
    return signal.sosfilt(sos, x)


def _envelope(n: int, sr: int, gate: float, attack: float, decay: float,
              sustain: float) -> np.ndarray:
    """Linear attack, decay and sustain while the key is held (`gate` seconds), then a
    linear release that reaches zero at the note's last sample."""
    t = _seconds(n, sr)
    held = np.interp(t, [0.0, attack, attack + decay], [0.0, 1.0, sustain])
    return (held * np.interp(t, [gate, n / sr], [1.0, 0.0])).astype(np.float32)


# Instruments ---------------------------------------------------------------------------
# A tone depends on the pitch only, the envelope on the gate only: a track synthesizes each
# pitch's tone once, at its longest length, and cuts every note from it.


@dataclasses.dataclass(frozen=True)
class Instrument:
    tone: Callable[[float, int, int], np.ndarray]  # (Hz, samples, sample rate) -> (n,)
    attack: float
    release: float
    decay: float = 1e-3
    sustain: float = 1.0

    def note(self, tone: np.ndarray, gate: float, sr: int) -> np.ndarray:
        n = int((gate + self.release) * sr)
        return tone[:n] * _envelope(n, sr, gate, self.attack, self.decay, self.sustain)


def _piano(freq: float, n: int, sr: int) -> np.ndarray:
    k = np.arange(1, 11)
    # Stiff strings stretch the upper partials, and those die first.
    return _partials(freq, k * np.sqrt(1 + 4e-4 * k**2), 1.0 / k**1.3, 0.6 + 0.5 * k, n, sr)


def _organ(freq: float, n: int, sr: int) -> np.ndarray:
    drawbars = [0.5, 1, 2, 3, 4, 6, 8]
    return _partials(freq, drawbars, [0.4, 1, 0.7, 0.35, 0.3, 0.15, 0.1], np.zeros(7), n, sr)


def _pluck(freq: float, n: int, sr: int) -> np.ndarray:
    k = np.arange(1, 13)
    return _partials(freq, k, 1.0 / k, 1.5 + 1.2 * k, n, sr)


def _bell(freq: float, n: int, sr: int) -> np.ndarray:
    ratios = [0.56, 0.92, 1.19, 1.7, 2.0, 2.74, 3.0, 3.76, 4.07]  # Risset's bell
    ring = np.array([1.0, 0.9, 0.65, 0.55, 0.325, 0.35, 0.25, 0.2, 0.15]) * 2.5
    amps = np.array([1, 0.67, 1, 1.8, 2.67, 1.67, 1.46, 1.33, 1.33]) / 4
    return _partials(freq, ratios, amps, 4 / ring, n, sr)


def _pad(freq: float, n: int, sr: int) -> np.ndarray:
    # Three detuned saws beat slowly against each other, which is what makes a pad wide.
    saws = sum(_saw(freq * 2 ** (cents / 1200), n, sr) for cents in (-9, 0, 9))
    return _filter(saws / 3, 1800, sr, "lowpass")


def _strings(freq: float, n: int, sr: int) -> np.ndarray:
    t = _seconds(n, sr)
    # Players start a note straight and bring the vibrato in, hence the ramp.
    vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t) * np.clip(t / 0.4, 0, 1)
    saws = _saw(freq * vibrato, n, sr) + _saw(freq * 1.003 * vibrato, n, sr)
    return _filter(saws / 2, 3000, sr, "lowpass")


def _bass_synth(freq: float, n: int, sr: int) -> np.ndarray:
    square = np.sign(_saw(freq, n, sr))
    return _filter(_saw(freq, n, sr) + 0.5 * square, 900, sr, "lowpass")


def _bass(freq: float, n: int, sr: int) -> np.ndarray:
    return _partials(freq, [1, 2, 3, 4], [1, 0.5, 0.25, 0.1], [1.5, 2.5, 4, 6], n, sr)


INSTRUMENTS = {
    "piano": Instrument(_piano, attack=0.004, release=0.3),
    "organ": Instrument(_organ, attack=0.01, release=0.08),
    "pluck": Instrument(_pluck, attack=0.002, release=0.15),
    "bell": Instrument(_bell, attack=0.002, release=2.0),  # a struck bell rings on
    "pad": Instrument(_pad, attack=0.5, release=0.8, decay=0.5, sustain=0.8),
    "strings": Instrument(_strings, attack=0.15, release=0.3, decay=0.2, sustain=0.85),
    "bass-synth": Instrument(_bass_synth, attack=0.005, release=0.05, decay=0.2, sustain=0.5),
    "bass": Instrument(_bass, attack=0.006, release=0.08),
}


# Drums: (sample rate, generator) -> one hit


def _kick(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _seconds(int(0.5 * sr), sr)
    freq = 45 + 110 * np.exp(-35 * t)  # the falling pitch is what makes a sine read as a kick
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-9 * t)


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _seconds(int(0.22 * sr), sr)
    rattle = _filter(rng.standard_normal(t.size), 1200, sr, "highpass") * np.exp(-18 * t)
    return 0.5 * rattle + 0.5 * np.sin(2 * np.pi * 185 * t) * np.exp(-30 * t)


def _hat(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _seconds(int(0.06 * sr), sr)
    return _filter(rng.standard_normal(t.size), 7000, sr, "highpass") * np.exp(-70 * t)


DRUMS = {"kick": (_kick, 0.8), "snare": (_snare, 0.45), "hat": (_hat, 0.25)}  # (sound, gain)


# Arrangement ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Style:
    """A genre as choices: patterns are one character per sixteenth, repeating; in comp
    patterns x strikes the chord and a the next chord tone (arpeggio); in bass patterns
    r, f, o play the chord's root, fifth and octave; in drum patterns x hits, o hits soft."""

    tempo_bpm: tuple[int, int]
    leads: tuple[str, ...]
    comp: str
    comp_pattern: str
    bass: str
    bass_pattern: str
    melody_step: int  # sixteenths per melody slot
    melody_density: float  # chance that an off-downbeat slot starts a note
    drums: tuple[tuple[str, str], ...] = ()
    bars_per_chord: int = 1
    swing: float = 0.0  # how late off-beat eighths come, in sixteenths
    sevenths: bool = False
    pulse: bool = True  # whether a listener could tap the beat; truth tables give no tempo where not


_BACKBEAT = ("snare", "....x.......x...")
_EIGHTH_HATS = ("hat", "x.x.x.x.x.x.x.x.")
STYLES = {
    "ambient": Style(
        tempo_bpm=(60, 80), leads=("pad", "bell"),
        comp="pad", comp_pattern="x" + "." * 31, bass="bass", bass_pattern="r" + "." * 31,
        melody_step=8, melody_density=0.6, bars_per_chord=2,
        pulse=False),  # no drums; slow-attack pads and a note every half bar at random: no beat
    "techno": Style(
        tempo_bpm=(120, 132), leads=("pluck", "bass-synth"),
        comp="pad", comp_pattern="x" + "." * 15, bass="bass-synth", bass_pattern="..r...r...r...r.",
        melody_step=2, melody_density=0.7,
        drums=(("kick", "x...x...x...x..."), _BACKBEAT, ("hat", "..x...x...x...x."))),
    "folk": Style(
        tempo_bpm=(90, 120), leads=("pluck", "strings"),
        comp="pluck", comp_pattern="a.a.a.a.a.a.a.a.", bass="bass", bass_pattern="r.......f.......",
        melody_step=2, melody_density=0.6),
    "classical": Style(
        tempo_bpm=(70, 110), leads=("piano", "strings"),
        comp="strings", comp_pattern="x.......x.......", bass="bass",
        bass_pattern="r...f...o...f...", melody_step=2, melody_density=0.7),
    "lo-fi hip hop": Style(
        tempo_bpm=(70, 90), leads=("piano", "bell"),
        comp="piano", comp_pattern="x.....x.........", bass="bass", bass_pattern="r.....r...r.....",
        melody_step=2, melody_density=0.45,
        drums=(("kick", "x.....x...x....."), _BACKBEAT, _EIGHTH_HATS), swing=0.4, sevenths=True),
    "rock": Style(
        tempo_bpm=(110, 150), leads=("organ", "pluck"),
        comp="organ", comp_pattern="x.x.x.x.x.x.x.x.", bass="bass-synth",
        bass_pattern="r.r.r.r.r.r.r.r.", melody_step=2, melody_density=0.65,
        drums=(("kick", "x.......x.x....."), _BACKBEAT, _EIGHTH_HATS)),
    "jazz": Style(
        tempo_bpm=(100, 160), leads=("piano", "organ"),
        comp="piano", comp_pattern="x.....x...x.....", bass="bass", bass_pattern="r...f...o...f...",
        melody_step=2, melody_density=0.55,
        drums=(("kick", "o.......o......."), ("snare", "..........o....."),
               ("hat", "x...x.x.x...x.x.")),  # a ride pattern, swung
        swing=0.67, sevenths=True),
}
GENRES = tuple(STYLES)
_LEAD_TONIC = {"bass-synth": 48, "bell": 72}  # MIDI octave of the tonic; others sit at 60


def _scale_midi(tonic: int, scale: Sequence[int], degree: int) -> int:
    octave, step = divmod(degree, len(scale))
    return tonic + 12 * octave + scale[step]


def _gates(pattern: str) -> dict[int, int]:
    """Each onset's position in a repeating pattern -> sixteenths until the next onset."""
    onsets = [i for i, c in enumerate(pattern) if c != "."]
    nexts = onsets[1:] + [onsets[0] + len(pattern)]
    return {s: nxt - s for s, nxt in zip(onsets, nexts)}


def _chord(style: Style, progression: Sequence[int], step: int) -> list[int]:
    """Scale degrees of the chord sounding at `step`."""
    degree = progression[step // (STEPS_PER_BAR * style.bars_per_chord) % len(progression)]
    return [degree + i for i in ((0, 2, 4, 6) if style.sevenths else (0, 2, 4))]


def _melody_phrase(rng: np.random.Generator, style: Style, progression: Sequence[int],
                   steps: int) -> list[tuple[int, int, int]]:
    """(step, length in steps, scale degree) notes: a random walk over the scale that lands
    on a chord tone at each downbeat, so the tune follows the harmony."""
    slots = range(0, steps, style.melody_step)
    onsets = [s for s in slots if s % STEPS_PER_BAR == 0 or rng.random() < style.melody_density]
    notes, degree = [], int(rng.integers(0, 5))
    for start, end in zip(onsets, onsets[1:] + [steps]):
        if start % STEPS_PER_BAR == 0:
            root = _chord(style, progression, start)[0]
            tones = [d for d in range(12) if (d - root) % 7 in (0, 2, 4)]
            degree = min(tones, key=lambda d: abs(d - degree))
        else:
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, 11))
        notes.append((start, min(end - start, 8), degree))
    return notes


Event = tuple[int, int, int, float]  # (step, length in steps, MIDI note, velocity)


def _lead(rng: np.random.Generator, style: Style, progression: Sequence[int], tonic: int,
          scale: Sequence[int], steps: int) -> list[Event]:
    """Two phrases, each as long as one pass of the progression, played in PHRASE_FORM."""
    phrase_steps = STEPS_PER_BAR * style.bars_per_chord * len(progression)
    phrases = {name: _melody_phrase(rng, style, progression, phrase_steps) for name in "AB"}
    return [(p * phrase_steps + s, length, _scale_midi(tonic, scale, d), rng.uniform(0.8, 1))
            for p in range(math.ceil(steps / phrase_steps))
            for s, length, d in phrases[PHRASE_FORM[p % len(PHRASE_FORM)]]]


def _accompaniment(rng: np.random.Generator, style: Style, progression: Sequence[int],
                   root: int, scale: Sequence[int], steps: int) -> tuple[list[Event], list[Event]]:
    """The comp (chords, struck or arpeggiated) and the bass line, following the patterns."""
    comp_gates, bass_gates = _gates(style.comp_pattern), _gates(style.bass_pattern)
    comp, bass, arpeggio = [], [], 0
    for step in range(steps):
        chord = _chord(style, progression, step)
        at = step % len(style.comp_pattern)
        if at in comp_gates:
            tones = [_scale_midi(48 + root, scale, d) for d in chord]
            if style.comp_pattern[at] == "a":
                tones, arpeggio = [tones[arpeggio % len(tones)]], arpeggio + 1
            # Spread a chord's velocity so that full chords are no louder than single notes.
            comp += [(step, comp_gates[at], midi, rng.uniform(0.8, 1) / len(tones) ** 0.5)
                     for midi in tones]
        at = step % len(style.bass_pattern)
        if at in bass_gates:
            interval = {"r": 0, "f": 7, "o": 12}[style.bass_pattern[at]]
            midi = _scale_midi(36 + root, scale, chord[0] % 7) + interval
            bass.append((step, bass_gates[at], midi, rng.uniform(0.8, 1)))
    return comp, bass


Voice = Callable[[int, int], np.ndarray]  # (MIDI note, length in steps) -> mono note


def _played_by(instrument: Instrument, events: list[Event], sr: int, step_s: float) -> Voice:
    """A voice that synthesizes each pitch's tone once, long enough for its longest note."""
    longest: dict[int, int] = {}
    for _, length, midi, _ in events:
        longest[midi] = max(longest.get(midi, 0), length)
    tones: dict[int, np.ndarray] = {}

    def voice(midi: int, length: int) -> np.ndarray:
        if midi not in tones:
            n = int((longest[midi] * step_s + instrument.release) * sr) + 1
            tones[midi] = instrument.tone(_hz(midi), n, sr)
        return instrument.note(tones[midi], length * step_s, sr)

    return voice


def _mix(events: list[Event], voice: Voice, n: int, sr: int, step_s: float,
         swing: float) -> np.ndarray:
    """Mixes events into a mono track of n samples, each distinct note made once."""
    track, cache = np.zeros(n, dtype=np.float32), {}
    for step, length, midi, velocity in events:
        if (midi, length) not in cache:
            cache[midi, length] = voice(midi, length)
        late = swing if step % 4 == 2 else 0.0
        start = round((step + late) * step_s * sr)
        note = cache[midi, length][: max(n - start, 0)]
        track[start : start + note.size] += velocity * note
    return track


def _pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan (-1 left .. 1 right), so a moved source keeps its loudness."""
    angle = (position + 1) * np.pi / 4
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)])  # (2, n)


def _spread(mono: np.ndarray, sr: int, delay_s: float = 0.015) -> np.ndarray:
    """Left dry, right a few ms late (the Haas effect): wide, yet heard as one source."""
    delay = int(delay_s * sr)
    late = np.concatenate([np.zeros(delay, mono.dtype), mono[: mono.size - delay]])
    return np.stack([mono, late]) * np.float32(np.sqrt(0.5))  # (2, n)


def _fade(audio: np.ndarray, sr: int, in_s: float, out_s: float) -> np.ndarray:
    """Linear fades on (2, n), in place: a short one in so the start does not click, a long
    one out."""
    n_in, n_out = int(in_s * sr), int(out_s * sr)
    audio[:, :n_in] *= np.linspace(0, 1, n_in, dtype=np.float32)
    audio[:, audio.shape[1] - n_out :] *= np.linspace(1, 0, n_out, dtype=np.float32)
    return audio


# The piece -----------------------------------------------------------------------------


def render_piece(genre: str, instrument: str, tempo_bpm: float, key: str, duration_s: float,
                 sr: int, rng: np.random.Generator) -> np.ndarray:
    """A stereo piece, (round(duration_s * sr), 2) float32, not yet loudness-normalized."""
    style = STYLES[genre]
    tonic_name, mode = key.split()
    root, scale = NOTE_NAMES.index(tonic_name), SCALES[mode]
    step_s = 60.0 / tempo_bpm / 4
    n, steps = round(duration_s * sr), math.ceil(duration_s / step_s)
    progression = PROGRESSIONS[mode][rng.integers(len(PROGRESSIONS[mode]))]
    lead = _lead(rng, style, progression, _LEAD_TONIC.get(instrument, 60) + root, scale, steps)
    comp, bass = _accompaniment(rng, style, progression, root, scale, steps)

    def track(events: list[Event], voice: Voice) -> np.ndarray:
        return _mix(events, voice, n, sr, step_s, style.swing)

    def played(events: list[Event], name: str) -> np.ndarray:
        return track(events, _played_by(INSTRUMENTS[name], events, sr, step_s))

    out = (_pan(0.5 * played(lead, instrument), float(rng.uniform(-0.5, 0.5)))
           + _spread(0.3 * played(comp, style.comp), sr)
           + _pan(0.5 * played(bass, style.bass), 0.0))
    for drum, pattern in style.drums:
        sound, gain = DRUMS[drum]
        sample = sound(sr, rng)
        strokes = [(step, pattern[step % len(pattern)]) for step in range(steps)]
        hits = [(step, 1, 0, (1.0 if stroke == "x" else 0.5) * rng.uniform(0.8, 1))
                for step, stroke in strokes if stroke != "."]
        out += _pan(gain * track(hits, lambda midi, length: sample), 0.3 if drum == "hat" else 0.0)
    return _fade(out, sr, in_s=0.02, out_s=1.5).T  # (n, 2)
