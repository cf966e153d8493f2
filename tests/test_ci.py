"""CI's second pass (.ci/run) runs the tests that compare trained figures with another instruction set: its
marker selects them, and they are not none."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def second_pass() -> tuple[dict[str, str], str]:
    """The environment and the ``-m`` expression of the pytest command in .ci/run that sets ATEN_CPU_CAPABILITY."""
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if "ATEN_CPU_CAPABILITY=" in line and "pytest" in line and not line.lstrip().startswith("#")]
    assert len(lines) == 1, lines
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", lines[0].split("python")[0]))
    expression = re.search(r"-m \"([^\"]+)\"", lines[0])
    assert expression, lines[0]
    return env, expression.group(1)


def test_the_second_pass_uses_another_instruction_set_and_selects_the_trained_figure_tests():
    env, expression = second_pass()
    assert env == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", expression,
                           "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    selected = [line for line in proc.stdout.splitlines() if "::" in line]
    files = {line.split("::")[0] for line in selected}
    assert len(selected) >= 20, proc.stdout[-2000:]
    assert {"tests/test_golden.py", "tests/test_determinism.py", "tests/test_resume.py"} <= files, files
    assert "tests/test_forgetting_methods.py" not in files  # slow: the second pass stays short
