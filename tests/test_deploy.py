"""authorbot as a Prefect project, the way the README runs it: a real Prefect server on 127.0.0.1,
`prefect deploy --all` from prefect.yaml, a process worker, and a deployment run with parameters
over a loopback mirror, checked through the server's REST API."""

import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import PREFECT, SHARED, stop

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def prefect(env: dict, *args: str) -> str:
    done = subprocess.run([PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def api_filter(api: str, what: str, body: dict) -> list[dict]:
    return requests.post(f"{api}/{what}/filter", json=body, timeout=10).json()


def test_scheduled_deployment_runs_on_a_worker_with_named_tasks_and_artifacts(prefect_server, mirror, tmp_path):
    server = prefect_server
    api = server["PREFECT_API_URL"]
    prefect(server, "work-pool", "create", "authorbot-local", "--type", "process")
    prefect(server, "--no-prompt", "deploy", "--all")

    deployment = requests.get(f"{api}/deployments/name/finetune/retrain", timeout=10).json()
    scheduled = {s["parameters"]["author"]: s["schedule"]["cron"] for s in deployment["schedules"]}
    assert scheduled == {"Jane Austen": "0 3 * * 1", "Charles Dickens": "0 3 1 * *"}
    assert deployment["global_concurrency_limit"]["limit"] == 1
    schema = deployment["parameter_openapi_schema"]["properties"]
    assert schema["epochs"]["type"] == "integer" and schema["mirror"]["default"] == "https://www.gutenberg.org"

    worker_log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "authorbot-local"],
        env=server,
        cwd=tmp_path,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        params = {
            "author": "Jane Austen",
            "mirror": mirror.url,
            "max_books": "1",
            "request_delay": "0",
            "model": "scratch:tiny",
            "tokenizer": str(SHARED / "gpt2-tokenizer"),
            "epochs": "2",
            "prose_epochs": "0",  # (the kill test runs a scratch model's default prose epoch; here, its time)
            "max_pairs": "60",
            "max_new_tokens": "8",
            "max_responses": "30",
            "ranked": "10",
            "samples": "3",
            "data_dir": str(tmp_path / "data"),
            "out": str(tmp_path / "out"),
        }
        started = prefect(
            server, "deployment", "run", "finetune/retrain", *[f"--param={k}={v}" for k, v in params.items()]
        )
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", started).group(1)
        deadline = time.monotonic() + 420
        while (run := requests.get(f"{api}/flow_runs/{run_id}", timeout=10).json())["state_type"] not in (
            "COMPLETED",
            "FAILED",
            "CRASHED",
            "CANCELLED",
        ):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(2)
    finally:
        stop(worker)
        worker_log.close()
    assert run["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()[-3000:]
    assert run["name"] == "finetune-jane-austen"

    task_runs = api_filter(api, "task_runs", {"flow_runs": {"id": {"any_": [run_id]}}})
    names = {t["name"] for t in task_runs}
    assert {"download-158-Emma", "extract-158-Emma", "pair-158"} <= names  # 105, 121, 141 are missing there
    assert any(n.startswith("train-model") for n in names) and any(n.startswith("write-transcript") for n in names)
    assert all("jane-austen" in t["tags"] for t in task_runs)

    artifacts = api_filter(api, "artifacts", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    keys = {a["key"] for a in artifacts}
    assert {
        "corpus-summary",
        "pair-samples",
        "validation-report",
        "training-metrics",
        "loss-curve",
        "transcript",
        "evaluation",
    } <= keys
    progress = [a for a in artifacts if a["type"] == "progress"]
    assert progress and progress[0]["data"] == 100.0
    assert "data:image/png;base64," in next(a["data"] for a in artifacts if a["key"] == "loss-curve")

    logs = " ".join(
        entry["message"] for entry in api_filter(api, "logs", {"logs": {"flow_run_id": {"any_": [run_id]}}})
    )
    assert "1 of 8 catalogued books to fetch" in logs
    assert "epoch 1 (dialogue): train loss" in logs and "epoch 2 (dialogue): train loss" in logs
    assert "(prose)" not in logs  # the parameter reached the training through the deployment
    assert (tmp_path / "out/model/tf_model.h5").is_file()
