"""Fault matrix, two runs of one author at once: the second waits for the first (a lock file the
OS releases even after kill -9), and neither corrupts the caches or outputs."""

import json
import os
import subprocess
import sys
import time

from conftest import GUTENBERG

from tasks.cache import dataset_lock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_dataset(env: dict, tmp_path, out: str, log: str) -> subprocess.Popen:
    args = ["dataset", "--book", "1342", "--mirror", str(GUTENBERG), "--data-dir", str(tmp_path / "data")]
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args, "--out", str(tmp_path / out)],
        env=env | {"PYTHONPATH": ROOT},
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / log, "w"),
    )


def test_a_second_run_waits_for_the_lock_then_completes(tmp_path, prefect_server):
    with dataset_lock(tmp_path / "data", "books-1342"):  # as a run of the same books would hold it
        run = start_dataset(prefect_server, tmp_path, "out", "run.log")
        deadline = time.monotonic() + 120
        while "waiting for it to finish" not in (tmp_path / "run.log").read_text():
            assert run.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.2)
        time.sleep(1)
        assert run.poll() is None and not (tmp_path / "out/pairs.json").exists()
    assert run.wait(timeout=120) == 0
    assert len(json.loads((tmp_path / "out/pairs.json").read_text())) > 1000


def test_two_runs_at_once_both_complete_with_the_same_dataset(tmp_path, prefect_server):
    runs = [start_dataset(prefect_server, tmp_path, f"out{i}", f"run{i}.log") for i in (1, 2)]
    assert [r.wait(timeout=300) for r in runs] == [0, 0]
    first, second = ((tmp_path / f"out{i}/pairs.json").read_text() for i in (1, 2))
    assert first == second and len(json.loads(first)) > 1000
    logs = [(tmp_path / f"run{i}.log").read_text() for i in (1, 2)]
    assert sum("waiting for it to finish" in log for log in logs) <= 1
