"""The README's command-line block, run as a user would type it: the same words, in order, in a shell's folder.

Only the server differs: the README's local server URL is replaced by the test server's. ``serve`` runs
until stopped, so it is left to the service tests. Each command must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

README_SERVER = "http://127.0.0.1:8080/fhir"


def readme_commands() -> list[str]:
    """The ``trialfhir`` lines of the README's "The command line" block, without their comments."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## The command line", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the README has a command-line block"
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == ".venv/bin/trialfhir":
            commands.append(shlex.join(words))
    return commands


def test_the_block_holds_the_documented_workflow() -> None:
    verbs = [shlex.split(command)[1:3] for command in readme_commands()]
    assert verbs[:5] == [["map", "study"], ["map", "package"], ["push", "mapped/"], ["pull", "--server"],
                         ["export", "pulled/"]]


def test_every_readme_command_runs_as_written(tmp_path: Path, fhir_base_url: str) -> None:
    # The user's folder: the checkout's fixtures and virtual environment are where the README expects them.
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = {**os.environ, "ADAPTER_JOURNAL_DIR": str(tmp_path / "journal")}
    for command in readme_commands():
        if shlex.split(command)[1] == "serve":
            continue
        words = [fhir_base_url if word == README_SERVER else word for word in shlex.split(command)]
        done = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (tmp_path / "sdtm" / "lb.csv").is_file()
