"""The L2 pull of docs/extending.md (a user's plugin outside spikecl): its penalty by hand, the doc and the
module in sync, and the doc's command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.model_config import make_model
from tests.example_plugin import l2_pull
from tests.example_plugin.l2_pull import L2Pull
from tests.plugin_context import make_ctx, set_, task

ROOT = Path(__file__).resolve().parents[1]


def test_penalty_pulls_the_trained_parameters_to_the_pretrained_ones():
    model = make_model(nb_inputs=6, hidden=[5, 4], nb_outputs=3)
    set_(model.w_out, torch.zeros(4, 3))
    ctx = make_ctx(model, 2, [task("pre", [0, 1]), task("a", [2]), task("b", [2])])  # trains w_out only
    pull = L2Pull(weight=0.5)
    pull.before_task(ctx, 1)
    set_(model.w_out, torch.full((4, 3), 2.0))
    with torch.no_grad():
        model.w[0].add_(1.0)  # a frozen parameter that moved adds nothing
    pull.before_task(ctx, 2)  # later tasks keep the pretrained anchor
    penalty = pull.loss(ctx, None, None)
    assert penalty.item() == pytest.approx(0.5 / 2 * 12 * 2.0 ** 2)
    penalty.backward()
    assert torch.allclose(model.w_out.grad, torch.full((4, 3), 0.5 * 2.0))
    restored = L2Pull(weight=0.5)
    restored.load_state_dict(pull.state_dict())
    assert restored.loss(ctx, None, None).item() == pytest.approx(penalty.item())


def test_the_doc_example_is_the_tested_module():
    doc = (ROOT / "docs" / "extending.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert Path(l2_pull.__file__).read_text() in blocks


def test_the_doc_command_line_runs_the_example(tiny_root, tmp_path):
    import subprocess
    import sys

    from tests.conftest import TINY
    from tests.test_run import check_run_folder

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "spikecl", *TINY, f"dataset.root={tiny_root}", f"cache_dir={tmp_path / 'cache'}",
           "split=class_incremental", "split.new_class=2", f"hydra.run.dir={out}",
           "+strategy.plugins.mine._target_=tests.example_plugin.l2_pull.L2Pull", "+strategy.plugins.mine.weight=1.0",
           "~strategy.plugins.replay"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = check_run_folder(out, tasks=2)
    assert summary["plugins"] == ["readout", "mine"] and "buffer_samples" not in summary
