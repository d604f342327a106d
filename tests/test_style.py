"""The code style gates of the project: ruff for Python, snakefmt for Snakemake files."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "src", "tests", "workflow/scripts"],
        ["ruff", "format", "--check", "src", "tests", "workflow/scripts"],
        ["snakefmt", "--check", "Snakefile", "workflow"],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_style(command):
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=REPO, capture_output=True, encoding="utf-8"
    )
    assert result.returncode == 0, result.stdout + result.stderr
