"""Fault matrix, network rows not already in tests/test_gutenberg.py and tests/test_catalog.py:
a real HTTP server on 127.0.0.1 that refuses, resets and stalls on purpose."""

import re
import socket

import pytest

from tasks.errors import DownloadError
from tasks.gutenberg import HttpPolicy, download_book

FAST = HttpPolicy(delay=0, retries=3, backoff=0.01, timeout=0.5)


def closed_port_url() -> str:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_connection_refused_is_retried_then_one_error_naming_the_url():
    url = closed_port_url()
    with pytest.raises(
        DownloadError, match=rf"^{re.escape(url)}/cache/epub/11/pg11.txt: ConnectionError after 4 tries"
    ):
        download_book(11, url, FAST)


def test_refused_then_reset_then_slow_then_served(mirror):
    # A reset mid-body ("truncate" closes after part of the promised length), a stall longer
    # than the read timeout, then the book: each failure is retried with backoff.
    mirror.faults["/cache/epub/11/pg11.txt"] = ["drop", "truncate", "slow"]
    book = download_book(11, mirror.url, FAST)
    assert book.text.rstrip().endswith("THE END") and mirror.requests["/cache/epub/11/pg11.txt"] == 4


def test_a_server_that_stays_slow_gives_one_clear_error(mirror):
    mirror.faults["/cache/epub/11/pg11.txt"] = ["slow"] * 4
    url = f"{mirror.url}/cache/epub/11/pg11.txt"
    with pytest.raises(DownloadError, match=rf"^{re.escape(url)}: ReadTimeout after 4 tries; check the mirror"):
        download_book(11, mirror.url, FAST)
