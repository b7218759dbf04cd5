"""Fault matrix, kill -9 of a full `authorbot run` as a person runs it (an author's name over a
loopback mirror to a bot): at random moments (starting up, downloading from a slow mirror,
extracting, training) and just after a checkpoint mid-training, then the same command again: it
resumes, completes, and its outputs equal those of a run that was never interrupted; once more,
and everything comes from the cache; then the bot's cast and a chat as its first character."""

import json
import os
import random
import re
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
        "--author", "Oscar Wilde", "--mirror", mirror_url, "--max-books", "1", "--request-delay", "0",
        "--model", "scratch:tiny", "--tokenizer", str(SHARED / "gpt2-tokenizer"),
        "--epochs", "2", "--max-pairs", "200", "--checkpoint-every", "12", "--max-new-tokens", "16",
        "--max-responses", "30", "--ranked", "10", "--samples", "3",  # a small evaluation: it is tested elsewhere
        "--data-dir", str(tmp_path / f"{name}-data"), "--out", str(tmp_path / f"{name}-out"),
    ]  # fmt: skip


def checkpoint_name(ckpt_dir) -> str:
    index = ckpt_dir / "checkpoint"
    return index.read_text().splitlines()[0] if index.is_file() else ""


def kill_after_the_next_checkpoint_in_training(cmd: list[str], env: dict, out) -> bool:
    """Start the run and kill -9 it just after a checkpoint that follows a finished epoch; False when
    it ended first (the earlier kills had left it little to train)."""
    run = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics, deadline = out / "metrics.jsonl", time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().strip()):
        if run.poll() is not None:
            return False
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.2)
    after_an_epoch = checkpoint_name(out / "checkpoints")
    while checkpoint_name(out / "checkpoints") == after_an_epoch:
        if run.poll() is not None:
            return False
        assert time.monotonic() < deadline, "no checkpoint after the epoch"
        time.sleep(0.1)
    run.send_signal(signal.SIGKILL)
    run.wait()
    return True


def test_kill_9_at_random_moments_and_mid_training_then_the_same_command_gives_the_same_outputs(
    tmp_path, prefect_server, mirror
):
    env = prefect_server | {"PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"}
    # Wilde: Dorian Gray is not on the mirror, so the play is his one book, and its short text keeps the
    # scratch model's prose epoch short
    mirror.faults["/cache/epub/844/pg844.txt"] = ["slow"] * 20  # each download of the play takes 1.5 s
    reference = subprocess.run(command(mirror.url, tmp_path, "ref"), env=env, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr[-3000:]

    cmd, out = command(mirror.url, tmp_path, "run"), tmp_path / "run-out"
    delays = [random.Random(os.getpid()).uniform(2, 20)]  # one a run, for the suite's time; it varies by run
    killed_at = []
    for delay in delays:  # starting up, downloading from the slow mirror, extracting, training
        run = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGKILL)
            run.wait()
            killed_at.append(round(delay, 1))
    mid_training = kill_after_the_next_checkpoint_in_training(cmd, env, out)
    mirror.requests.clear()
    final = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert final.returncode == 0, f"killed at {killed_at} s: {final.stderr[-3000:]}"
    assert mirror.total() == 0  # the books and the dataset came from the cache
    if mid_training:
        assert "resuming from checkpoint" in final.stderr, killed_at

    ref = tmp_path / "ref-out"
    assert (out / "pairs.json").read_text() == (ref / "pairs.json").read_text(), killed_at
    lines = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (ref, out)]
    steps = [[(m["epoch"], m["stage"], m["step"]) for m in ms] for ms in lines]
    # each epoch once (a scratch model's prose epoch, then two of dialogue), the same number of steps
    assert steps[0] == steps[1] and [s[1] for s in steps[0]] == ["prose", "dialogue", "dialogue"], killed_at
    perplexities = [m["val_perplexity"] for m in lines[1]]
    assert perplexities == sorted(perplexities, reverse=True) and perplexities[0] > perplexities[-1]
    assert (out / "model/tf_model.h5").is_file() and (out / "model/tokenizer.json").is_file()
    assert (out / "loss.png").is_file()
    transcript = (out / "transcript.md").read_text()
    assert transcript.count("**Bot:**") == 8 and "temperature 0.8" in transcript
    evaluation = json.loads((out / "eval.json").read_text())  # measured on the validation pairs
    validation = [p for p in json.loads((out / "pairs.json").read_text()) if p["split"] == "validation"]
    assert 0 < evaluation["responses"] <= min(30, len(validation))
    assert 1 < evaluation["response_perplexity"] < 50257 and evaluation["ngram_perplexity"] > 1
    assert 0 <= evaluation["hits_at_1"]["value"] <= 1 and evaluation["replies"]["sampled"]["replies"] == 3

    # The same command again computes nothing: training, evaluation and transcript are cached.
    (out / "eval.json").unlink()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "resuming" not in again.stderr
    for step in ("train-model", "evaluate-bot", "write-transcript"):
        assert re.search(rf"Task run '{step}-\w+' - Finished in state Cached", again.stderr), step
    assert json.loads((out / "eval.json").read_text()) == evaluation  # written again from the cache
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]

    # The cast it was trained with, largest first; chat over a pipe as its first character: one reply
    # line per input line.
    model = str(out / "model")
    cast = subprocess.run([*cmd[:3], "characters", model], env=env, capture_output=True, text=True).stdout
    trained_with = json.loads((out / "model/authorbot.json").read_text())["characters"]
    first = max(trained_with, key=trained_with.get)
    lines = cast.splitlines()
    assert lines[2].split(None, 1) == [str(trained_with[first]), first] and len(lines) == 2 + len(trained_with)
    chat = subprocess.run(
        [*cmd[:3], "chat", model, "--max-new-tokens", "12", "--as", first],
        env=env,
        input="Good afternoon, Algernon.\nHave you got the cucumber sandwiches?\n",
        capture_output=True,
        text=True,
    )
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert len(chat.stdout.splitlines()) == 2


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
