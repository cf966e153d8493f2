"""The README's set-up works when followed literally, line by line."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_cpu_build_of_torch_is_installed_before_the_package_and_pinned_as_ci_pins_it():
    setup = (ROOT / "README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = setup.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    cpu = next(i for i, c in enumerate(commands) if "download.pytorch.org/whl/cpu" in c)
    package = next(i for i, c in enumerate(commands) if c.startswith("pip install -e"))
    assert cpu < package, commands  # followed literally, the CPU build comes first
    pinned = re.search(r"torch==(\S+)", commands[cpu])
    ci = re.search(r"pip install --quiet torch==(\S+)", (ROOT / ".ci" / "run").read_text())
    assert pinned and ci and pinned.group(1) == ci.group(1)  # a version that exists on the CPU index, as CI uses
