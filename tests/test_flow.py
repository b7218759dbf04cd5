"""The dataset flow end to end under a real (temporary) Prefect, over a real loopback mirror."""

import json
import logging

import pytest
from conftest import Mirror, digit_layout_mirror
from prefect.artifacts import Artifact

from flows.corpus import build_corpus
from tasks.tables import UTTERANCES, read_table


@pytest.fixture
def digit_mirror(tmp_path):
    """Pride and Prejudice (UTF-8) and Emma (ISO-8859-1) in the public-mirror layout, over HTTP."""
    server = Mirror(digit_layout_mirror(tmp_path / "mirror", {1342: "-0", 158: "-8"}))
    yield server
    server.close()


def run(server, tmp_path, **overrides):
    params = (
        dict(
            author="Jane Austen",
            mirror=server.url,
            data_dir=tmp_path / "data",
            out=tmp_path / "out",
            request_delay=0,
            http_backoff=0.01,
        )
        | overrides
    )
    return build_corpus(**params)


def test_author_to_checked_dataset_then_no_requests(prefect, tmp_path, digit_mirror, caplog):
    caplog.set_level(logging.WARNING)
    dataset = run(digit_mirror, tmp_path)
    rows = json.loads((tmp_path / "out/pairs.json").read_text("utf-8"))
    assert len(rows) > 2000 and len(rows) == dataset.report.train + dataset.report.validation
    assert {"prompt", "response", "book_id", "title", "conversation_id", "split"} <= set(rows[0])
    assert {r["title"] for r in rows} == {"Pride and Prejudice", "Emma"}
    split_of = {}
    for r in rows:  # a conversation is never split between training and validation
        assert split_of.setdefault((r["book_id"], r["conversation_id"]), r["split"]) == r["split"]
    assert set(split_of.values()) == {"train", "validation"}
    assert "could not get 6 of 8 books: 105 'Persuasion'" in caplog.text
    assert (tmp_path / "out/report.md").read_text().startswith("# Dataset jane-austen")
    for key in ("corpus-summary", "validation-report", "pair-samples"):
        assert Artifact.get(key) is not None, key
    assert "Pride and Prejudice" in Artifact.get("pair-samples").data

    digit_mirror.requests.clear()
    again = run(digit_mirror, tmp_path)
    assert digit_mirror.total() == 0
    assert again.table == dataset.table


def test_a_broken_cache_file_is_rebuilt_and_nothing_else(prefect, tmp_path, digit_mirror):
    run(digit_mirror, tmp_path)
    utterances = tmp_path / "data/02_utterances/1342.parquet"
    utterances.write_bytes(b"not parquet at all")
    (tmp_path / "data/01_raw/158.parquet").unlink()
    digit_mirror.requests.clear()
    run(digit_mirror, tmp_path)
    assert len(read_table(utterances, UTTERANCES)) > 1000
    assert digit_mirror.total() == 3  # only Emma again: pg158.txt (404), 158-0.txt (404), 158-8.txt


def test_a_changed_option_recomputes_pairs_not_downloads_or_extraction(prefect, tmp_path, digit_mirror):
    first = run(digit_mirror, tmp_path, catalog_max_age_days=0)
    extracted = (tmp_path / "data/02_utterances/1342.parquet").stat().st_mtime_ns
    digit_mirror.requests.clear()
    second = run(digit_mirror, tmp_path, max_gap=100, catalog_max_age_days=0)
    assert dict(digit_mirror.requests) == {"/cache/epub/feeds/pg_catalog.csv": 1}  # only the expired catalog
    assert (tmp_path / "data/02_utterances/1342.parquet").stat().st_mtime_ns == extracted
    assert second.report.conversations > first.report.conversations


def test_max_books_counts_books_the_mirror_has(prefect, tmp_path, digit_mirror, caplog):
    caplog.set_level(logging.WARNING)
    run(digit_mirror, tmp_path, max_books=1)
    rows = json.loads((tmp_path / "out/pairs.json").read_text("utf-8"))
    assert {r["title"] for r in rows} == {"Emma"}  # 105, 121 and 141 come first in the catalog but are missing
    assert "could not get 3 of 4 books: 105 'Persuasion', 121 'Northanger Abbey', 141 'Mansfield Park'" in caplog.text
