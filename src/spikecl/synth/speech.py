"""Synthetic speakers saying the 20 SHD words with espeak-ng, as 48 kHz audio.

A speaker is an espeak-ng voice variant (its formants, pitch range and breathiness: ``+m3``, ``+f2`` ...),
an English accent, a base pitch and a base speed; German words use the ``de`` voice with the same variant.
Each utterance jitters pitch and speed around the speaker's base and keeps a random margin of silence
around the trimmed word. espeak-ng is a command-line program (Debian/Ubuntu: ``apt-get install espeak-ng``).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave
from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import resample_poly

from .cochlea import AUDIO_RATE

ENGLISH_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN_WORDS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
KEYS = ENGLISH_WORDS + GERMAN_WORDS
"""The word of each SHD label: 0-9 English zero..nine, 10-19 German null..neun."""

FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "belinda", "steph", "anika",
                   "aunty")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "john", "ed", "paul", "robert",
                 "rob", "max", "david")
ENGLISH_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd")
GERMAN_VOICE = "de"


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker. ``age`` and ``body_height`` (cm) are invented, for SHD's meta_info schema."""

    id: int
    gender: str
    variant: str
    english_voice: str
    pitch: float
    speed: float
    age: int
    body_height: float

    def voice(self, label: int) -> str:
        """espeak-ng voice name for a label: accent (or ``de``) plus this speaker's variant."""
        base = self.english_voice if label < len(ENGLISH_WORDS) else GERMAN_VOICE
        return f"{base}+{self.variant}"

    def to_dict(self) -> dict[str, object]:
        """Plain dict, for provenance attributes."""
        return asdict(self)


@dataclass(frozen=True)
class Jitter:
    """Per-utterance variation: pitch s.d. (espeak pitch units, 0-99 scale), relative speed s.d., and the
    range (s) of silence kept before and after the word."""

    pitch_sd: float = 4.0
    speed_sd: float = 0.06
    margin_min: float = 0.01
    margin_max: float = 0.06


def espeak_binary() -> str:
    """Path of the espeak-ng program; raises :class:`EspeakError` with the install command if missing."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise EspeakError("espeak-ng not found on PATH; install it (Debian/Ubuntu: apt-get install espeak-ng, "
                          "macOS: brew install espeak-ng)")
    return path


def espeak_version() -> str:
    """Version string of the installed espeak-ng, e.g. ``1.51``."""
    out = subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"text-to-speech:\s*(\S+)", out)
    return match.group(1) if match else out.strip()


def make_speakers(n: int, rng: np.random.Generator) -> list[Speaker]:
    """``n`` distinct speakers, alternating female and male, variants and accents drawn without repetition
    until a pool is used up."""
    females = list(rng.permutation(FEMALE_VARIANTS))
    males = list(rng.permutation(MALE_VARIANTS))
    accents = list(rng.permutation(ENGLISH_VOICES))
    speakers = []
    for i in range(n):
        female = i % 2 == 0
        pool = females if female else males
        variant = str(pool[(i // 2) % len(pool)])
        speakers.append(Speaker(
            id=i,
            gender="female" if female else "male",
            variant=variant,
            english_voice=str(accents[i % len(accents)]),
            pitch=float(rng.uniform(35, 65)),
            speed=float(rng.uniform(95, 150)),
            age=int(rng.integers(20, 60)),
            body_height=float(np.round(rng.normal(167 if female else 180, 6), 1)),
        ))
    return speakers


def speak(text: str, voice: str, pitch: float, speed: float) -> tuple[np.ndarray, int]:
    """Raw espeak-ng audio (float64 in [-1, 1]) and its sample rate."""
    cmd = [espeak_binary(), "-v", voice, "-p", str(round(float(np.clip(pitch, 0, 99)))),
           "-s", str(round(speed)), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise EspeakError(f"espeak-ng failed for {text!r} with voice {voice!r}: {proc.stderr.decode().strip()}")
    with wave.open(io.BytesIO(proc.stdout)) as wav:
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0, rate


def trim(audio: np.ndarray, rate: int, pre: float, post: float, threshold_db: float = -40.0) -> np.ndarray:
    """Cut the word out of its silence (5 ms frames above ``threshold_db`` of the loudest frame) and keep
    ``pre`` and ``post`` seconds around it, zero-padded if the recording has less."""
    frame = max(int(0.005 * rate), 1)
    n_frames = audio.size // frame
    energy = np.sqrt(np.mean(audio[:n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(energy > energy.max() * 10 ** (threshold_db / 20))
    if loud.size == 0:
        raise EspeakError("espeak-ng produced silence")
    start = loud[0] * frame - round(pre * rate)
    stop = (loud[-1] + 1) * frame + round(post * rate)
    padded = np.pad(audio, (max(-start, 0), max(stop - audio.size, 0)))
    return padded[max(start, 0):max(start, 0) + stop - start]


def utterance(speaker: Speaker, label: int, jitter: Jitter, rng: np.random.Generator) -> np.ndarray:
    """One jittered utterance of word ``label`` by ``speaker``, trimmed, at 48 kHz (float64)."""
    pitch = speaker.pitch + rng.normal(0.0, jitter.pitch_sd)
    speed = speaker.speed * (1.0 + rng.normal(0.0, jitter.speed_sd))
    pre, post = rng.uniform(jitter.margin_min, jitter.margin_max, size=2)
    audio, rate = speak(KEYS[label], speaker.voice(label), pitch, speed)
    audio = trim(audio, rate, pre, post)
    return resample_poly(audio, AUDIO_RATE, rate)
