"""The dataset flow: an author's name (or book ids) in, a checked dialogue dataset out.

find books -> download -> extract utterances, the cast and who speaks -> pair -> validate and export.
Every step writes Parquet under data_dir and is cached by its real inputs and code, so a run
repeated, or restarted after a failure, fetches and recomputes nothing it already has.
"""

import logging
from datetime import timedelta
from pathlib import Path

from prefect import flow, tags
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from tasks.cache import dataset_lock, run_intact
from tasks.catalog import fetch_catalog_task, select_books
from tasks.config import CorpusConfig, config_from, dataset_name
from tasks.dialogue import extract_dialogue_task
from tasks.errors import DownloadError, ExtractionError, InvalidDataError
from tasks.gutenberg import HttpPolicy, download_book_task
from tasks.pairing import pair_utterances_task
from tasks.tables import CATALOG, DATASET, read_table
from tasks.validate import CheckedDataset, export_dataset, report_markdown, sample_markdown, validate_pairs_task

log = logging.getLogger(__name__)
C = CorpusConfig  # the defaults below are CorpusConfig's, so the flow and the CLI agree


def _run_name() -> str:
    return "corpus-" + dataset_name(flow_run.parameters.get("author", ""), flow_run.parameters.get("book", []))


@flow(name="build-corpus", flow_run_name=_run_name)
def build_corpus(
    author: str = C.author,
    book: list[int] = [],  # noqa: B006 (Prefect shows a list field; never mutated)
    mirror: str = C.mirror,
    language: str = C.language,
    max_books: int = C.max_books,
    data_dir: Path = C.data_dir,
    out: Path | None = C.out,
    catalog_max_age_days: float = C.catalog_max_age_days,
    request_delay: float = C.request_delay,
    http_retries: int = C.http_retries,
    http_backoff: float = C.http_backoff,
    http_timeout: float = C.http_timeout,
    max_gap: int = C.max_gap,
    val_fraction: float = C.val_fraction,
    val_books: list[int] = [],  # noqa: B006
    min_pairs: int = C.min_pairs,
    seed: int = C.seed,
) -> CheckedDataset:
    """Build, check and export the dialogue dataset of an author or of some books."""
    cfg = config_from(
        CorpusConfig, dict(locals()), book=tuple(book), val_books=tuple(val_books), data_dir=Path(data_dir).resolve()
    )
    with dataset_lock(cfg.data_dir, cfg.name), tags(cfg.name):
        return build_dataset(cfg)


def build_dataset(cfg: CorpusConfig) -> CheckedDataset:
    """The flow's body, for callers that already hold a CorpusConfig (the training flow)."""
    http = HttpPolicy(cfg.request_delay, cfg.http_retries, cfg.http_backoff, cfg.http_timeout)
    raw_dir = cfg.data_dir / "01_raw"

    # 1. Find the books in the catalog.
    max_age = timedelta(days=cfg.catalog_max_age_days)  # Prefect reads a zero expiration as "never": refresh
    fetch_catalog = fetch_catalog_task.with_options(cache_expiration=max_age, refresh_cache=not max_age or None)
    catalog = run_intact(fetch_catalog, mirror=cfg.mirror, http=http, raw_dir=raw_dir)
    entries = select_books(read_table(catalog.path, CATALOG), cfg.author, cfg.language, cfg.book)
    wanted = min(cfg.max_books or len(entries), len(entries))
    log.info("%s: %d of %d catalogued books to fetch from %s", cfg.name, wanted, len(entries), cfg.mirror)

    # 2. Download them, one at a time; a book the mirror lacks is named and skipped (and, with
    # --max-books, replaced by the next one).
    books, missing = {}, []
    for entry in entries:
        if len(books) == wanted:
            break
        log.info("book %d of %d: %d %s", len(books) + 1, wanted, entry.book_id, entry.title)
        try:
            stored = run_intact(
                download_book_task,
                book_id=entry.book_id,
                mirror=cfg.mirror,
                http=http,
                raw_dir=raw_dir,
                title=entry.title,
                authors=entry.authors,
                language=entry.language,
            )
        except (DownloadError, InvalidDataError) as exc:
            log.warning("skipping book %d: %s", entry.book_id, exc)
            stored = None
        if stored is None:
            missing.append(entry)
        else:
            books[entry.book_id] = (entry, stored)
    if missing:
        log.warning(
            "could not get %d of %d books: %s",
            len(missing),
            len(missing) + len(books),
            ", ".join(f"{e.book_id} {e.title!r}" for e in missing),
        )
    if not books:
        raise DownloadError(
            f"{cfg.name}: none of the {len(entries)} books could be had from {cfg.mirror}; "
            "check the mirror or the book ids"
        )

    # 3. Extract utterances, the cast and who speaks, and pair them, book by book.
    pair_tables = []
    for book_id, (entry, stored) in books.items():
        try:
            dialogue = run_intact(
                extract_dialogue_task, book_id=book_id, book=stored, data_dir=cfg.data_dir, title=entry.title
            )
        except ExtractionError as exc:
            log.warning("skipping %s", exc)
            continue
        pairs = run_intact(
            pair_utterances_task,
            book_id=book_id,
            utterances=dialogue.utterances,
            max_gap=cfg.max_gap,
            out_dir=cfg.data_dir / "03_pairs",
        )
        pair_tables.append(pairs)
    if not pair_tables:
        raise ExtractionError(f"{cfg.name}: no dialogue found in any of the {len(books)} books")

    # 4. Validate, split by conversation, and export for a person to check.
    titles = {book_id: entry.title for book_id, (entry, _) in books.items()}
    dataset = run_intact(
        validate_pairs_task,
        pairs=pair_tables,
        titles=titles,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
        min_pairs=cfg.min_pairs,
        out_path=cfg.data_dir / "04_datasets" / f"{cfg.name}.parquet",
        val_books=cfg.val_books,
    )
    out_dir = Path(cfg.out) if cfg.out else cfg.data_dir / cfg.name
    data = read_table(dataset.path, DATASET)
    json_path = export_dataset(data, dataset.report, cfg.name, out_dir)
    log.info(
        "%s: %d training and %d validation pairs written to %s",
        cfg.name,
        dataset.report.train,
        dataset.report.validation,
        json_path,
    )
    create_table_artifact(
        key="corpus-summary", table=dataset.report.per_book, description=f"checked pairs per book for {cfg.name}"
    )
    create_markdown_artifact(key="validation-report", markdown=report_markdown(cfg.name, dataset.report))
    create_markdown_artifact(key="pair-samples", markdown=sample_markdown(data, cfg.seed))
    return dataset
