"""The tools next to the main command (``spikecl.plot``, ``spikecl.report``, ``spikecl.convert``) answer bad
input with one line on stderr that names the problem and the fix, exit status 2, and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def tool(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` in a fresh process (this checkout's sources first)."""
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)  # fmt: skip


def assert_one_line(proc: subprocess.CompletedProcess, *parts: str) -> str:
    """The process failed with status 2 and one ``error:`` line on stderr holding every part; that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------------------------- spikecl.plot


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_root):
    """A finished run folder of the tiny data set (one epoch of each phase)."""
    from hydra import compose, initialize_config_dir

    from spikecl.cli import config_dir
    from spikecl.run import run
    from tests.conftest import TINY

    folder = tmp_path_factory.mktemp("finished")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, f"dataset.root={tiny_root}", f"cache_dir={folder / 'cache'}",
                                           "split=class_incremental", "split.new_class=2", "pretrain.epochs=1",
                                           "strategy.epochs=1", "hydra/sweeper=basic"])
    run(cfg, folder / "run")
    return folder / "run"


def _damaged_copy(run: Path, into: Path, model: bytes) -> Path:
    """A copy of the run folder ``run`` whose model.pt holds ``model``."""
    copy = into / "run"
    copy.mkdir()
    for name in ("config.yaml", "summary.json"):
        (copy / name).write_bytes((run / name).read_bytes())
    (copy / "model.pt").write_bytes(model)
    return copy


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other network"])
def test_plot_of_a_damaged_model(finished_run, tmp_path, damage):
    import torch

    good = (finished_run / "model.pt").read_bytes()
    if damage == "other network":
        other = tmp_path / "other.pt"
        torch.save({"w_out": torch.zeros(3, 4)}, other)
        model = other.read_bytes()
    else:
        model = b"not a model at all" if damage == "garbage" else good[: len(good) // 2]
    run = _damaged_copy(finished_run, tmp_path, model)
    assert_one_line(tool("spikecl.plot", str(run), cwd=tmp_path), f"{run / 'model.pt'} does not hold this run's "
                    "trained network", "remove its summary.json and run the same command again")


# --------------------------------------------------------------------------------------------- spikecl.report


@pytest.mark.parametrize("blocked", ["read-only folder", "file in its place"])
def test_report_into_a_folder_that_refuses_it(tmp_path, blocked):
    from tests.test_report import make_run

    runs = make_run(tmp_path / "runs" / "a").parent
    out = tmp_path / "out"
    if blocked == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        out.mkdir()
        out.chmod(0o555)
    else:
        out.write_text("a file, not a folder")
    line = assert_one_line(tool("spikecl.report", str(runs), "--out", str(out), cwd=tmp_path),
                           f"cannot write the report into {out}", "give a writable folder with --out OUT")
    assert "Permission denied" in line or "Not a directory" in line or "File exists" in line


# -------------------------------------------------------------------------------------------- spikecl.convert


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Two short tones named like FSDD, and a CSV that names them."""
    soundfile = pytest.importorskip("soundfile")
    pytest.importorskip("lauscher")
    folder = tmp_path_factory.mktemp("audio")
    rate = 8000
    t = np.arange(int(0.1 * rate)) / rate
    for label in (0, 1):
        soundfile.write(folder / f"{label}_anna_0.wav", 0.3 * np.sin(2 * np.pi * 500 * (label + 1) * t), rate)
        soundfile.write(folder / f"{label}_bob_0.wav", 0.3 * np.sin(2 * np.pi * 700 * (label + 1) * t), rate)
    return folder


@pytest.mark.parametrize("args, parts", [
    (["--test-fraction", "5"], ["--test-fraction 5 is not valid", "between 0 and 1"]),
    (["--test-fraction", "0"], ["--test-fraction 0 is not valid"]),
    (["--channels", "0"], ["--channels 0 is not valid", "at least 1"]),
    (["--jobs", "0"], ["--jobs 0 is not valid"]),
])  # fmt: skip
def test_convert_checks_its_arguments_before_any_work(audio, tmp_path, args, parts):
    out = tmp_path / "shd"
    assert_one_line(tool("spikecl.convert", str(audio), str(out), *args, cwd=tmp_path), *parts)
    assert not out.exists()  # nothing converted, nothing written


def test_convert_with_a_csv_that_is_not_utf8(audio, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_bytes("file,label,speaker\n0_anna_0.wav,zéro,anna\n".encode("latin-1"))
    assert_one_line(tool("spikecl.convert", str(audio), str(tmp_path / "shd"), "--labels", str(table), cwd=tmp_path),
                    f"{table} is not UTF-8 text (byte 0xe9", "save it as UTF-8")


def test_convert_with_an_empty_audio_file(audio, tmp_path):
    import soundfile

    folder = tmp_path / "audio"
    folder.mkdir()
    for path in audio.glob("*.wav"):
        (folder / path.name).write_bytes(path.read_bytes())
    soundfile.write(folder / "1_carl_0.wav", np.zeros(0), 8000)
    assert_one_line(tool("spikecl.convert", str(folder), str(tmp_path / "shd"), cwd=tmp_path),
                    f"audio file {folder / '1_carl_0.wav'} holds no audio (0 samples)", "remove it")
