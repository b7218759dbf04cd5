"""Step 1b: download a book's plain text from a Gutenberg mirror, politely, and strip the boilerplate.

A mirror is an http(s) base URL (the main site by default) or a local directory in one of
Gutenberg's layouts. Requests go one at a time, with a pause between requests to a remote
host, a User-Agent naming the project, and retries with exponential backoff on connection
errors, 429 and 5xx (Retry-After is honoured).
"""

import hashlib
import ipaddress
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from prefect import task

from tasks.cache import PARQUET_INPUTS
from tasks.config import CorpusConfig
from tasks.errors import BookNotFound, DownloadError, InvalidDataError
from tasks.tables import BOOKS, StoredFile, write_table

log = logging.getLogger(__name__)

USER_AGENT = "authorbot/0.1 (dialogue datasets from Project Gutenberg; python-requests)"
RETRY_STATUS = {429, 500, 502, 503, 504}
MISSING_STATUS = {404, 410}
MAX_RETRY_AFTER = 600.0  # seconds; a longer Retry-After is treated as this

START = re.compile(
    r"^[ \t]*\*{3}[ \t]*START OF (?:THE |THIS )?PROJECT GUTENBERG E-?(?:BOOK|TEXT)[^*]{0,300}\*{3}[^\n]*$"
    r"|^\*END\*THE SMALL PRINT[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
END = re.compile(
    r"^[ \t]*\*{3}[ \t]*END OF (?:THE |THIS )?PROJECT GUTENBERG"
    r"|^[ \t]*End of (?:the )?Project Gutenberg",
    re.IGNORECASE | re.MULTILINE,
)
CREDITS = re.compile(
    r"\A\s*(?:Produced by|E-?text prepared by|Transcribed (?:from|by)|This e-?(?:book|text) was)"
    r".*?(?:\n[ \t]*\n|\Z)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    delay: float = CorpusConfig.request_delay  # seconds between requests to one remote host
    retries: int = CorpusConfig.http_retries
    backoff: float = CorpusConfig.http_backoff
    timeout: float = CorpusConfig.http_timeout


@dataclass(frozen=True, slots=True)
class Book:
    book_id: int
    title: str
    authors: str
    language: str
    source_url: str
    sha256: str
    text: str


# Paths of a book's text on a mirror, most preferred first, with the encoding each layout uses.
def text_locations(book_id: int) -> list[tuple[str, str]]:
    """The main-site path, then the digit-directory layout of public mirrors."""
    digits = "/".join(str(book_id)[:-1]) or "0"
    folder = f"{digits}/{book_id}"
    return [
        (f"cache/epub/{book_id}/pg{book_id}.txt", "utf-8"),
        (f"{folder}/{book_id}-0.txt", "utf-8"),
        (f"{folder}/{book_id}-8.txt", "iso-8859-1"),
        (f"{folder}/{book_id}.txt", "ascii"),
    ]


_last_request: dict[str, float] = {}
_one_at_a_time = threading.Lock()
_session = requests.Session()
_session.headers["User-Agent"] = USER_AGENT


def fetch(mirror: str, path: str, http: HttpPolicy = HttpPolicy()) -> bytes | None:
    """The bytes at mirror/path, or None if the mirror has no such file (404, or no such file)."""
    if not mirror.startswith(("http://", "https://")):
        file = Path(mirror) / path
        return file.read_bytes() if file.is_file() else None
    url = f"{mirror.rstrip('/')}/{path}"
    with _one_at_a_time:
        return _get_with_retries(url, http)


def _get_with_retries(url: str, http: HttpPolicy) -> bytes | None:
    problem = ""
    for attempt in range(http.retries + 1):
        _pause_for(url, http.delay)
        wait = http.backoff * 2**attempt
        try:
            response = _session.get(url, timeout=http.timeout)
            body = response.content  # a body cut short raises here
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}"
        else:
            if response.status_code in MISSING_STATUS:
                return None
            if response.status_code in RETRY_STATUS:
                problem = f"HTTP {response.status_code}"
                wait = _retry_after(response) or wait
            elif response.status_code >= 400:
                raise DownloadError(f"{url}: HTTP {response.status_code}; check the --mirror URL")
            elif _looks_like_html(response, body):
                problem = "an HTML page instead of plain text"
            else:
                return body
        if attempt < http.retries:
            log.warning("%s: %s; retrying in %.1f s (%d of %d)", url, problem, wait, attempt + 1, http.retries)
            time.sleep(wait)
    raise DownloadError(f"{url}: {problem} after {http.retries + 1} tries; check the mirror or try again later")


def _pause_for(url: str, delay: float) -> None:
    """Sleep so that requests to one remote host are at least `delay` seconds apart."""
    host = urlsplit(url).hostname or ""
    if delay <= 0 or _is_loopback(host):
        return
    wait = _last_request.get(host, 0.0) + delay - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    _last_request[host] = time.monotonic()


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER) if value.strip().isdigit() else None


def _looks_like_html(response: requests.Response, body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return "text/html" in response.headers.get("Content-Type", "") or head.startswith((b"<!doctype html", b"<html"))


def decode_text(raw: bytes, encoding: str, source: str) -> str:
    """Text with LF line ends: UTF-8 (a BOM is dropped), else the layout's 8-bit encoding."""
    if b"\x00" in raw[:65536]:
        raise InvalidDataError(f"{source}: binary data, not a plain-text book; check the book id or file")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Older files labelled ASCII or UTF-8 are often Windows-1252; ISO-8859-1 decodes anything.
        text = raw.decode("iso-8859-1" if encoding == "iso-8859-1" else "cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_boilerplate(text: str) -> str:
    """The book without Gutenberg's header, footer and "Produced by" credits (any generation)."""
    start = START.search(text)
    body = text[start.end() :] if start else text
    end = END.search(body)
    if end:
        body = body[: end.start()]
    body = CREDITS.sub("", body, count=1)
    return body.strip("\n ").rstrip() + "\n"


def download_book(book_id: int, mirror: str, http: HttpPolicy = HttpPolicy(), **meta: str) -> Book:
    """The book's text from the first layout the mirror has; BookNotFound if it has none."""
    for path, encoding in text_locations(book_id):
        raw = fetch(mirror, path, http)
        if raw is None:
            continue
        source = f"{mirror.rstrip('/')}/{path}"
        text = strip_boilerplate(decode_text(raw, encoding, source))
        if len(text.split()) < 50:
            raise InvalidDataError(f"book {book_id}: {source} holds almost no text; check the book id")
        digest = hashlib.sha256(raw).hexdigest()
        log.info("book %d: %s, %d characters", book_id, source, len(text))
        return Book(
            book_id, meta.get("title", ""), meta.get("authors", ""), meta.get("language", ""), source, digest, text
        )
    raise BookNotFound(f"book {book_id}: not on mirror {mirror} in any layout; check the id or try another mirror")


@task(
    name="download-book",
    task_run_name="download-{book_id}-{title}",
    cache_policy=PARQUET_INPUTS,
    persist_result=True,  # no task retries: fetch() already retries each request with backoff
)
def download_book_task(
    book_id: int, mirror: str, http: HttpPolicy, raw_dir: Path, title: str = "", authors: str = "", language: str = ""
) -> StoredFile | None:
    """01_raw/<book_id>.parquet (BOOKS), or None when the mirror does not have the book."""
    try:
        book = download_book(book_id, mirror, http, title=title, authors=authors, language=language)
    except BookNotFound as exc:
        log.warning("%s", exc)
        return None  # cached too, so a second run asks the mirror nothing
    return write_table([book], raw_dir / f"{book_id}.parquet", BOOKS)
