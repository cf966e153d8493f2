"""Reading audio files at 48 kHz, the rate the cochlea model expects."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from spikecl.errors import ConfigError
from spikecl.synth.cochlea import AUDIO_RATE


def _soundfile():
    try:
        import soundfile
    except ImportError as err:  # the synth extra brings it
        raise ConfigError(f'reading audio needs soundfile ({err}): pip install "spikecl[synth]"') from None
    return soundfile


def resampled_length(path: Path) -> int:
    """Number of 48 kHz samples the file has after resampling (from its header only); ConfigError for a file
    without audio."""
    try:
        info = _soundfile().info(str(path))
    except Exception as err:  # soundfile raises its own error types for unreadable files
        raise ConfigError(f"cannot read audio file {path}: {err}") from None
    if info.frames == 0:  # checked from the header, before any file is converted
        raise ConfigError(f"audio file {path} holds no audio (0 samples); remove it from the audio folder "
                          "(or from the --labels CSV)")
    return math.ceil(info.frames * AUDIO_RATE / info.samplerate)


def read_audio(path: Path) -> np.ndarray:
    """The file's audio as mono float64 at 48 kHz (channels averaged; polyphase resampling as the generator)."""
    try:
        audio, rate = _soundfile().read(str(path), dtype="float64", always_2d=True)
    except Exception as err:
        raise ConfigError(f"cannot read audio file {path}: {err}") from None
    mono = audio.mean(axis=1)
    return mono if rate == AUDIO_RATE else resample_poly(mono, AUDIO_RATE, rate)
