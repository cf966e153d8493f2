"""Loggers write real CSV, TensorBoard and MLflow records that read back; missing packages are one-line errors."""

from __future__ import annotations

import builtins
import csv
import json

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spikecl.cli import config_dir
from spikecl.errors import ConfigError
from spikecl.loggers import CSVLogger, MLflowLogger, MultiLogger, Step, TensorBoardLogger, flatten_params

MATRIX = np.array([[0.8, 0.0], [0.7, 0.6]])
PARAMS = {"seed": 0, "model": {"hidden": [200, 100], "dt": 1e-3}, "strategy": {"name": "latent_replay"},
          "root": None}


def feed(logger) -> None:
    logger.log_hparams(PARAMS)
    logger.log_metrics({"accuracy/old": 0.5, "loss/old": 1.2}, Step("pretrain", 0, 1))
    logger.log_metrics({"accuracy/old": 0.8, "loss/old": 0.6}, Step("pretrain", 0, 2))
    logger.log_metrics({"accuracy/old": 0.7, "accuracy/new": 0.6}, Step("cl", 1, 1))
    logger.log_matrix("accuracy_matrix", MATRIX)
    logger.close()


def test_flatten_params():
    assert flatten_params(PARAMS) == {"seed": 0, "model.hidden": "[200, 100]", "model.dt": 1e-3,
                                      "strategy.name": "latent_replay", "root": "None"}


def test_csv_logger(tmp_path):
    feed(CSVLogger(tmp_path))
    rows = list(csv.DictReader(open(tmp_path / "scalars.csv")))
    assert [(r["step"], r["phase"], r["task"], r["epoch"], r["name"]) for r in rows[-2:]] == [
        ("2", "cl", "1", "1", "accuracy/old"), ("2", "cl", "1", "1", "accuracy/new")]
    assert float(rows[2]["value"]) == 0.8
    assert json.loads((tmp_path / "hparams.json").read_text())["params"]["model.dt"] == 1e-3
    assert np.loadtxt(tmp_path / "accuracy_matrix.csv", delimiter=",").tolist() == MATRIX.tolist()


def test_tensorboard_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    feed(TensorBoardLogger(tmp_path))
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    old = events.Scalars("pretrain/accuracy/old")
    assert [(e.step, round(e.value, 6)) for e in old] == [(0, 0.5), (1, 0.8)]
    assert [(e.step, e.value) for e in events.Scalars("cl/task")] == [(2, 1.0)]
    image = events.Images("accuracy_matrix")[0]
    assert image.width > 100 and image.encoded_image_string[:4] == b"\x89PNG"
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


def test_mlflow_store(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from spikecl.loggers import MLflowLogger

    logger = MLflowLogger(tmp_path, experiment_name="test", run_name="run0")
    feed(logger)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run0"
    assert run.data.params["model.hidden"] == "[200, 100]"
    history = client.get_metric_history(logger.run_id, "pretrain/accuracy/old")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.8)]
    assert sorted(f.path for f in client.list_artifacts(logger.run_id, "matrices")) == [
        "matrices/accuracy_matrix.csv", "matrices/accuracy_matrix.png"]
    assert (tmp_path / "mlartifacts").is_dir()


def test_logger_configs_and_multi(tmp_path):
    configs = [OmegaConf.load(config_dir() / "logger" / f"{name}.yaml") for name in ("csv", "tensorboard")]
    pytest.importorskip("tensorboard")
    multi = MultiLogger([instantiate(c, run_dir=tmp_path) for c in configs])
    assert [type(x).__name__ for x in multi.loggers] == ["CSVLogger", "TensorBoardLogger"]
    feed(multi)
    assert (tmp_path / "scalars.csv").is_file() and any((tmp_path / "tensorboard").iterdir())
    mlflow_cfg = OmegaConf.load(config_dir() / "logger" / "mlflow.yaml")
    assert mlflow_cfg._target_ == "spikecl.loggers.MLflowLogger" and mlflow_cfg.tracking_uri is None
    assert isinstance(instantiate(configs[0], run_dir=tmp_path / "x"), CSVLogger)


def test_missing_package_is_a_config_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_extras(name, *args, **kwargs):
        if name.startswith(("mlflow", "torch.utils.tensorboard")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_extras)
    from spikecl.loggers import MLflowLogger

    with pytest.raises(ConfigError, match=r'pip install "spikecl\[tensorboard\]"'):
        TensorBoardLogger(tmp_path)
    with pytest.raises(ConfigError, match=r'pip install "spikecl\[mlflow\]"'):
        MLflowLogger(tmp_path)


def test_the_jobs_of_a_sweep_log_into_one_mlflow_experiment(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    sweep = tmp_path / "my-sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("{}")
    for job in ("seed=0", "seed=1"):
        logger = MLflowLogger(run_dir=sweep / job)
        logger.log_metrics({"val/accuracy/all": 0.5}, Step("cl", 1, 1))
        logger.close()
    client = MlflowClient(tracking_uri=f"sqlite:///{sweep / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("my-sweep")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["seed=0", "seed=1"]
