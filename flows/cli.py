"""The `authorbot` command: one subcommand per job, each flag one config field and flow parameter."""

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from flows.prefect_server import keep_server, prefect_environment, prefect_output, stop_orphaned_servers
from tasks import import_tensorflow_quietly
from tasks.config import (
    EXAMPLES,
    TRAINED_FIX,
    ChatConfig,
    CorpusConfig,
    EvalConfig,
    ServeConfig,
    TrainConfig,
    check_model_dir,
    config_from,
    read_prompts,
)
from tasks.errors import AuthorbotError, ExtractionError

C, T, S, V, E = CorpusConfig, TrainConfig, ChatConfig, ServeConfig, EvalConfig


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
    parser.add_argument("--max-books", type=int, default=C.max_books, help="the first N books the mirror has (0: all)")
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
        "--val-books",
        type=int,
        nargs="+",
        default=[],
        metavar="ID",
        help="hold out these whole books for validation (instead of --val-fraction of the conversations)",
    )
    parser.add_argument(
        "--min-pairs", type=int, default=C.min_pairs, help="fail when fewer usable pairs remain (default %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=C.seed, help="split, shuffling and sampling seed (default %(default)s)"
    )


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=T.model, help="hub name, model directory, or scratch:tiny|small (%(default)s)"
    )
    parser.add_argument(
        "--tokenizer", default=T.tokenizer, help="hub name or directory (default: the model's; gpt2 for scratch)"
    )
    parser.add_argument("--epochs", type=int, default=T.epochs, help="default %(default)s")
    parser.add_argument("--batch-size", type=int, default=T.batch_size, help="packed rows per step (%(default)s)")
    parser.add_argument("--max-length", type=int, default=T.max_length, help="tokens per row (%(default)s)")
    parser.add_argument(
        "--learning-rate", type=float, default=T.learning_rate, help="default 5e-5, or 1e-3 for scratch models"
    )
    parser.add_argument("--max-pairs", type=int, default=T.max_pairs, help="train on a sample of N pairs (0: all)")
    parser.add_argument(
        "--mask-prompt",
        action=argparse.BooleanOptionalAction,
        default=T.mask_prompt,
        help="no loss on a conversation's first turn or an exchange's prompt (default %(default)s)",
    )
    parser.add_argument(
        "--examples",
        choices=EXAMPLES,
        default=T.examples,
        help="whole conversations with speakers' names, or one exchange each (default %(default)s)",
    )
    parser.add_argument(
        "--character", default=T.character, metavar="NAME", help="a bot that is this character (their turns only)"
    )
    parser.add_argument(
        "--prose-epochs",
        type=int,
        default=T.prose_epochs,
        help="epochs on the books' whole text first (default: 1 for a scratch model, 0 to fine-tune)",
    )
    parser.add_argument("--patience", type=int, default=T.patience, help="early stopping, in epochs (%(default)s)")
    parser.add_argument("--checkpoint-every", type=int, default=T.checkpoint_every, help="steps (%(default)s)")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=T.time_budget,
        metavar="MINUTES",
        help="train on as many pairs as fit in this time (default 45 on a CPU, no limit on a GPU; 0: no limit)",
    )
    parser.add_argument("--xla", action=argparse.BooleanOptionalAction, default=T.xla, help="default: on a GPU")
    parser.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=T.mixed_precision,
        help="default: on a GPU or a CPU with bfloat16 units",
    )


