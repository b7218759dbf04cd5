"""Finding an author's books in the real (subset) Gutenberg catalog."""

import re

import pytest
from conftest import GUTENBERG

from tasks.catalog import author_names, fetch_catalog, match_author, parse_catalog, select_books
from tasks.errors import CatalogError

CSV = (GUTENBERG / "cache/epub/feeds/pg_catalog.csv").read_bytes()
CATALOG = parse_catalog(CSV, "pg_catalog.csv")


@pytest.mark.parametrize("typed", ["Jane Austen", "Austen, Jane", "austen", "JANE AUSTEN", "Jàne Austén"])
def test_author_matches_the_way_people_type_names(typed):
    assert match_author(CATALOG, typed) == "Jane Austen"


def test_translators_are_not_authors():
    assert author_names("Kafka, Franz, 1883-1924; Wyllie, David [Translator]") == ["Franz Kafka"]
    with pytest.raises(CatalogError, match=r"^author 'Wyllie' is not in the catalog"):
        match_author(CATALOG, "Wyllie")


def test_several_authors_are_listed():
    catalog = parse_catalog(CSV + b'432,Text,,The Turn of the Screw,en,"James, Henry, 1843-1916",,PS,\n', "x")
    with pytest.raises(
        CatalogError,
        match=r"^author 'james' matches 2 authors: 'Henry James', 'James Joyce'; "
        r"give the full name$",
    ):
        match_author(catalog, "james")


def test_unknown_author_suggests_the_closest_names():
    with pytest.raises(CatalogError, match=r"^author 'Jane Austin' is not in the catalog; closest: 'Jane Austen'"):
        match_author(CATALOG, "Jane Austin")


def test_select_books_keeps_texts_in_the_language():
    assert [b.book_id for b in select_books(CATALOG, "Franz Kafka", "en")] == [5200]
    assert [b.book_id for b in select_books(CATALOG, "Franz Kafka", "de")] == [22367]
    with pytest.raises(CatalogError, match=r"^author 'Gustave Flaubert' has no texts in language 'en' \(has: fr\)"):
        select_books(CATALOG, "flaubert", "en")


def test_book_ids():
    austen = select_books(CATALOG, "Jane Austen", "en")
    assert len(austen) == 8 and [b.book_id for b in austen] == sorted(b.book_id for b in austen)
    chosen = select_books(CATALOG, "", "en", books=(11, 99999))
    assert [(b.book_id, b.title) for b in chosen] == [(11, "Alice's Adventures in Wonderland"), (99999, "")]


def test_catalog_from_a_mirror_without_one(tmp_path):
    with pytest.raises(
        CatalogError,
        match=rf"^{re.escape(str(tmp_path))}/cache/epub/feeds/pg_catalog.csv: "
        r"no catalog on this mirror; ",
    ):
        fetch_catalog(str(tmp_path))


def test_malformed_catalog_is_one_clear_error():
    with pytest.raises(CatalogError, match=r"^x: catalog lacks columns \['Authors', 'Language'"):
        parse_catalog(b"Text#,Type,Title\n1,Text,Foo\n", "x")
