"""Every setting with its default, in one place. CLI flags and flow parameters override these."""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import ConfigError
from tasks.tables import safe_name

GUTENBERG = "https://www.gutenberg.org"


@dataclass(frozen=True)
class CorpusConfig:
    author: str = ""  # an author's name as people type it ("Jane Austen", "austen")
    book: tuple[int, ...] = ()  # Gutenberg ids, instead of or besides the author's books
    mirror: str = GUTENBERG  # http(s) base URL or a local directory in Gutenberg's layout
    language: str = "en"  # catalog language code; books in others are skipped
    max_books: int = 0  # keep at most this many books (0: all)
    data_dir: Path = Path("data")  # caches and intermediate Parquet files
    out: Path | None = None  # where pairs.json and the report go (default: data/05_datasets/<name>)
    catalog_max_age_days: float = 7.0  # refetch the catalog when older
    request_delay: float = 2.0  # seconds between requests to a remote host (0 for loopback, dirs)
    http_retries: int = 4  # retries per request on connection errors, 429 and 5xx
    http_backoff: float = 1.0  # exponential backoff base in seconds (1, 2, 4, ...)
    http_timeout: float = 30.0  # connect and read timeout per request, seconds
    max_gap: int = 600  # characters of narration that end a conversation
    val_fraction: float = 0.1  # share of conversations held out for validation
    min_pairs: int = 50  # fewer pairs than this is too small to train on
    seed: int = 0  # train/validation split

    def __post_init__(self) -> None:
        if not self.author.strip() and not self.book:
            raise ConfigError("no books asked for: give --author NAME or --book ID")
        if any(b <= 0 for b in self.book):
            raise ConfigError(f"--book {min(self.book)}: Gutenberg ids are positive integers")
        _at_least(self.max_books, 0, "--max-books")
        _at_least(self.request_delay, 0, "--request-delay")
        _at_least(self.http_retries, 0, "--http-retries")
        _at_least(self.http_backoff, 0, "--http-backoff")
        _at_least(self.http_timeout, 0.1, "--http-timeout")
        _at_least(self.max_gap, 0, "--max-gap")
        _at_least(self.catalog_max_age_days, 0, "--catalog-max-age-days")
        _at_least(self.min_pairs, 1, "--min-pairs")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"--val-fraction {self.val_fraction!r}: must be in [0, 1)")
        if not (self.mirror.startswith(("http://", "https://")) or Path(self.mirror).is_dir()):
            raise ConfigError(
                f"--mirror {self.mirror!r}: not an http(s) URL nor an existing directory; "
                "give a URL like https://www.gutenberg.org or a mirror folder"
            )

    @property
    def name(self) -> str:
        """A short, file-safe name for this dataset: the author, else the book ids."""
        return dataset_name(self.author, self.book)


def dataset_name(author: str, book: Iterable[int]) -> str:
    """'jane-austen', or 'books-158-1342' when only ids are given."""
    return safe_name(author or "books-" + "-".join(map(str, sorted(book))))


def _at_least(value: float, low: float, flag: str) -> None:
    if value < low:
        raise ConfigError(f"{flag} {value!r}: must be at least {low}")
