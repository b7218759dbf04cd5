"""Download and header stripping, on the real shared mirror, served over loopback or as a folder."""

import re

import pytest
from conftest import GUTENBERG, Mirror, digit_layout_mirror

from tasks.errors import BookNotFound, DownloadError
from tasks.gutenberg import USER_AGENT, HttpPolicy, decode_text, download_book, strip_boilerplate, text_locations

FAST = HttpPolicy(delay=0, retries=3, backoff=0.05, timeout=5)
ALL_FILES = sorted(GUTENBERG.glob("cache/epub/*/pg*.txt")) + sorted(GUTENBERG.glob("variants/*.txt"))
# The first and last words of each book's own text, by file name prefix.
BOUNDS = {
    "11": ("Alice’s Adventures in Wonderland", "happy summer days."),
    "1342": ("PRIDE", "uniting them."),
    "158": ("EMMA", "perfect happiness of the union."),
    "4217": ("A Portrait of the Artist as a Young Man", "Trieste, 1914."),
    "1400": ("GREAT EXPECTATIONS", "no shadow of another parting from her."),
    "14155": ("MADAME BOVARY", "la croix d'honneur."),
    "22367": ("DIE VERWANDLUNG", "jungen Körper dehnte."),
    "844": ("THE IMPORTANCE OF BEING EARNEST", "Importance of Being Earnest."),
}


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_strip_boilerplate_leaves_only_the_book(path):
    text = strip_boilerplate(decode_text(path.read_bytes(), "utf-8", str(path)))
    book = re.match(r"(?:pg)?(\d+)", path.name).group(1)
    first, last = BOUNDS[book]
    assert "PROJECT GUTENBERG" not in text.upper()[:2000] + text.upper()[-2000:]
    assert not re.search(r"^\s*(Produced by|\*\*\*)", text)
    assert first.lower() in text[:3000].lower().replace("’", "'").replace("'", "’")
    assert last in " ".join(text[-400:].replace("_", "").split())


def test_decode_drops_bom_and_crlf():
    raw = (GUTENBERG / "cache/epub/158/pg158.txt").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    text = decode_text(raw, "utf-8", "pg158.txt")
    assert not text.startswith("\ufeff") and "\r" not in text


def test_text_locations_follow_both_layouts():
    assert [p for p, _ in text_locations(1342)] == [
        "cache/epub/1342/pg1342.txt",
        "1/3/4/1342/1342-0.txt",
        "1/3/4/1342/1342-8.txt",
        "1/3/4/1342/1342.txt",
    ]
    assert text_locations(5)[1][0] == "0/5/5-0.txt"


def test_download_from_a_directory_and_over_http_agree(mirror):
    from_dir = download_book(11, str(GUTENBERG), FAST)
    over_http = download_book(11, mirror.url, FAST)
    assert from_dir.text == over_http.text and from_dir.sha256 == over_http.sha256
    assert over_http.source_url == f"{mirror.url}/cache/epub/11/pg11.txt"
    assert mirror.user_agents == [USER_AGENT]


@pytest.mark.parametrize("suffix", ["-0", "-8", ""])
def test_digit_layout_mirror_in_each_encoding(tmp_path, suffix):
    root = digit_layout_mirror(tmp_path, {1342: suffix})
    server = Mirror(root)
    try:
        book = download_book(1342, server.url, FAST)
    finally:
        server.close()
    assert book.source_url.endswith(f"/1/3/4/1342/1342{suffix}.txt")
    assert "It is a truth universally acknowledged" in book.text
    assert server.requests["/cache/epub/1342/pg1342.txt"] == 1  # main-site path tried first


def test_503_then_200_is_retried_honouring_retry_after(mirror):
    mirror.faults["/cache/epub/11/pg11.txt"] = ["503", "429"]
    book = download_book(11, mirror.url, FAST)
    assert "Alice" in book.text and mirror.requests["/cache/epub/11/pg11.txt"] == 3


def test_dropped_connections_and_short_bodies_are_retried(mirror):
    mirror.faults["/cache/epub/11/pg11.txt"] = ["drop", "truncate", "html"]
    book = download_book(11, mirror.url, FAST)
    assert book.text.rstrip().endswith("THE END")
    assert mirror.requests["/cache/epub/11/pg11.txt"] == 4


def test_a_server_that_never_recovers_gives_one_clear_error(mirror):
    mirror.faults["/cache/epub/11/pg11.txt"] = ["503"] * 10
    url = f"{mirror.url}/cache/epub/11/pg11.txt"
    with pytest.raises(
        DownloadError,
        match=rf"^{re.escape(url)}: HTTP 503 after 4 tries; check the mirror or "
        r"try again later$",
    ):
        download_book(11, mirror.url, FAST)


def test_a_book_missing_in_every_layout_is_not_found(mirror):
    with pytest.raises(BookNotFound, match=rf"^book 105: not on mirror {re.escape(mirror.url)} in any layout; "):
        download_book(105, mirror.url, FAST)
    assert mirror.total() == 4  # each layout asked once: a 404 is not retried
