"""Fault matrix, kill -9 at random moments of a full `authorbot run` (starting up, downloading
from a slow mirror, extracting, training, saving, writing the transcript), then the same command
again: it completes, and its outputs equal those of a run that was never interrupted."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import SHARED

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def command(mirror_url: str, tmp_path, name: str) -> list[str]:
    return [
        sys.executable, "-m", "flows.cli", "run",
        "--author", "Jane Austen", "--mirror", mirror_url, "--max-books", "1", "--request-delay", "0",
        "--model", "scratch:tiny", "--tokenizer", str(SHARED / "gpt2-tokenizer"),
        "--epochs", "2", "--max-pairs", "150", "--checkpoint-every", "3", "--max-new-tokens", "8",
        "--max-responses", "30", "--ranked", "10", "--samples", "3",  # a small eval: what is killed here is the run
        "--data-dir", str(tmp_path / f"{name}-data"), "--out", str(tmp_path / f"{name}-out"),
    ]  # fmt: skip


def test_kill_9_at_random_moments_then_the_same_command_gives_the_same_outputs(tmp_path, prefect_server, mirror):
    env = prefect_server | {"PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"}
    mirror.faults["/cache/epub/158/pg158.txt"] = ["slow"] * 20  # each download of Emma takes 1.5 s
    reference = subprocess.run(command(mirror.url, tmp_path, "ref"), env=env, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr[-3000:]

    delays = sorted(random.Random(os.getpid()).uniform(2, 25) for _ in range(4))
    killed_at = []
    for delay in delays:
        run = subprocess.Popen(
            command(mirror.url, tmp_path, "run"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            run.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGKILL)
            run.wait()
            killed_at.append(round(delay, 1))
    final = subprocess.run(command(mirror.url, tmp_path, "run"), env=env, capture_output=True, text=True)
    assert final.returncode == 0, f"killed at {killed_at} s: {final.stderr[-3000:]}"

    ref, out = tmp_path / "ref-out", tmp_path / "run-out"
    assert (out / "pairs.json").read_text() == (ref / "pairs.json").read_text(), killed_at
    steps = [
        [(m["epoch"], m["step"]) for m in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())]
        for d in (ref, out)
    ]
    assert steps[0] == steps[1] and len(steps[0]) == 2, killed_at  # each epoch once, the same number of steps
    assert (out / "model/tf_model.h5").is_file() and (out / "transcript.md").read_text().count("**Bot:**") == 8


def test_a_temporary_prefect_server_left_by_a_kill_9_is_stopped_by_the_next_command(tmp_path):
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": ROOT, "PREFECT_HOME": str(tmp_path / "prefect")}
    args = ["dataset", "--book", "1342", "--mirror", str(SHARED / "gutenberg"), "--data-dir", str(tmp_path / "data")]
    log = tmp_path / "run.log"
    run = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=env, stderr=open(log, "w"))
    while not servers_started_by(run.pid):  # Prefect logs "Starting temporary server" before it spawns one
        assert run.poll() is None, log.read_text()
        time.sleep(0.2)
    run.send_signal(signal.SIGKILL)  # the CLI only, as `kill -9 PID` does: its server lives on
    run.wait()
    assert servers_started_by(run.pid)
    nxt = subprocess.run(
        [sys.executable, "-m", "flows.cli", "extract", str(tmp_path / "none.txt")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "stopped a Prefect server left by a killed run" in nxt.stderr
    time.sleep(2)
    assert not servers_started_by(run.pid)


def servers_started_by(cli_pid: int) -> list[str]:
    """Pids of the Prefect server processes that an authorbot with this pid started."""
    found = subprocess.run(["pgrep", "-f", "prefect.server.api.server"], capture_output=True, text=True).stdout.split()
    mark = f"AUTHORBOT_CLI_PID={cli_pid}\0".encode()
    started = []
    for pid in found:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark in f.read():
                    started.append(pid)
        except OSError:  # exited meanwhile
            pass
    return started
