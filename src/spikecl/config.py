"""Configuration errors and the checks that run before any data is read or any training starts.

Each check raises :class:`ConfigError` with one line naming the key, the value and what is allowed.
Checks that need the data (is the held-out speaker in it?) live with the data layer
(:func:`spikecl.data.splits.check_split_against_data`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig

from spikecl.errors import ConfigError

MIXES = ("sequential", "interleaved", "mixed")
STRATEGIES = ("naive", "rehearsal", "latent_replay")
DEVICES = ("auto", "cpu", "cuda")
CURRENT_DTYPES = ("float32", "float16")


def _one_of(key: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; allowed: {', '.join(map(str, allowed))}")


def _int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}={value!r} is not valid; it must be an integer >= {minimum}")


def _positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{key}={value!r} is not valid; it must be a number > 0")


def _int_list(key: str, values: Any) -> list[int]:
    values = list(values) if values is not None else []
    for v in values:
        _int(f"{key} entry", v, 0)
    if not values:
        raise ConfigError(f"{key}=[] is not valid; give at least one class, e.g. {key}=[0,1,2]")
    if len(set(values)) != len(values):
        raise ConfigError(f"{key}={values} is not valid; it lists a class twice")
    return values


def check_config(cfg: DictConfig) -> None:
    """Validate every user-facing value that can be checked without reading data."""
    import torch  # only here: the checks above stay importable without torch

    from spikecl.cl.buffer import SELECTIONS
    from spikecl.cl.compression import CODECS, check_ratio
    from spikecl.data.splits import PROTOCOLS

    _int("seed", cfg.seed, 0)
    _one_of("progress", cfg.progress, ("auto", True, False))
    d = cfg.dataset
    _one_of("dataset.protocol", d.protocol, PROTOCOLS)
    if not (isinstance(d.test_fraction, (int, float)) and 0 < d.test_fraction < 1):
        raise ConfigError(f"dataset.test_fraction={d.test_fraction!r} is not valid; it must be in (0, 1), e.g. 0.2")
    _int("dataset.nb_steps", d.nb_steps, 1)
    _int("dataset.nb_units", d.nb_units, 1)
    _positive("dataset.max_time", d.max_time)

    s = cfg.split
    if s.name == "sample_incremental":
        _int("split.speaker", s.speaker, 0)
    elif s.name == "class_incremental":
        _int("split.new_class", s.new_class, 0)
    else:
        old, new = _int_list("split.old_classes", s.old_classes), _int_list("split.new_classes", s.new_classes)
        overlap = sorted(set(old) & set(new))
        if overlap:
            raise ConfigError(f"split.old_classes and split.new_classes overlap in {overlap}; a class is either "
                              "pretrained or learned later, not both")

    m = cfg.model
    hidden = list(m.hidden)
    if not hidden:
        raise ConfigError("model.hidden=[] is not valid; give at least one hidden layer width, e.g. [200,100,50]")
    for i, h in enumerate(hidden):
        _int(f"model.hidden[{i}]", h, 1)
    if m.nb_outputs is not None:
        _int("model.nb_outputs", m.nb_outputs, 1)
    for key in ("dt", "tau_syn", "tau_mem", "threshold", "surrogate_scale", "weight_scale"):
        _positive(f"model.{key}", m[key])

    for phase in ("pretrain", "strategy"):
        p = cfg[phase]
        _int(f"{phase}.epochs", p.epochs, 0)
        _positive(f"{phase}.lr", p.lr)
        _int(f"{phase}.batch_size", p.batch_size, 1)
    st = cfg.strategy
    _one_of("strategy.name", st.name, STRATEGIES)
    _one_of("strategy.selection", st.selection, SELECTIONS)
    _one_of("strategy.mix", st.mix, MIXES)
    _int("strategy.buffer_size", st.buffer_size, 0)
    _int("strategy.replay_per_new_class", st.replay_per_new_class, 0)
    if st.name == "naive" and (st.buffer_size or st.replay_per_new_class):
        raise ConfigError(f"strategy=naive keeps no buffer, but strategy.buffer_size={st.buffer_size} and "
                          f"strategy.replay_per_new_class={st.replay_per_new_class}; set them to 0 or use "
                          "strategy=rehearsal or strategy=latent_replay")
    depth = st.latent_depth
    if depth is None and st.name == "latent_replay":
        raise ConfigError(f"strategy.latent_depth=null is not valid for latent_replay; choose 0..{len(hidden)}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= len(hidden)):
        raise ConfigError(f"strategy.latent_depth={depth!r} is not valid; allowed: 0..{len(hidden)} for "
                          f"{len(hidden)} hidden layers (0: input currents, d: spikes of hidden layer d)")
    for key in ("loss.reg_l1", "loss.reg_l2"):
        value = cfg.loss[key.split(".")[1]]
        if not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{key}={value!r} is not valid; it must be a number >= 0")
    _int("eval.batch_size", cfg.eval.batch_size, 1)

    c = cfg.compression
    _int("compression.ratio", c.ratio, 1)
    check_ratio(c.ratio, d.nb_steps)
    _one_of("compression.codec", c.codec, CODECS)
    _one_of("compression.input_codec", c.input_codec, CODECS)
    _one_of("compression.current_dtype", c.current_dtype, CURRENT_DTYPES)

    _one_of("device.name", cfg.device.name, DEVICES)
    if cfg.device.num_threads is not None:
        _int("device.num_threads", cfg.device.num_threads, 1)
    if cfg.device.name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available (torch.cuda.is_available() is False); "
                          "use device=cpu or device=auto")
