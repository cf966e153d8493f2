"""Which audio files, with which label, speaker and take, and which go to the test file.

Labels and speakers come from the file names by a pattern (``{label}_{speaker}_{take}``, as the Free
Spoken Digit Dataset names its files: ``3_jackson_12.wav``), or from a CSV file with columns
``file,label,speaker[,split]``. Labels that are all integers keep their value as the class id; other labels
are numbered in sorted order. Speakers are numbered in sorted order of their names.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikecl.errors import ConfigError

AUDIO_SUFFIXES = (".wav", ".flac")
FIELDS = ("label", "speaker", "take")


@dataclass(frozen=True)
class Entry:
    """One audio file and what it says."""

    path: Path
    name: str            # path relative to the audio folder (seeds the file's fibre noise)
    label: str
    speaker: str
    take: str | None
    split: str | None    # "train" | "test" from a CSV, else decided by the split rule


@dataclass(frozen=True)
class Catalogue:
    """Every entry with integer labels and speakers, class and speaker names, and the test mask."""

    entries: list[Entry]
    labels: np.ndarray
    speakers: np.ndarray
    class_names: list[str]
    speaker_names: list[str]
    test: np.ndarray


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression for a file-name ``pattern`` with ``{label}``, ``{speaker}``, optionally ``{take}``."""
    parts = re.split(r"\{(\w+)\}", pattern)
    fields = parts[1::2]
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown or "label" not in fields or "speaker" not in fields or len(set(fields)) != len(fields):
        raise ConfigError(f"--pattern {pattern!r} must name {{label}} and {{speaker}} once each (and may name "
                          f"{{take}}); unknown fields: {unknown or 'none'}")
    regex = "".join(re.escape(text) if i % 2 == 0 else f"(?P<{text}>.+?)" for i, text in enumerate(parts))
    return re.compile(regex + r"\Z")


def audio_files(folder: Path) -> list[Path]:
    """Audio files (.wav, .flac) below ``folder``, sorted."""
    if not folder.is_dir():
        raise ConfigError(f"audio folder {folder} does not exist")
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not found:
        raise ConfigError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}")
    return found


def entries_from_names(folder: Path, pattern: str) -> list[Entry]:
    """Entries of every audio file of ``folder`` whose stem matches ``pattern``; any other name is an error."""
    regex = pattern_regex(pattern)
    out = []
    for path in audio_files(folder):
        match = regex.match(path.stem)
        if match is None:
            raise ConfigError(f"file name {path.name!r} does not match the pattern {pattern!r} "
                              f"(give --pattern, or a --labels CSV)")
        groups = match.groupdict()
        out.append(Entry(path, path.relative_to(folder).as_posix(), groups["label"], groups["speaker"],
                         groups.get("take"), None))
    return out


def entries_from_csv(folder: Path, table: Path) -> list[Entry]:
    """Entries of the rows of a CSV with columns ``file,label,speaker[,split]`` (``file`` relative to ``folder``)."""
    try:
        with open(table, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{table} is not UTF-8 text (byte 0x{err.object[err.start]:02x} is not UTF-8); save it "
                          "as UTF-8 "
                          "(e.g. \"CSV UTF-8\" in a spreadsheet, or iconv -t UTF-8)") from None
    missing = {"file", "label", "speaker"} - set(rows[0] if rows else {})
    if missing:
        raise ConfigError(f"{table} needs the columns file,label,speaker[,split]; missing: {', '.join(sorted(missing))}")
    out = []
    for line, row in enumerate(rows, start=2):
        path = folder / row["file"]
        split = (row.get("split") or "").strip().lower() or None
        if split not in (None, "train", "test"):
            raise ConfigError(f"{table} line {line}: split {row['split']!r} must be train or test")
        if not path.is_file():
            raise ConfigError(f"{table} line {line}: audio file {path} does not exist")
        out.append(Entry(path, row["file"], row["label"].strip(), row["speaker"].strip(), None, split))
    if not out:
        raise ConfigError(f"{table} lists no audio files")
    return out


def parse_takes(spec: str) -> set[int]:
    """``"0-4,7"`` -> {0, 1, 2, 3, 4, 7}."""
    takes: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        low, _, high = part.partition("-")
        try:
            takes.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise ConfigError(f"--test-takes {spec!r}: {part!r} is not a take number or a range a-b") from None
    return takes


def catalogue(entries: list[Entry], test_speakers: list[str] | None = None, test_takes: str | None = None,
              test_fraction: float = 0.2, seed: int = 0, class_names: list[str] | None = None) -> Catalogue:
    """Number labels and speakers and decide the test part: by the CSV's split column, else by
    ``test_speakers`` (names), else by ``test_takes``, else a seeded random ``test_fraction`` of the files."""
    raw = [e.label for e in entries]
    if all(label.isdigit() for label in raw):
        labels = np.array([int(label) for label in raw], dtype=np.int64)
        names = [str(i) for i in range(int(labels.max()) + 1)]
    else:
        names = sorted(set(raw))
        labels = np.array([names.index(label) for label in raw], dtype=np.int64)
    if class_names is not None:
        if len(class_names) < len(names):
            raise ConfigError(f"--class-names gives {len(class_names)} names for {len(names)} classes")
        names = list(class_names)
    speaker_names = sorted({e.speaker for e in entries})
    speakers = np.array([speaker_names.index(e.speaker) for e in entries], dtype=np.int64)

    if any(e.split is not None for e in entries):
        test = np.array([e.split == "test" for e in entries])
    elif test_speakers:
        unknown = sorted(set(test_speakers) - set(speaker_names))
        if unknown:
            raise ConfigError(f"--test-speakers {', '.join(unknown)} not among the speakers: {', '.join(speaker_names)}")
        test = np.array([e.speaker in test_speakers for e in entries])
    elif test_takes:
        if any(e.take is None or not e.take.isdigit() for e in entries):
            raise ConfigError("--test-takes needs a numeric {take} in every file name (see --pattern)")
        chosen = parse_takes(test_takes)
        test = np.array([int(e.take) in chosen for e in entries])
    else:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        test = np.zeros(len(entries), dtype=bool)
        test[rng.choice(len(entries), size=max(1, round(test_fraction * len(entries))), replace=False)] = True
    if test.all() or not test.any():
        raise ConfigError(f"the split puts {int(test.sum())} of {len(entries)} files in the test part; "
                          "both parts need files (see --test-speakers, --test-takes)")
    return Catalogue(entries, labels, speakers, names, speaker_names, test)