def _add_chat_flags(parser: argparse.ArgumentParser, seed: bool, prompts: bool = True) -> None:
    parser.add_argument(
        "--as",
        dest="as_character",
        default="",
        metavar="NAME",
        help="the bot speaks as this character of its cast (default: unnamed, or the --character it was trained as)",
    )
    parser.add_argument("--you", default="", metavar="NAME", help="your turns are this character's (default: unnamed)")
    if prompts:
        parser.add_argument(
            "--prompts",
            type=Path,
            help="test prompts, one per line, for the transcript (chat: printed instead of a talk)",
        )
    parser.add_argument("--temperature", type=float, default=S.temperature, help="default %(default)s (0: greedy)")
    parser.add_argument("--top-k", type=int, default=S.top_k, help="default %(default)s (0: off)")
    parser.add_argument("--top-p", type=float, default=S.top_p, help="default %(default)s")
    parser.add_argument("--repetition-penalty", type=float, default=S.repetition_penalty, help="default %(default)s")
    parser.add_argument(
        "--no-repeat-ngram", type=int, default=S.no_repeat_ngram, help="a reply never repeats its n-grams (0: off)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=S.max_new_tokens, help="default %(default)s")
    parser.add_argument(
        "--wrap-up",
        type=int,
        default=S.wrap_up,
        help="from this many tokens on, a reply ends with its sentence and is drawn to its end (0: never)",
    )
    if seed:
        parser.add_argument("--seed", type=int, default=S.seed, help="sampling seed (default %(default)s)")


def _add_eval_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-responses", type=int, default=E.max_responses, help="responses scored, a sample (%(default)s; 0: all)"
    )
    parser.add_argument("--ranked", type=int, default=E.ranked, help="of them, ranked for Hits@1 (%(default)s)")
    parser.add_argument("--candidates", type=int, default=E.candidates, help="lines ranked together (%(default)s)")
    parser.add_argument("--samples", type=int, default=E.samples, help="replies sampled for statistics (%(default)s)")


def _corpus_config(args: argparse.Namespace) -> CorpusConfig:
    return config_from(CorpusConfig, vars(args), book=tuple(args.book), val_books=tuple(args.val_books))


def _flow_kwargs(args: argparse.Namespace, *configs: type) -> dict:
    """The flow parameters: the flags that are config fields, by the same names."""
    names = {f.name for cls in configs for f in dataclasses.fields(cls)}
    return {name: getattr(args, name) for name in names}


def _flow_server(args: argparse.Namespace) -> None:
    """Before a flow is imported: keep a Prefect server for later commands, from a terminal or when asked."""
    wanted = sys.stderr.isatty() if args.keep_server is None else args.keep_server
    if wanted:
        keep_server()


def _load_tensorflow(args: argparse.Namespace) -> None:
    """After the flags are checked (a mistake is one line at once) and before anything imports it."""
    if not args.verbose:
        import_tensorflow_quietly()


