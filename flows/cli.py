"""The `authorbot` command: one subcommand per job, each flag one config field and flow parameter."""

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from tasks.config import CorpusConfig
from tasks.errors import AuthorbotError

C = CorpusConfig


def _environment() -> None:
    """Settings that must be in place before Prefect or TensorFlow is imported."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "tasks,flows")  # our loggers reach the UI
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # plain functions log too


def _quiet_known_errors(record: logging.LogRecord) -> bool:
    """Drop the traceback from Prefect's log of a run that failed with one of our errors: the CLI
    prints that error as one line, and a traceback would only hide it."""
    if record.exc_info and isinstance(record.exc_info[1], AuthorbotError):
        record.exc_info, record.exc_text = None, None
    return True


def _add_corpus_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--author", default=C.author, help="author's name as people type it, e.g. 'Jane Austen'")
    parser.add_argument(
        "--book",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="a Gutenberg book id (repeatable); with or instead of --author",
    )
    parser.add_argument("--mirror", default=C.mirror, help=f"http(s) base URL or local directory (default {C.mirror})")
    parser.add_argument("--language", default=C.language, help="catalog language code (default %(default)s)")
    parser.add_argument("--max-books", type=int, default=C.max_books, help="keep at most N books (0: all)")
    parser.add_argument("--data-dir", type=Path, default=C.data_dir, help="cache folder (default %(default)s)")
    parser.add_argument("--out", type=Path, default=C.out, help="output folder (default DATA_DIR/<author>)")
    parser.add_argument(
        "--catalog-max-age-days",
        type=float,
        default=C.catalog_max_age_days,
        help="refetch the catalog when older (default %(default)s)",
    )
    parser.add_argument(
        "--request-delay",
        type=float,
        default=C.request_delay,
        help="seconds between requests to a remote host (default %(default)s)",
    )
    parser.add_argument("--http-retries", type=int, default=C.http_retries, help="default %(default)s")
    parser.add_argument(
        "--http-backoff",
        type=float,
        default=C.http_backoff,
        help="first retry delay in seconds, doubled each retry (default %(default)s)",
    )
    parser.add_argument("--http-timeout", type=float, default=C.http_timeout, help="seconds (default %(default)s)")
    parser.add_argument(
        "--max-gap",
        type=int,
        default=C.max_gap,
        help="characters of narration that end a conversation (default %(default)s)",
    )
    parser.add_argument("--val-fraction", type=float, default=C.val_fraction, help="default %(default)s")
    parser.add_argument(
        "--min-pairs", type=int, default=C.min_pairs, help="fail when fewer usable pairs remain (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=C.seed, help="train/validation split seed (default %(default)s)")


def _corpus_kwargs(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(CorpusConfig)}


def cmd_dataset(args: argparse.Namespace) -> None:
    CorpusConfig(**{**_corpus_kwargs(args), "book": tuple(args.book)})  # bad flags fail here, before Prefect starts
    from flows.corpus import build_corpus

    dataset = build_corpus(**_corpus_kwargs(args))
    print(f"{dataset.report.train + dataset.report.validation} pairs checked; see {dataset.path}", file=sys.stderr)


def _read_book_file(path: Path) -> str:
    from tasks.gutenberg import decode_text, strip_boilerplate

    if not path.is_file():
        raise AuthorbotError(f"{path}: no such file; give the path of a plain-text book")
    return strip_boilerplate(decode_text(path.read_bytes(), "utf-8", str(path)))


def cmd_extract(args: argparse.Namespace) -> None:
    from tasks.dialogue import extract_utterances

    for u in extract_utterances(_read_book_file(args.file)):
        print(json.dumps(dataclasses.asdict(u), ensure_ascii=False))


def cmd_pairs(args: argparse.Namespace) -> None:
    from tasks.dialogue import extract_utterances
    from tasks.pairing import pair_utterances

    for p in pair_utterances(extract_utterances(_read_book_file(args.file)), args.max_gap):
        print(json.dumps(dataclasses.asdict(p), ensure_ascii=False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authorbot", description="Turn an author's novels into a chatbot.")
    commands = parser.add_subparsers(dest="command", required=True)
    dataset = commands.add_parser("dataset", help="download an author's books and build a checked dialogue dataset")
    _add_corpus_flags(dataset)
    dataset.set_defaults(run=cmd_dataset)
    extract = commands.add_parser("extract", help="print the utterances of a text file as JSON lines")
    extract.add_argument("file", type=Path)
    extract.set_defaults(run=cmd_extract)
    pairs = commands.add_parser("pairs", help="print the (prompt, response) pairs of a text file as JSON lines")
    pairs.add_argument("file", type=Path)
    pairs.add_argument("--max-gap", type=int, default=C.max_gap)
    pairs.set_defaults(run=cmd_pairs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _environment()
    for name in ("tasks", "flows"):  # progress lines; Prefect adds its handlers to these loggers
        logging.getLogger(name).setLevel(logging.INFO)
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_quiet_known_errors)
    try:
        args.run(args)
    except AuthorbotError as exc:
        print(f"authorbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("authorbot: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `authorbot extract book.txt | head`
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
