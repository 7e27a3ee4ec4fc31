"""The projection process, killed with SIGKILL at random moments, loses and repeats nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from ledger import Ledger, StoreConfig
from projections.registry import all_projections
from projections.runner import ProjectionRunner, read_status
from tests.integration.projection_support import assert_live_equals_fresh_rebuild, long_history

EVENTS = 10_000
KILLS = 5


def project(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "project", "--once", "--batch-size", "5"],
        env={**os.environ, "COOP_LEDGER_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_killing_the_projection_process_while_it_catches_up_loses_and_repeats_nothing(
    database_url: str,
) -> None:
    ledger = Ledger(StoreConfig.from_url(database_url))
    mentor = ledger.register_person("Mo").id
    people = [ledger.register_person(f"Worker {n}").id for n in range(20)]
    long_history(ledger, EVENTS, mentor, people)
    head = ledger.recorder.max_notification_id()
    assert head >= EVENTS
    names = [p.name for p in ProjectionRunner(ledger, all_projections()).projections]
    chance = random.Random(20261127)
    killed_midway = 0
    for _ in range(KILLS):
        before = min(s.position for s in read_status(ledger.db, names, head))
        process = project(database_url)
        time.sleep(chance.uniform(0.7, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        after = read_status(ledger.db, names, head)
        if all(s.position < head for s in after) and max(s.position for s in after) > before:
            killed_midway += 1
    assert killed_midway >= 3, "most kills must land while the projections are catching up"
    finished = project(database_url)
    _, errors = finished.communicate(timeout=600)
    assert finished.returncode == 0, errors.decode()
    assert all(
        s.position == head and s.state == "running" for s in read_status(ledger.db, names, head)
    )
    assert_live_equals_fresh_rebuild(ledger, all_projections())
    ledger.close()
