"""Step 4: check the pairs, split them by conversation, and export them for a person to read.

Validation drops what cannot train (empty, garbled, duplicated rows) and counts each kind; it
never repairs text. The split keeps every conversation whole, so no exchange leaks from
training into validation.
"""

import json
import logging
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from prefect import task

from tasks.cache import PARQUET_INPUTS
from tasks.errors import InvalidDataError
from tasks.tables import DATASET, PAIRS, StoredFile, read_table, write_atomically, write_table

log = logging.getLogger(__name__)

GARBLED = re.compile(r"[\ufffd\x00-\x08\x0b-\x1f\x7f]")  # replacement or control characters
MIN_LETTER_SHARE = 0.5  # of the non-space characters; less is markup or noise, not speech


@dataclass
class Report:
    pairs_in: int = 0
    empty: int = 0
    garbled: int = 0
    duplicates: int = 0
    train: int = 0
    validation: int = 0
    conversations: int = 0
    shared_prompts: int = 0  # validation prompts also seen in training ("Yes."): reported, not dropped
    per_book: list[dict] = field(default_factory=list)
    lengths: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedDataset:
    """What the validation task returns: the DATASET file and its report."""

    table: StoredFile
    report: Report

    @property
    def path(self) -> Path:
        return self.table.path


def is_garbled(text: str) -> bool:
    """True for text with replacement or control characters, or too few letters to be speech."""
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    return bool(GARBLED.search(text)) or letters < MIN_LETTER_SHARE * len(visible)


def split_conversations(frame: pd.DataFrame, val_fraction: float, seed: int, val_books=()) -> pd.Series:
    """'train' or 'validation' per row, drawing whole conversations at random, or holding out whole books."""
    if val_books:
        missing = sorted(set(val_books) - set(frame["book_id"]))
        if missing or set(frame["book_id"]) <= set(val_books):
            raise InvalidDataError(
                f"--val-books {' '.join(map(str, val_books))}: "
                + (f"no pairs from book {missing[0]}" if missing else "leaves no book to train on")
                + "; hold out books that are in the dataset, and not all of them"
            )
        return frame["book_id"].map(lambda b: "validation" if b in set(val_books) else "train")
    keys = sorted(set(zip(frame["book_id"], frame["conversation_id"])))
    random.Random(seed).shuffle(keys)
    held = round(len(keys) * val_fraction)
    if val_fraction > 0 and len(keys) > 1:
        held = max(held, 1)
    validation = set(keys[:held])
    return pd.Series(
        ["validation" if k in validation else "train" for k in zip(frame["book_id"], frame["conversation_id"])],
        index=frame.index,
    )


def validate_pairs(
    pairs: pd.DataFrame, titles: dict[int, str], val_fraction: float, seed: int, min_pairs: int, val_books=()
) -> tuple[pd.DataFrame, Report]:
    """The checked dataset (DATASET columns) and what was found on the way."""
    report = Report(pairs_in=len(pairs))
    empty = (pairs["prompt"].str.strip() == "") | (pairs["response"].str.strip() == "")
    garbled = ~empty & (pairs["prompt"].map(is_garbled) | pairs["response"].map(is_garbled))
    kept = pairs[~empty & ~garbled]
    duplicated = kept.duplicated(subset=["prompt", "response"])
    report.empty, report.garbled, report.duplicates = int(empty.sum()), int(garbled.sum()), int(duplicated.sum())
    data = kept[~duplicated].copy()
    if len(data) < min_pairs:
        raise InvalidDataError(
            f"dataset: {len(data)} usable pairs, fewer than --min-pairs {min_pairs}; "
            "add books (--book, --max-books) or lower --min-pairs"
        )
    data["title"] = data["book_id"].map(lambda b: titles.get(int(b), ""))
    data["split"] = split_conversations(data, val_fraction, seed, tuple(val_books))
    train = data[data["split"] == "train"]
    validation = data[data["split"] == "validation"]
    report.train, report.validation = len(train), len(validation)
    report.conversations = int(data.groupby(["book_id", "conversation_id"]).ngroups)
    report.shared_prompts = int(validation["prompt"].isin(set(train["prompt"])).sum())
    for book_id, rows in data.groupby("book_id"):
        report.per_book.append(
            {
                "book_id": int(book_id),
                "title": titles.get(int(book_id), ""),
                "pairs": len(rows),
                "conversations": int(rows["conversation_id"].nunique()),
            }
        )
    for column in ("prompt", "response"):
        chars = data[column].str.len()
        report.lengths[column] = {
            q: int(chars.quantile(p)) for q, p in (("min", 0), ("median", 0.5), ("p90", 0.9), ("max", 1))
        }
    return data.reset_index(drop=True), report


