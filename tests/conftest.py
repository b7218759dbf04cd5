"""Shared fixtures: the shared corpus, a real HTTP mirror on loopback, a temporary Prefect."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import requests

SHARED = Path(__file__).resolve().parents[2] / "shared"
GUTENBERG = SHARED / "gutenberg"
PDNC = SHARED / "pdnc"
TOKENIZER = str(SHARED / "gpt2-tokenizer")
ROOT = Path(__file__).resolve().parents[1]
API_KEY, ORIGIN = "s3cret", "http://localhost:3000"  # of the session's `authorbot serve`
ENDLESS = {"50256": -100}  # logit_bias that bans the end of turn: a reply runs to max_tokens

# Prefect keeps results under PREFECT_HOME even inside its test harness: keep ours out of ~/.prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="authorbot-prefect-")
atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)  # one a session, gone after it
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is out of reach here: fail in a second, not minutes
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "tasks,flows")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # plain functions log outside runs


class MirrorHandler(SimpleHTTPRequestHandler):
    """Serves a folder; `faults` maps a path to what to do on its next requests, one entry each:
    an HTTP status ("503"), "drop" (close without answering), "truncate" (short body), "html",
    "slow" (1.5 s before answering)."""

    faults: dict[str, list[str]]
    requests: Counter
    user_agents: list[str]

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        self.requests[path] += 1
        self.user_agents.append(self.headers.get("User-Agent", ""))
        fault = self.faults.get(path, [None]).pop(0) if self.faults.get(path) else None
        if fault == "drop":
            self.close_connection = True
            self.connection.close()
        elif fault == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"The Project Gutenberg eBook, cut short")
            self.close_connection = True
        elif fault == "slow":  # answers, but only after the client's read timeout
            time.sleep(1.5)
            super().do_GET()
        elif fault == "html":
            body = b"<!DOCTYPE html><html><body>Service busy</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif fault:
            self.send_response(int(fault))
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            super().do_GET()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


class Mirror:
    """A running loopback server over a folder, with its request log."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: Counter = Counter()
        self.faults: dict[str, list[str]] = {}
        self.user_agents: list[str] = []
        handler = type(
            "Handler",
            (MirrorHandler,),
            {"faults": self.faults, "requests": self.requests, "user_agents": self.user_agents},
        )
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def total(self) -> int:
        return sum(self.requests.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def digit_layout_mirror(root: Path, ids_and_encodings: dict[int, str]) -> Path:
    """A copy of the shared mirror in the public-mirror layout (1/3/4/1342/1342-0.txt), plus the catalog."""
    feeds = root / "cache/epub/feeds"
    feeds.mkdir(parents=True)
    shutil.copy(GUTENBERG / "cache/epub/feeds/pg_catalog.csv", feeds)
    for book_id, suffix in ids_and_encodings.items():
        text = (GUTENBERG / f"cache/epub/{book_id}/pg{book_id}.txt").read_text("utf-8-sig")
        folder = root / "/".join(str(book_id)[:-1] or "0") / str(book_id)
        folder.mkdir(parents=True)
        encoding = {"-0": "utf-8", "-8": "iso-8859-1", "": "ascii"}[suffix]
        if suffix:  # 8-bit editions print straight quotes, as Gutenberg's older files do
            text = text.translate(str.maketrans("“”‘’—", "\"\"''-"))
        (folder / f"{book_id}{suffix}.txt").write_bytes(text.encode(encoding, errors="replace"))
    return root


@pytest.fixture
def mirror():
    """The shared Gutenberg mirror served over HTTP on 127.0.0.1."""
    server = Mirror(GUTENBERG)
    yield server
    server.close()


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """Pride and Prejudice's checked pairs as a DATASET table, built by the plain functions."""
    import dataclasses

    import pandas as pd

    from tasks.dialogue import extract_utterances
    from tasks.gutenberg import decode_text, strip_boilerplate
    from tasks.pairing import pair_utterances
    from tasks.tables import DATASET, write_table
    from tasks.validate import validate_pairs

    raw = (GUTENBERG / "cache/epub/1342/pg1342.txt").read_bytes()
    pairs = pair_utterances(extract_utterances(strip_boilerplate(decode_text(raw, "utf-8", "pg1342")), 1342))
    frame = pd.DataFrame([dataclasses.asdict(p) for p in pairs])
    data, _ = validate_pairs(frame, {1342: "Pride and Prejudice"}, 0.1, 0, 50)
    path = tmp_path_factory.mktemp("dataset") / "books-1342.parquet"
    write_table(data, path, DATASET)
    return path


@pytest.fixture(scope="session")
def tiny_model(dataset, tmp_path_factory) -> Path:
    """A scratch:tiny bot after one epoch on 300 of Pride and Prejudice's pairs: its model folder."""
    from tasks.config import TrainConfig
    from tasks.train import train_model

    cfg = TrainConfig(model="scratch:tiny", tokenizer=TOKENIZER, epochs=1, max_pairs=300, prose_epochs=0)
    return train_model(dataset, cfg, tmp_path_factory.mktemp("tiny-run") / "austen")


@pytest.fixture(scope="session")
def prefect():
    """A temporary Prefect server and database for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """SIGINT to the process group (the worker ignores SIGTERM), then SIGKILL if it lingers."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real Prefect server on 127.0.0.1 with its own PREFECT_HOME, for the whole session (one start
    instead of one per command); yields the environment (for subprocesses) that talks to it."""
    tmp_path = tmp_path_factory.mktemp("prefect-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{api}/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
        time.sleep(0.5)
    yield env | {"PREFECT_API_URL": api}
    stop(process)
    log.close()


class Server:
    """`authorbot serve MODEL` in a subprocess, with its log."""

    def __init__(self, model_dir: Path, log_path: Path, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [sys.executable, "-m", "flows.cli", "serve", str(model_dir), "--port", str(self.port), *args]
        environment = {"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)} | (env or {})
        self.process = subprocess.Popen(
            cmd, env=environment, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.statuses = self.wait_ready()

    def wait_ready(self) -> list[int]:
        """The /health statuses seen until it answered 200."""
        seen, deadline = [], time.monotonic() + 180
        while not seen or seen[-1] != 200:
            assert self.process.poll() is None and time.monotonic() < deadline, self.log()
            try:
                seen.append(httpx.get(f"{self.url}/health", timeout=5).status_code)
            except httpx.TransportError:
                time.sleep(0.2)
        return seen

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health").json()

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def server(tiny_model, tmp_path_factory):
    """`authorbot serve` on the tiny bot for the whole session, as someone shares it with friends:
    on every address, with an API key and one origin allowed."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    running = Server(tiny_model, log, "--host", "0.0.0.0", "--cors", ORIGIN, env={"AUTHORBOT_API_KEY": API_KEY})
    yield running
    running.stop()
