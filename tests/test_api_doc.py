"""docs/api.md's example runs as written (in a temporary folder) and does what it says."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_example_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "api.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "pretrained: test accuracy per task" in out and "after class 11:" in out
    assert re.search(r"buffer: \d+ samples of classes \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]", out)
    folder = tmp_path / "outputs" / "api-example"
    summary = json.loads((folder / "summary.json").read_text())
    assert len(summary["accuracy_matrix"]) == 3 and summary["compression_ratio"] == 4
    assert (folder / "accuracy_matrix.png").stat().st_size > 1000 and (folder / "metrics.csv").is_file()
