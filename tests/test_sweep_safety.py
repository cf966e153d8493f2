"""Runs and sweeps that start together: one sweep per sweep folder, one folder per single run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from spikecl import sweeps
from spikecl.errors import ConfigError
from spikecl.sweeps import register_resolvers, unique_dir

ROOT = Path(__file__).resolve().parents[1]

# A job that waits until the test releases it, so that its sweep is still running when the second one starts.
APP = '''
import json, os, time
from pathlib import Path
import hydra
from hydra.core.hydra_config import HydraConfig
from spikecl.sweeps import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    out = Path(HydraConfig.get().runtime.output_dir)
    Path(os.environ["STARTED"]).touch()
    deadline = time.monotonic() + 60
    while not Path(os.environ["RELEASE"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (out / "summary.json").write_text(json.dumps({"status": "completed", "acc_all": 0.5}))
    return 0.5


if __name__ == "__main__":
    main()
'''


def _env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "HYDRA_FULL_ERROR": "0", "STARTED": str(tmp_path / "started"),
            "RELEASE": str(tmp_path / "release")}  # fmt: skip


def test_second_sweep_on_the_same_folder_stops_at_once(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(APP)
    hydra_block = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())["hydra"]
    config = {"defaults": ["_self_", {"override hydra/sweeper": "spikecl"}], "x": 0, "hydra": hydra_block}
    (app / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, str(app / "app.py"), "-m", "x=1", f"hydra.sweep.dir={tmp_path / 'sweep'}",
           "hydra.sweeper.report=false"]  # fmt: skip
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                             env=_env(tmp_path))  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        started = time.monotonic()
        second = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=60)
        assert second.returncode != 0 and time.monotonic() - started < 30
        lock = tmp_path / "sweep" / ".sweep.lock"
        assert f"hydra.sweep.dir={tmp_path / 'sweep'} is not valid; another sweep is running there (pid {first.pid} " \
               f"on host" in second.stderr and f"lock file {lock}" in second.stderr, second.stderr
        assert "Traceback" not in second.stdout + second.stderr
        assert first.poll() is None  # the first sweep is untouched
    finally:
        (tmp_path / "release").touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    assert lock.read_text() == ""  # released: a rerun may resume the sweep


def test_unique_dir_claims_a_new_folder_each_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    base = "outputs/runs/2026-01-01/12-00-00"
    assert [unique_dir(base) for _ in range(3)] == [base, f"{base}-2", f"{base}-3"]
    assert all((tmp_path / name).is_dir() for name in (base, f"{base}-2", f"{base}-3"))


def test_run_dir_pattern_is_unique_per_config_and_stable_within_one(tmp_path: Path, monkeypatch) -> None:
    """Two runs started in the same second (the same ``now``) get two folders; one run reads its folder
    as often as it likes."""
    monkeypatch.chdir(tmp_path)
    register_resolvers()
    pattern = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())["hydra"]["run"]["dir"]
    pattern = pattern.replace("${now:%Y-%m-%d}", "2026-01-01").replace("${now:%H-%M-%S}", "12-00-00")
    first, second = OmegaConf.create({"dir": pattern}), OmegaConf.create({"dir": pattern})
    assert first.dir == first.dir == "outputs/runs/2026-01-01/12-00-00"
    assert second.dir == "outputs/runs/2026-01-01/12-00-00-2"


def test_unique_dir_gives_up_with_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweeps, "MAX_SAME_NAME", 2)
    assert [unique_dir("runs/a") for _ in range(2)] == ["runs/a", "runs/a-2"]
    with pytest.raises(ConfigError, match=r"hydra.run.dir=runs/a is not valid; 2 runs already have folders"):
        unique_dir("runs/a")
