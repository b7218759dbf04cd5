"""Step 1a: find an author's books in Gutenberg's catalog (cache/epub/feeds/pg_catalog.csv)."""

import difflib
import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import task

from tasks.cache import PARQUET_INPUTS
from tasks.errors import CatalogError
from tasks.gutenberg import HttpPolicy, fetch
from tasks.tables import CATALOG, StoredFile, write_table

log = logging.getLogger(__name__)

CATALOG_PATH = "cache/epub/feeds/pg_catalog.csv"
COLUMNS = {"Text#": "book_id", "Type": "type", "Title": "title", "Language": "language", "Authors": "authors"}


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    book_id: int
    title: str
    authors: str
    language: str


def parse_catalog(raw: bytes, source: str) -> pd.DataFrame:
    """The catalog CSV as a CATALOG-shaped frame."""
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CatalogError(f"{source}: not a readable catalog CSV ({exc}); check the --mirror") from exc
    missing = sorted(set(COLUMNS) - set(frame.columns))
    if missing:
        raise CatalogError(f"{source}: catalog lacks columns {missing}; check the --mirror")
    frame = frame.rename(columns=COLUMNS)[list(COLUMNS.values())]
    frame["book_id"] = pd.to_numeric(frame["book_id"], errors="coerce")
    frame = frame.dropna(subset=["book_id"]).astype({"book_id": "int64"})
    if frame.empty:
        raise CatalogError(f"{source}: the catalog lists no books; check the --mirror")
    return frame


def author_names(authors: str) -> list[str]:
    """'Austen, Jane, 1775-1817; Wyllie, David [Translator]' -> ['Jane Austen'] (roles left out)."""
    names = []
    for person in authors.split(";"):
        if "[" in person:  # translators, editors, illustrators: not the author
            continue
        parts = [p.strip() for p in person.split(",") if p.strip() and not re.search(r"\d", p)]
        if parts:
            names.append(" ".join(parts[1:] + parts[:1]))
    return names


def _tokens(name: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.findall(r"[a-z0-9]+", plain)


def match_author(catalog: pd.DataFrame, query: str) -> str:
    """The one catalog author whose name holds every word of the query (any order, case, accent)."""
    wanted = set(_tokens(query))
    everyone = sorted({name for authors in catalog["authors"] for name in author_names(authors)})
    found = [name for name in everyone if wanted and wanted <= set(_tokens(name))]
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(repr(n) for n in found[:10])
        raise CatalogError(f"author {query!r} matches {len(found)} authors: {listed}; give the full name")
    by_key = {" ".join(_tokens(n)): n for n in everyone}
    close = difflib.get_close_matches(" ".join(_tokens(query)), list(by_key), n=5, cutoff=0.5)
    hint = f"closest: {', '.join(repr(by_key[c]) for c in close)}" if close else "check the spelling"
    raise CatalogError(f"author {query!r} is not in the catalog; {hint}")


def select_books(catalog: pd.DataFrame, author: str, language: str, books: tuple[int, ...] = ()) -> list[CatalogEntry]:
    """The author's texts in the language (one edition per title), then the asked-for ids."""
    chosen: list[CatalogEntry] = []
    if author.strip():
        name = match_author(catalog, author)
        theirs = catalog[catalog["authors"].map(lambda a: name in author_names(a)) & (catalog["type"] == "Text")]
        in_language = theirs[theirs["language"].str.split("; ").map(lambda langs: language in langs)]
        if in_language.empty:
            others = sorted(set(theirs["language"])) or ["none"]
            raise CatalogError(
                f"author {name!r} has no texts in language {language!r} (has: {', '.join(others)}); use --language"
            )
        titles: set[str] = set()
        for row in in_language.sort_values("book_id").itertuples():
            key = " ".join(_tokens(row.title))
            if key not in titles:  # later ids of a title are usually other editions
                titles.add(key)
                chosen.append(CatalogEntry(row.book_id, row.title, row.authors, row.language))
    by_id = catalog.set_index("book_id")
    for book_id in books:
        if book_id not in {c.book_id for c in chosen}:
            row = by_id.loc[book_id] if book_id in by_id.index else None
            chosen.append(
                CatalogEntry(
                    book_id, *(("", "", "") if row is None else (row["title"], row["authors"], row["language"]))
                )
            )
    return chosen


def fetch_catalog(mirror: str, http: HttpPolicy = HttpPolicy()) -> pd.DataFrame:
    """The mirror's catalog, parsed."""
    raw = fetch(mirror, CATALOG_PATH, http)
    if raw is None:
        raise CatalogError(
            f"{mirror.rstrip('/')}/{CATALOG_PATH}: no catalog on this mirror; "
            "use --book ID, or a mirror that has the catalog"
        )
    return parse_catalog(raw, f"{mirror.rstrip('/')}/{CATALOG_PATH}")


@task(name="fetch-catalog", cache_policy=PARQUET_INPUTS, persist_result=True)
def fetch_catalog_task(mirror: str, http: HttpPolicy, raw_dir: Path) -> StoredFile:
    """01_raw/catalog.parquet (CATALOG); the flow sets cache_expiration to the allowed age."""
    catalog = fetch_catalog(mirror, http)
    log.info("catalog: %d entries from %s", len(catalog), mirror)
    return write_table(catalog, raw_dir / "catalog.parquet", CATALOG)
