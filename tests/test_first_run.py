"""A newcomer's first commands: Prefect's temporary server too slow to start, a Prefect server kept
for later commands, and output without TensorFlow's start-up chatter."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from conftest import GUTENBERG

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def authorbot(home, *args: str, extra: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {"PREFECT_HOME": str(home), "PATH": os.environ["PATH"], "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=env | (extra or {}),
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def test_a_temporary_server_that_does_not_start_in_time_is_one_line(tmp_path):
    data = tmp_path / "data"
    done = authorbot(
        tmp_path / "prefect",
        *("dataset", "--book", "1342", "--mirror", str(GUTENBERG), "--data-dir", str(data)),
        extra={"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"},  # a machine too busy to start it in 1 s
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "authorbot: Prefect's temporary server did not answer within 1 s (a slow or busy machine?); "
        "start one with `authorbot server start` (or `prefect server start` and set PREFECT_API_URL), "
        "then run the same command again"
    )
    assert "Stopping temporary server" not in done.stderr


def test_a_killed_server_start_is_found_and_stopped_later(tmp_path):
    home = tmp_path / "prefect"
    env = {"PREFECT_HOME": str(home), "PATH": os.environ["PATH"], "PYTHONPATH": ROOT}
    start = subprocess.Popen([sys.executable, "-m", "flows.cli", "server", "start"], env=env, stderr=subprocess.PIPE)
    record = home / "authorbot-server.json"
    while not record.is_file():
        assert start.poll() is None, start.stderr.read()
        time.sleep(0.1)
    start.send_signal(signal.SIGKILL)  # while it waits for the server to come up
    start.wait()
    assert authorbot(home, "server", "stop").stdout.strip() == "Prefect server stopped"


def test_chat_prints_no_tensorflow_start_up_lines(tiny_model, tmp_path):
    noisy = subprocess.run([sys.executable, "-c", "import tensorflow as tf; tf.config.list_physical_devices()"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "absl" in noisy.stderr  # what TensorFlow prints at start-up on this machine
    quiet = authorbot(tmp_path, "chat", str(tiny_model), "--max-new-tokens", "5", input="Hello there.\n")
    assert quiet.returncode == 0 and len(quiet.stdout.splitlines()) == 1
    assert "cuda" not in quiet.stderr.lower() and "absl" not in quiet.stderr, quiet.stderr


def in_a_terminal(home, *args: str) -> tuple[int, str]:
    """Run authorbot with its stderr on a pseudo-terminal, as from a shell; (exit code, what it printed there)."""
    import pty

    leader, follower = pty.openpty()
    env = {"PREFECT_HOME": str(home), "PATH": os.environ["PATH"], "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"}
    done = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args], env=env, stdout=subprocess.DEVNULL, stderr=follower
    )
    os.close(follower)
    printed = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the other end closed: the command has exited
            break
        if not chunk:
            break
        printed += chunk
    os.close(leader)
    return done.wait(timeout=300), printed.decode(errors="replace")


def test_a_command_from_a_terminal_keeps_a_server_for_the_next_until_stopped(tmp_path):
    home = tmp_path / "prefect"
    args = ("dataset", "--book", "1342", "--mirror", str(GUTENBERG), "--data-dir", str(tmp_path / "data"))
    try:
        code, first = in_a_terminal(home, *args)
        assert code == 0, first[-2000:]
        assert "authorbot: starting a Prefect server in the background for this and later commands" in first
        url = authorbot(home, "server", "status").stdout.strip().removeprefix("running: ")
        assert url.startswith("http://127.0.0.1:") and requests.get(f"{url}/health", timeout=5).ok
        again = authorbot(home, *args)  # a script's command (no terminal) uses it too; all from the cache
        assert again.returncode == 0 and "temporary server" not in again.stderr, again.stderr[-2000:]
        runs = requests.post(f"{url}/flow_runs/filter", json={}, timeout=10).json()
        assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"]  # both ran on the kept server
        assert authorbot(home, "server", "start").returncode == 0  # a second start finds the first
    finally:
        stopped = authorbot(home, "server", "stop")
    assert stopped.stdout.strip() == "Prefect server stopped"
    assert authorbot(home, "server", "status").stdout.strip().startswith("not running")
    deadline = time.monotonic() + 20
    while True:  # nothing of it is left running
        try:
            requests.get(f"{url}/health", timeout=2)
        except requests.ConnectionError:
            break
        assert time.monotonic() < deadline, "the server still answers"
        time.sleep(0.5)
