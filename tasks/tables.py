"""The Parquet tables that cross step boundaries: one schema each, atomic writes, checked reads.

| file                              | schema     | one row per                         |
|-----------------------------------|------------|-------------------------------------|
| 01_raw/catalog.parquet            | CATALOG    | catalogued book                     |
| 01_raw/<book_id>.parquet          | BOOKS      | downloaded book (header stripped)   |
| 02_utterances/<book_id>.parquet   | UTTERANCES | utterance, in reading order         |
| 02_characters/<book_id>.parquet   | CHARACTERS | character of the book's cast        |
| 03_pairs/<book_id>.parquet        | PAIRS      | (prompt, response) of one book      |
| 04_datasets/<name>.parquet        | DATASET    | checked pair with its split         |
"""

import dataclasses
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.errors import InvalidDataError, StorageError

CATALOG = pa.schema(
    [
        ("book_id", pa.int64()),
        ("type", pa.string()),
        ("title", pa.string()),
        ("language", pa.string()),
        ("authors", pa.string()),  # as the catalog writes them: "Austen, Jane, 1775-1817; ..."
    ]
)
BOOKS = pa.schema(
    [
        ("book_id", pa.int64()),
        ("title", pa.string()),
        ("authors", pa.string()),
        ("language", pa.string()),
        ("source_url", pa.string()),  # the URL or file the text came from
        ("sha256", pa.string()),  # of the raw bytes as downloaded
        ("text", pa.string()),  # decoded, LF line ends, Gutenberg header and footer removed
    ]
)
UTTERANCES = pa.schema(
    [
        ("book_id", pa.int64()),
        ("index", pa.int64()),  # position among the book's utterances
        ("paragraph", pa.int64()),  # index of the paragraph where it starts
        ("scene", pa.int64()),  # chapter or scene breaks seen before it
        ("turn", pa.int64()),  # speaker turn: consecutive utterances of one turn are one speaker going on
        ("start", pa.int64()),  # character offsets into BOOKS.text
        ("end", pa.int64()),
        ("text", pa.string()),  # the spoken words, attribution removed, whitespace folded
        ("speaker", pa.string()),  # a CHARACTERS name ("Elizabeth Bennet"; the text's own where none), "" when unknown
        ("speaker_source", pa.string()),  # explicit, continuation, vocative, turn, anaphoric, ranked; "" if none
        ("subject", pa.string()),  # whom an attribution without a name names: "she", "his lady"; else ""
    ]
)
CHARACTERS = pa.schema(
    [
        ("book_id", pa.int64()),
        ("character", pa.string()),  # the canonical name ("Elizabeth Bennet"); speakers in PAIRS are these
        ("aliases", pa.list_(pa.string())),  # every name the text gives them, the canonical one first
        ("gender", pa.string()),  # "F", "M", or "" when the text does not say
        ("utterances", pa.int64()),  # lines spoken
    ]
)
PAIRS = pa.schema(
    [
        ("book_id", pa.int64()),
        ("conversation_id", pa.int64()),  # unique within the book
        ("prompt_index", pa.int64()),  # UTTERANCES.index of the prompt; the response is the next one
        ("prompt", pa.string()),
        ("response", pa.string()),
        ("prompt_speaker", pa.string()),  # a CHARACTERS name, or "" when unknown
        ("response_speaker", pa.string()),
    ]
)
DATASET = pa.schema(
    list(PAIRS) + [("title", pa.string()), ("split", pa.string())]  # split: "train" or "validation"
)


@dataclass(frozen=True, slots=True)
class Utterance:
    book_id: int
    index: int  # position among the book's utterances
    paragraph: int  # paragraph where it starts
    scene: int  # chapter or scene breaks before it
    turn: int  # speaker turn: consecutive utterances of one turn are one speaker going on
    start: int  # character offsets of the speech in the text (first and last quoted character)
    end: int
    text: str  # the spoken words, attribution removed, whitespace folded
    speaker: str  # as the text names it, then (characters.speakers_of) their character's name; "" when unknown
    speaker_source: str = ""  # how the speaker was found (tasks/speakers.py): explicit, continuation, turn, ...
    subject: str = ""  # whom the attribution names when it gives no name: "she", "his lady"


def with_speaker(u: Utterance, speaker: str, source: str | None = None, subject: str | None = None) -> Utterance:
    """The utterance with another speaker (and speaker_source, subject): dataclasses.replace at half the
    cost, for the sieve's thousands of names a book."""
    source = u.speaker_source if source is None else source
    subject = u.subject if subject is None else subject
    return Utterance(u.book_id, u.index, u.paragraph, u.scene, u.turn, u.start, u.end, u.text, speaker, source, subject)


def utterances_from_table(path: Path) -> list[Utterance]:
    """The UTTERANCES file as Utterance rows."""
    frame = read_table(path, UTTERANCES)
    return [
        Utterance(**{k: (v if isinstance(v, str) else int(v)) for k, v in row.items()})
        for row in frame.to_dict("records")
    ]


@dataclass(frozen=True)
class StoredFile:
    """A file a task wrote (a Parquet table, model weights), and the hash of its bytes: what a cache hit promises."""

    path: Path
    sha256: str

    def intact(self) -> bool:
        """True when the file still exists with the bytes it was written with."""
        return self.path.is_file() and file_sha256(self.path) == self.sha256


@dataclass(frozen=True)
class BookDialogue:
    """What step 2 writes for a book: its utterances, with who speaks them, and its cast."""

    utterances: StoredFile  # UTTERANCES
    characters: StoredFile  # CHARACTERS


def stored_file(path: Path) -> StoredFile:
    """A file already written, with the hash of its bytes as they are now."""
    return StoredFile(path, file_sha256(path))


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_table(rows: list | pd.DataFrame, path: Path, schema: pa.Schema) -> StoredFile:
    """Write rows (dataclasses or a DataFrame) atomically: a temporary file, then a rename."""
    if isinstance(rows, pd.DataFrame):
        frame = rows
    else:
        frame = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=schema.names)
    try:
        table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidDataError(f"{path}: rows do not fit the schema ({exc}); this is a bug") from exc
    write_atomically(path, lambda tmp: pq.write_table(table, tmp))
    return stored_file(path)


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(tmp) on a temporary file beside path, then rename it over path: readers see the
    old file or the new one, never half of one. A failed write (a full disk) leaves the old file
    as it was and raises StorageError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        raise storage_error(path, exc) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def storage_error(path: Path, exc: Exception) -> StorageError:
    """The one-line error for a write that failed."""
    why = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:200]
    return StorageError(
        f"{path}: could not write it ({why}); free some disk space or choose another folder "
        "(the previous version, if any, is unchanged)"
    )


def read_table(path: Path, schema: pa.Schema) -> pd.DataFrame:
    """Read a Parquet file, checking that it has the schema's columns and types."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidDataError(f"{path}: not a readable Parquet file ({exc}); delete it to rebuild") from exc
    for column in schema:
        if column.name not in table.column_names:
            raise InvalidDataError(f"{path}: column {column.name!r} is missing; delete it to rebuild")
        if not table.schema.field(column.name).type.equals(column.type):
            raise InvalidDataError(
                f"{path}: column {column.name!r} is {table.schema.field(column.name).type}, "
                f"not {column.type}; delete it to rebuild"
            )
    return table.select(schema.names).to_pandas()


def safe_name(name: str, max_len: int = 64) -> str:
    """A lower-case file name made of letters, digits and dashes, that cannot leave its folder."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:max_len].strip("-")
    return slug or "unnamed"
