"""`authorbot run` as a person runs it: from an author's name over a loopback mirror to a bot,
killed with SIGKILL in its second epoch and started again with the same command."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import SHARED

pytestmark = pytest.mark.slow


def authorbot(home, *args: str, server: dict | None = None, **kwargs):
    env = {"PREFECT_HOME": str(home), "PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1"}
    if server:  # a running Prefect server, as `authorbot server start` keeps: no temporary one per command
        env |= {"PREFECT_HOME": server["PREFECT_HOME"], "PREFECT_API_URL": server["PREFECT_API_URL"]}
    return [sys.executable, "-m", "flows.cli", *args], dict(env=env, text=True, **kwargs)


def checkpoint_name(ckpt_dir) -> str:
    index = ckpt_dir / "checkpoint"
    return index.read_text().splitlines()[0] if index.is_file() else ""


def test_run_killed_in_its_second_epoch_resumes_and_the_bot_answers(mirror, tmp_path, prefect_server):
    out = tmp_path / "out"
    run_args = [
        "run",
        "--author", "Jane Austen",
        "--mirror", mirror.url,
        "--max-books", "1",
        "--request-delay", "0",
        "--model", "scratch:tiny",
        "--tokenizer", str(SHARED / "gpt2-tokenizer"),
        "--epochs", "3",
        "--max-pairs", "300",
        "--checkpoint-every", "4",
        "--max-new-tokens", "16",
        "--max-responses", "80",
        "--ranked", "20",
        "--samples", "4",
        "--data-dir", str(tmp_path / "data"),
        "--out", str(out),
    ]  # fmt: skip
    cmd, kw = authorbot(tmp_path / "prefect", *run_args, server=prefect_server)

    # Start, wait for the first epoch's line and then a checkpoint inside the second epoch, kill -9
    # the whole process group (the temporary Prefect server included).
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, **kw)
    metrics, deadline = out / "metrics.jsonl", time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().strip()):
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
        time.sleep(0.2)
    after_epoch_1 = checkpoint_name(out / "checkpoints")
    while checkpoint_name(out / "checkpoints") == after_epoch_1:
        assert first.poll() is None and time.monotonic() < deadline, "no checkpoint in the second epoch"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert len(metrics.read_text().splitlines()) == 1
    assert not (out / "model").exists()

    mirror.requests.clear()
    second = subprocess.run(cmd, capture_output=True, timeout=600, **kw)
    assert second.returncode == 0, second.stderr[-3000:]
    assert mirror.total() == 0  # the books and the dataset came from the cache
    assert "resuming" in second.stderr and "at epoch 2, step " in second.stderr
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2, 3]  # each epoch once
    perplexities = [m["val_perplexity"] for m in lines]
    assert perplexities == sorted(perplexities, reverse=True) and perplexities[0] > perplexities[-1]
    assert (out / "model/tf_model.h5").is_file() and (out / "model/tokenizer.json").is_file()
    assert (out / "pairs.json").is_file() and (out / "loss.png").is_file()
    transcript = (out / "transcript.md").read_text()
    assert transcript.count("**Bot:**") == 8 and "temperature 0.8" in transcript
    evaluation = json.loads((out / "eval.json").read_text())  # measured on the validation pairs
    validation = [p for p in json.loads((out / "pairs.json").read_text()) if p["split"] == "validation"]
    assert 0 < evaluation["responses"] <= min(80, len(validation))
    assert 1 < evaluation["response_perplexity"] < 50257 and evaluation["ngram_perplexity"] > 1
    assert 0 <= evaluation["hits_at_1"]["value"] <= 1 and evaluation["replies"]["sampled"]["replies"] == 4

    # The same command again trains nothing: the finished training is cached.
    third = subprocess.run(cmd, capture_output=True, timeout=600, **kw)
    assert third.returncode == 0 and "resuming" not in third.stderr
    assert "Task run 'train-model" in third.stderr and "Cached" in third.stderr
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2, 3]

    # The cast it was trained with, largest first; chat over a pipe as its first character: one reply
    # line per input line.
    cmd, kw = authorbot(tmp_path / "prefect", "characters", str(out / "model"))
    cast = subprocess.run(cmd, capture_output=True, timeout=60, **kw).stdout.splitlines()
    trained_with = json.loads((out / "model/authorbot.json").read_text())["characters"]
    first = max(trained_with, key=trained_with.get)
    assert cast[2].split(None, 1) == [str(trained_with[first]), first] and len(cast) == 2 + len(trained_with)
    cmd, kw = authorbot(tmp_path / "prefect", "chat", str(out / "model"), "--max-new-tokens", "12", "--as", first)
    chat = subprocess.run(
        cmd, input="Good morning, Miss Woodhouse.\nWhat news from Highbury?\n", capture_output=True, timeout=300, **kw
    )
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert len(chat.stdout.splitlines()) == 2


def test_chat_on_a_folder_that_is_not_a_model_is_one_line(tmp_path):
    cmd, kw = authorbot(tmp_path, "chat", str(tmp_path))
    chat = subprocess.run(cmd, capture_output=True, timeout=300, input="Hello\n", **kw)
    assert chat.returncode == 1
    assert chat.stderr.strip().splitlines()[-1] == (
        f"authorbot: {tmp_path}: no config.json, so not a saved model; "
        "give a local directory (save_pretrained output) or --model scratch:tiny with --tokenizer DIR"
    )
