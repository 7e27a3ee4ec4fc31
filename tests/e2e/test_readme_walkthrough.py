"""The README's walkthrough, run verbatim against a real server: it cannot drift."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.e2e.server import running_service

README = Path(__file__).resolve().parents[2] / "README.md"
TOKEN = "walkthrough-facilitator-token"


def walkthrough_script() -> str:
    text = README.read_text()
    section = text.split("<!-- walkthrough:start -->")[1].split("<!-- walkthrough:end -->")[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 5, "the walkthrough has its blocks"
    return "set -euo pipefail\n" + "\n".join(blocks)


def test_the_readme_walkthrough_runs_as_written(database_url: str) -> None:
    assert shutil.which("curl"), "the walkthrough needs curl"
    assert shutil.which("jq"), "the walkthrough needs jq"
    with running_service(database_url, TOKEN) as base:
        result = subprocess.run(
            ["bash", "-c", walkthrough_script()],
            env={"BASE": base, "ADMIN_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"ProposalAdopted"\n"MemberAdmitted"' in out
    assert "manager_role_does_not_exist" in out
    assert '"De Schoonmakers Noord"' in out
    assert "\n4\n" in out, "four members stay after two moved"
    assert '"client-0017"' in out
