"""The Prefect server that `authorbot server start` keeps in the background for later commands.

Without one, every command that runs a flow starts Prefect's temporary server and waits for it
(15 to 20 s on a 2-core machine, the first time more). `authorbot server start` starts a real
`prefect server start` on 127.0.0.1, detached, and records it in $PREFECT_HOME/authorbot-server.json;
later commands find it there (unless PREFECT_API_URL already names a server) and skip that wait.
`authorbot server stop` stops it. Its UI is the one the README describes.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tasks.errors import AuthorbotError

START_TIMEOUT = 180  # seconds a server may take to come up on a slow or busy machine
PREFERRED_PORT = 4200  # Prefect's own default, so the UI is where Prefect's docs say


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def _state_path() -> Path:
    return prefect_home() / "authorbot-server.json"


def _healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return requests.get(f"{api_url}/health", timeout=timeout).ok
    except requests.RequestException:
        return False


def _record() -> dict | None:
    """The recorded background server, if its process is still there (a stale record is removed)."""
    state = _state_path()
    try:
        record = json.loads(state.read_text("utf-8"))
        if b"prefect" in Path(f"/proc/{record['pid']}/cmdline").read_bytes():
            return record
    except (OSError, ValueError, KeyError):
        pass
    state.unlink(missing_ok=True)  # gone (its pid may belong to something else now)
    return None


def running_server() -> str | None:
    """The API URL of the background server, if it is up."""
    record = _record()
    return record["api_url"] if record and _healthy(record["api_url"]) else None


def _free_port() -> int:
    for port in (PREFERRED_PORT, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise AuthorbotError("no free port on 127.0.0.1 for a Prefect server; stop something listening there")


def start_server() -> str:
    """Start the background server, or wait for the one starting or running; its API URL."""
    if record := _record():
        return _wait_until_up(record, prefect_home() / "authorbot-server.log")
    home, port = prefect_home(), _free_port()
    home.mkdir(parents=True, exist_ok=True)
    prefect = Path(sys.executable).with_name("prefect")
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    env.pop("AUTHORBOT_CLI_PID", None)  # not a temporary server of this command's, to stop when it is gone
    log_path = home / "authorbot-server.log"
    process = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # lives on after this command, and Ctrl-C here does not reach it
    )
    record = {"pid": process.pid, "api_url": f"http://127.0.0.1:{port}/api"}
    _state_path().write_text(json.dumps(record), "utf-8")  # at once: a killed start is found and stopped later
    return _wait_until_up(record, log_path)


def _wait_until_up(record: dict, log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while not _healthy(record["api_url"]):
        if not _record() or time.monotonic() > deadline:
            stop_server()
            raise AuthorbotError(
                f"the Prefect server did not start within {START_TIMEOUT} s (see {log_path}); "
                "try `prefect server start` yourself and set PREFECT_API_URL"
            )
        time.sleep(0.5)
    return record["api_url"]


def stop_server() -> bool:
    """Stop the background server; False when none was running."""
    record = _record()
    if record is None:
        return False
    _state_path().unlink(missing_ok=True)
    try:
        os.killpg(record["pid"], signal.SIGINT)  # its whole session: the CLI and the uvicorn it runs
        for _ in range(100):
            os.kill(record["pid"], 0)
            time.sleep(0.1)
        os.killpg(record["pid"], signal.SIGKILL)
    except OSError:  # gone
        pass
    return True


def prefect_environment() -> None:
    """Settings that must be in place before Prefect is imported; the background server, when one runs."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "tasks,flows")  # our loggers reach the UI
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # nor Prefect's client telemetry (and its notice on a first run)
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # plain functions log too
    # Prefect gives its temporary server 20 s, which a first start on a busy 2-core machine overruns
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(START_TIMEOUT))
    os.environ["AUTHORBOT_CLI_PID"] = str(os.getpid())  # inherited by the temporary Prefect server
    if not os.environ.get("PREFECT_API_URL") and (url := running_server()):
        os.environ["PREFECT_API_URL"] = url
    logging.getLogger("prefect").addFilter(_temporary_server_lines)


def keep_server() -> None:
    """Before a flow's first import: when no server is set or kept, start the background server for this
    command and later ones, saying so (a temporary server stands in if it cannot start)."""
    if os.environ.get("PREFECT_API_URL"):
        return
    print(
        "authorbot: starting a Prefect server in the background for this and later commands "
        "(about 15 s, once; `authorbot server stop` stops it, --no-keep-server does without)",
        file=sys.stderr,
    )
    try:
        os.environ["PREFECT_API_URL"] = start_server()
    except AuthorbotError as exc:
        print(f"authorbot: {exc}; using a temporary server instead", file=sys.stderr)


def _temporary_server_lines(record: logging.LogRecord) -> bool:
    """Prefect's lines about its temporary server: the start said in our words, with what saves the wait;
    the stop not at all (it would come after an error, which must be the last line)."""
    message = str(record.msg)
    if message.startswith("Stopping temporary server"):
        return False
    if message.startswith("Starting temporary server"):
        record.msg = "starting Prefect's temporary server (`authorbot server start` keeps one for later commands)"
        record.args = ()
    return True


@contextmanager
def prefect_output() -> Iterator[None]:
    """Around a flow run from the CLI: one of our errors is said once, by the CLI's last line (Prefect's
    run logs keep it for the UI, without a traceback, but not on the terminal), and a temporary server
    that never answered is one line saying what to do."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_known_errors)
    for handler in logging.getLogger().handlers:  # Prefect's console handler
        if isinstance(handler, logging.StreamHandler):
            handler.addFilter(lambda record: not getattr(record, "authorbot_error", False))
    try:
        yield
    except RuntimeError as exc:
        if "ephemeral Prefect API server" not in str(exc):
            raise
        seconds = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", START_TIMEOUT)
        raise AuthorbotError(
            f"Prefect's temporary server did not answer within {seconds} s (a slow or busy machine?); "
            "start one with `authorbot server start` (or `prefect server start` and set PREFECT_API_URL), "
            "then run the same command again"
        ) from None


def _known_errors(record: logging.LogRecord) -> bool:
    """Marks the log of a run that failed with one of our errors, and drops its traceback."""
    if record.exc_info and isinstance(record.exc_info[1], AuthorbotError):
        record.exc_info, record.exc_text = None, None
        record.authorbot_error = True
    return True


def stop_orphaned_servers() -> None:
    """Stop temporary Prefect servers whose authorbot was killed with SIGKILL: Prefect starts one
    per run as a child process, and nothing else would ever stop it. Only servers that inherited
    AUTHORBOT_CLI_PID from an authorbot that no longer exists are touched (Linux /proc)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"prefect.server.api.server" not in (proc / "cmdline").read_bytes():
                continue
            env = dict(v.split(b"=", 1) for v in (proc / "environ").read_bytes().split(b"\0") if b"=" in v)
            parent = int(env.get(b"AUTHORBOT_CLI_PID", b"0"))
            if parent and not Path(f"/proc/{parent}").exists():
                os.kill(int(proc.name), signal.SIGTERM)
                print(f"authorbot: stopped a Prefect server left by a killed run (pid {proc.name})", file=sys.stderr)
        except (OSError, ValueError):  # gone meanwhile, or not ours to read
            continue