def report_markdown(name: str, report: Report) -> str:
    """The validation report as Markdown, for a person to read before training."""
    lines = [
        f"# Dataset {name}",
        "",
        f"- {report.pairs_in} pairs extracted; dropped {report.empty} empty, {report.garbled} garbled, "
        f"{report.duplicates} duplicates",
        f"- {report.train} training and {report.validation} validation pairs from "
        f"{report.conversations} conversations (split by conversation or by book, so none leaks)",
        f"- {report.shared_prompts} validation prompts also appear as training prompts (short replies "
        'like "Yes."; kept)',
        "",
        "| book | title | pairs | conversations |",
        "|---|---|---|---|",
    ]
    lines += [f"| {b['book_id']} | {b['title']} | {b['pairs']} | {b['conversations']} |" for b in report.per_book]
    lines += ["", "| characters | min | median | p90 | max |", "|---|---|---|---|---|"]
    lines += [f"| {c} | " + " | ".join(str(v) for v in q.values()) + " |" for c, q in report.lengths.items()]
    return "\n".join(lines) + "\n"


def sample_markdown(data: pd.DataFrame, seed: int, count: int = 10) -> str:
    """A few pairs drawn at random, as Markdown, to judge the dataset at a glance."""
    rows = data.sample(min(count, len(data)), random_state=seed).sort_index()
    blocks = [f"**{r.title}** ({r.split})\n\n> {r.prompt}\n\n{r.response}\n" for r in rows.itertuples()]
    return "# Sample pairs\n\n" + "\n---\n\n".join(blocks)


def export_dataset(data: pd.DataFrame, report: Report, name: str, out_dir: Path) -> Path:
    """out_dir/pairs.json (a JSON array, one object per pair), report.md and report.json beside it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = data[DATASET.names].to_dict("records")
    for path, content in (
        (out_dir / "pairs.json", json.dumps(rows, ensure_ascii=False, indent=1, default=int)),
        (out_dir / "report.md", report_markdown(name, report)),
        (out_dir / "report.json", json.dumps(asdict(report), indent=1)),
    ):
        write_atomically(path, lambda tmp, text=content: tmp.write_text(text, "utf-8"))
    return out_dir / "pairs.json"


def read_pairs(path: Path, split: str = "") -> pd.DataFrame:
    """A pairs.json file (authorbot dataset's export), or its rows of one split."""
    try:
        rows = json.loads(Path(path).read_text("utf-8"))
        frame = pd.DataFrame(rows)
        missing = [c for c in DATASET.names if c not in frame.columns]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidDataError(
            f"--pairs {path}: not a readable pairs.json ({exc}); give authorbot dataset's pairs.json"
        ) from None
    if missing or frame.empty:
        raise InvalidDataError(
            f"--pairs {path}: "
            + (f"no {missing[0]!r} field" if missing else "no pairs")
            + "; give a pairs.json written by authorbot dataset"
        )
    return frame[frame.split == split] if split else frame


@task(name="validate-pairs", cache_policy=PARQUET_INPUTS, persist_result=True)
def validate_pairs_task(
    pairs: list[StoredFile],
    titles: dict[int, str],
    val_fraction: float,
    seed: int,
    min_pairs: int,
    out_path: Path,
    val_books: tuple[int, ...] = (),
) -> CheckedDataset:
    """04_datasets/<name>.parquet (DATASET), and the validation report."""
    frame = pd.concat([read_table(p.path, PAIRS) for p in pairs], ignore_index=True)
    data, report = validate_pairs(frame, titles, val_fraction, seed, min_pairs, val_books)
    log.info(
        "dataset: %d pairs in, %d train, %d validation (%d empty, %d garbled, %d duplicates dropped)",
        report.pairs_in,
        report.train,
        report.validation,
        report.empty,
        report.garbled,
        report.duplicates,
    )
    return CheckedDataset(write_table(data, out_path, DATASET), report)