def cmd_dataset(args: argparse.Namespace) -> None:
    _corpus_config(args)  # bad flags fail here, before Prefect starts
    _flow_server(args)
    from flows.corpus import build_corpus

    with prefect_output():
        dataset = build_corpus(**_flow_kwargs(args, CorpusConfig))
    print(f"{dataset.report.train + dataset.report.validation} pairs checked; see {dataset.path}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> None:
    _corpus_config(args)  # bad flags fail here, before Prefect and TensorFlow start
    config_from(TrainConfig, vars(args))
    config_from(ChatConfig, vars(args))
    config_from(EvalConfig, vars(args))
    read_prompts(args.prompts)  # a missing or empty file fails here, not after training
    _flow_server(args)
    _load_tensorflow(args)
    from flows.finetune import finetune

    with prefect_output():
        model_dir = finetune(
            **_flow_kwargs(args, CorpusConfig, TrainConfig, ChatConfig, EvalConfig),
            prompts=args.prompts,
            as_character=args.as_character,
            you=args.you,
        )
    print(
        f"model saved in {model_dir}; talk to it with: authorbot chat {model_dir}\n"
        f"or in a browser and over the OpenAI API: authorbot serve {model_dir}",
        file=sys.stderr,
    )


def cmd_chat(args: argparse.Namespace) -> None:
    cfg = config_from(ChatConfig, vars(args))
    read_prompts(args.prompts)  # a missing or empty file fails here, not after training
    check_model_dir(args.model_dir, TRAINED_FIX)
    _load_tensorflow(args)
    from tasks.chat import chat

    chat(args.model_dir, cfg, args.prompts, args.as_character, args.you)


def cmd_serve(args: argparse.Namespace) -> None:
    defaults = config_from(ChatConfig, vars(args))
    cfg = config_from(ServeConfig, vars(args), api_key=args.api_key or os.environ.get("AUTHORBOT_API_KEY", ""))
    check_model_dir(args.model_dir, TRAINED_FIX)
    _load_tensorflow(args)
    from flows.serve import serve

    serve(args.model_dir, cfg, defaults, args.as_character, args.you)


def cmd_eval(args: argparse.Namespace) -> None:
    cfg = config_from(EvalConfig, vars(args))
    sampling = config_from(ChatConfig, vars(args))
    from tasks.validate import read_pairs

    pairs = read_pairs(args.pairs, args.split)  # a bad file fails here, before TensorFlow loads
    check_model_dir(args.model_dir, TRAINED_FIX)
    _load_tensorflow(args)
    from tasks.evaluate import eval_markdown, evaluate_bot, write_eval

    result = evaluate_bot(args.model_dir, pairs, cfg, sampling)
    out = args.out or args.model_dir.parent / f"eval-{args.pairs.parent.name or 'pairs'}.json"
    write_eval(result, out)
    print(eval_markdown(result))
    print(f"written to {out}", file=sys.stderr)


def cmd_server(args: argparse.Namespace) -> None:
    from flows.prefect_server import running_server, start_server, stop_server

    if args.action == "start":
        url = start_server()
        print(f"Prefect server up: UI at {url.removesuffix('/api')}; later authorbot commands use it "
              "(authorbot server stop stops it)", file=sys.stderr)  # fmt: skip
    elif args.action == "stop":
        print("Prefect server stopped" if stop_server() else "no Prefect server of authorbot's is running")
    else:
        url = running_server()
        print(f"running: {url}" if url else "not running (authorbot server start starts one)")


def _read_book_file(path: Path) -> str:
    from tasks.gutenberg import decode_text, strip_boilerplate

    if not path.is_file():
        raise AuthorbotError(f"{path}: no such file; give the path of a plain-text book")
    text = strip_boilerplate(decode_text(path.read_bytes(), "utf-8", str(path)))
    if not text.strip():
        raise AuthorbotError(f"{path}: empty file; give the path of a plain-text book")
    return text


def _dialogue(path: Path) -> tuple[list, list]:
    """A book file's utterances, with who speaks them, and its cast."""
    from tasks.characters import speakers_of
    from tasks.dialogue import extract_utterances

    text = _read_book_file(path)
    utterances, cast = speakers_of(text, extract_utterances(text))
    if not utterances:
        raise ExtractionError(
            f"{path}: no dialogue found (no quoted speech, dash-opened lines or play headings); is it a novel?"
        )
    return utterances, cast


def _print_cast(title: str, cast: list) -> None:
    print(f"{title}: {len(cast)} characters")
    print(f"{'lines':>6}  {'character':<28} {'gender':<6}  also called")
    for c in cast:
        print(f"{c.utterances:>6}  {c.character:<28} {c.gender or '?':<6}  {', '.join(c.aliases[1:])}")


def _print_trained_cast(model_dir: Path) -> None:
    """The characters a model was trained with (saved beside it), largest first."""
    from tasks.examples import LAYOUT_FILE, Layout

    check_model_dir(model_dir, TRAINED_FIX)
    layout = Layout.of(model_dir)
    if not layout.characters:
        raise AuthorbotError(f"{model_dir}: no {LAYOUT_FILE} with its cast; it was not trained by this authorbot")
    character = f", as {layout.character}" if layout.character else ""
    print(f"{model_dir}: trained with {len(layout.characters)} characters{character}")
    print(f"{'lines':>6}  character")
    for name, lines in sorted(layout.characters.items(), key=lambda c: -c[1]):
        print(f"{lines:>6}  {name}")


def cmd_characters(args: argparse.Namespace) -> None:
    from tasks.characters import cast_from_table

    if args.file is not None and args.file.is_dir():
        _print_trained_cast(args.file)
        return
    if args.file is not None:
        _print_cast(str(args.file), _dialogue(args.file)[1])
        return
    cfg = _corpus_config(args)
    _flow_server(args)
    from flows.corpus import build_corpus

    with prefect_output():
        dataset = build_corpus(**_flow_kwargs(args, CorpusConfig))
    for book in dataset.report.per_book:
        cast = cast_from_table(Path(cfg.data_dir) / "02_characters" / f"{book['book_id']}.parquet")
        _print_cast(f"{book['title']} ({book['book_id']})", cast)


def cmd_extract(args: argparse.Namespace) -> None:
    for u in _dialogue(args.file)[0]:
        print(json.dumps(dataclasses.asdict(u), ensure_ascii=False))


def cmd_pairs(args: argparse.Namespace) -> None:
    from tasks.pairing import pair_utterances

    for p in pair_utterances(_dialogue(args.file)[0], args.max_gap):
        print(json.dumps(dataclasses.asdict(p), ensure_ascii=False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authorbot", description="Turn an author's novels into a chatbot.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="TensorFlow's start-up lines and debug logging too")
    common.add_argument(
        "--keep-server",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep a Prefect server running for later commands (default: when run from a terminal)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dataset = commands.add_parser(
        "dataset", parents=[common], help="download an author's books and build a checked dialogue dataset"
    )
    _add_corpus_flags(dataset)
    dataset.set_defaults(run=cmd_dataset)
    run = commands.add_parser(
        "run", parents=[common], help="build the dataset, fine-tune GPT-2 on it, and write a transcript"
    )
    _add_corpus_flags(run)
    _add_train_flags(run)
    _add_chat_flags(run, seed=False)  # --seed is the corpus flags' one: split, shuffling and sampling
    _add_eval_flags(run)
    run.set_defaults(run=cmd_run)
    chat = commands.add_parser(
        "chat", parents=[common], help="talk to a trained model (stdin lines get one reply line each)"
    )
    chat.add_argument("model_dir", type=Path, help="a model directory, e.g. DIR/model from authorbot run")
    _add_chat_flags(chat, seed=True)
    chat.set_defaults(run=cmd_chat)
    serve = commands.add_parser(
        "serve", parents=[common], help="serve a trained model: a chat page and an OpenAI-compatible API"
    )
    serve.add_argument("model_dir", type=Path, help="a model directory, e.g. DIR/model from authorbot run")
    serve.add_argument("--host", default=V.host, help="address to listen on (default %(default)s: this machine only)")
    serve.add_argument("--port", type=int, default=V.port, help="default %(default)s")
    serve.add_argument(
        "--api-key", default=V.api_key, help="require 'Authorization: Bearer KEY' (or $AUTHORBOT_API_KEY)"
    )
    serve.add_argument("--cors", default=V.cors, metavar="ORIGIN", help="let pages from this origin call the API")
    serve.add_argument("--queue-size", type=int, default=V.queue_size, help="replies at once (%(default)s)")
    _add_chat_flags(serve, seed=True, prompts=False)
    serve.set_defaults(run=cmd_serve)
    evaluate = commands.add_parser(
        "eval", parents=[common], help="measure a trained model on dialogue pairs (pairs.json of authorbot dataset)"
    )
    evaluate.add_argument("model_dir", type=Path, help="a model directory, e.g. DIR/model from authorbot run")
    evaluate.add_argument("--pairs", type=Path, required=True, help="a pairs.json, e.g. of books the bot never read")
    evaluate.add_argument(
        "--split", default="", choices=["", "train", "validation"], help="score only this split (default: all pairs)"
    )
    evaluate.add_argument("--out", type=Path, help="the JSON result (default: beside the model, eval-<folder>.json)")
    _add_eval_flags(evaluate)
    _add_chat_flags(evaluate, seed=True, prompts=False)
    evaluate.set_defaults(run=cmd_eval)
    server = commands.add_parser(
        "server", parents=[common], help="keep a Prefect server running for later commands (start, stop, status)"
    )
    server.add_argument("action", choices=["start", "stop", "status"])
    server.set_defaults(run=cmd_server)
    characters = commands.add_parser(
        "characters",
        parents=[common],
        help="list the cast of a text file, of an author's or books' books, or that a model was trained with",
    )
    characters.add_argument(
        "file", type=Path, nargs="?", help="a plain-text book or a model directory (instead of --author / --book)"
    )
    _add_corpus_flags(characters)
    characters.set_defaults(run=cmd_characters)
    extract = commands.add_parser("extract", parents=[common], help="print the utterances of a text file as JSON lines")
    extract.add_argument("file", type=Path)
    extract.set_defaults(run=cmd_extract)
    pairs = commands.add_parser(
        "pairs", parents=[common], help="print the (prompt, response) pairs of a text file as JSON lines"
    )
    pairs.add_argument("file", type=Path)
    pairs.add_argument("--max-gap", type=int, default=C.max_gap)
    pairs.set_defaults(run=cmd_pairs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop_orphaned_servers()
    prefect_environment()
    if args.verbose:
        logging.getLogger("tasks").setLevel(logging.DEBUG)
        logging.getLogger("flows").setLevel(logging.DEBUG)
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
