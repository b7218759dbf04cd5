"""How good is the bot on a book it never read: scratch:small trained on Pride and Prejudice, scored on Emma.

Six trainings in the same run, on the same data: one exchange per example with the loss on the
response (the layout before conversations); whole conversations with speakers' names, with the
loss on every turn but the first (the layout as first built) and on every turn; exchanges and
conversations after a prose stage (one epoch of the book's whole text: a scratch model's default),
all for --epochs dialogue epochs; and one prose epoch followed by a single dialogue epoch. Each is scored by
tasks/evaluate.py on Emma's pairs:
response perplexity beside the Kneser-Ney bigram floor, Hits@1 of 10, speaker identification, and
the sampled replies' statistics beside Emma's real responses. With --seeds N each training is also
repeated with seeds 1 to N-1 and scored for perplexity alone: a seed moves a result by up to 10%.
Run: python benchmarks/bot_quality.py [--epochs 2] [--seeds 3] [--out /tmp/bot-quality]
"""

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from tasks.characters import speakers_of  # noqa: E402
from tasks.config import ChatConfig, EvalConfig, TrainConfig  # noqa: E402
from tasks.dialogue import extract_utterances  # noqa: E402
from tasks.evaluate import evaluate_bot, formatted  # noqa: E402
from tasks.gutenberg import decode_text, strip_boilerplate  # noqa: E402
from tasks.pairing import pair_utterances  # noqa: E402
from tasks.tables import BOOKS, DATASET, safe_name, write_table  # noqa: E402
from tasks.train import train_model  # noqa: E402
from tasks.validate import validate_pairs  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
TRAIN_BOOK, HELD_OUT = (1342, "Pride and Prejudice"), (158, "Emma")
VARIANTS = {  # name: TrainConfig changes
    "exchanges": dict(examples="exchanges", mask_prompt=True, prose_epochs=0),
    "conversations, first turns masked": dict(examples="conversations", mask_prompt=True, prose_epochs=0),
    "conversations": dict(examples="conversations", prose_epochs=0),
    "exchanges + prose": dict(examples="exchanges", mask_prompt=True, prose_epochs=1),
    "conversations + prose": dict(examples="conversations", prose_epochs=1),
    # the time of about one more dialogue epoch spent on the book's prose instead
    "1 prose epoch, then 1 dialogue epoch": dict(examples="conversations", prose_epochs=1, epochs=1),
}


def book_text(book_id: int) -> str:
    raw = (SHARED / "gutenberg" / f"cache/epub/{book_id}/pg{book_id}.txt").read_bytes()
    return strip_boilerplate(decode_text(raw, "utf-8", f"pg{book_id}"))


def pairs_of(book_id: int, title: str, text: str) -> pd.DataFrame:
    """The pipeline's checked pairs of one book, speakers named by their characters."""
    named, _ = speakers_of(text, extract_utterances(text, book_id))
    frame = pd.DataFrame([dataclasses.asdict(p) for p in pair_utterances(named)])
    return validate_pairs(frame, {book_id: title}, 0.1, 0, 50)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="scratch:small")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bot-quality"))
    parser.add_argument("--max-responses", type=int, default=EvalConfig.max_responses)
    parser.add_argument("--samples", type=int, default=EvalConfig.samples)
    parser.add_argument("--seeds", type=int, default=1, help="trainings per variant, seeds 0 to N-1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    text = book_text(TRAIN_BOOK[0])
    dataset, books = args.out / "dataset.parquet", args.out / "books" / f"{TRAIN_BOOK[0]}.parquet"
    write_table(pairs_of(*TRAIN_BOOK, text), dataset, DATASET)
    book_row = dict(book_id=TRAIN_BOOK[0], title=TRAIN_BOOK[1], authors="", language="en", source_url="", sha256="")
    write_table(pd.DataFrame([book_row | {"text": text}]), books, BOOKS)
    held_out = pairs_of(*HELD_OUT, book_text(HELD_OUT[0]))
    evaluation = EvalConfig(max_responses=args.max_responses, samples=args.samples)
    perplexity_only = EvalConfig(max_responses=args.max_responses, ranked=1, candidates=2, samples=0)

    results = {}
    for seed in range(args.seeds):
        for name, changes in VARIANTS.items():
            settings = dict(
                model=args.model,
                tokenizer=str(SHARED / "gpt2-tokenizer"),
                epochs=args.epochs,
                time_budget=0,
                patience=args.epochs,
                seed=seed,
            )
            cfg = TrainConfig(**(settings | changes))
            out = args.out / f"seed-{seed}" / safe_name(name)
            start = time.monotonic()
            model_dir = train_model(dataset, cfg, out, books=[books])
            trained = time.monotonic() - start
            result = evaluate_bot(model_dir, held_out, perplexity_only if seed else evaluation, ChatConfig())
            if not seed:
                metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
                result["train_seconds"] = sum(m["train_seconds"] for m in metrics)
                result["wall_seconds"] = trained
                result["tokens_per_epoch"] = {
                    m["stage"]: round(m["train_seconds"] * m["tokens_per_sec"]) for m in metrics
                }
                results[name] = result | {"seed_perplexities": []}
            results[name]["seed_perplexities"].append(result["response_perplexity"])
            ppl = result["response_perplexity"]
            print(f"{name}, seed {seed}: trained {trained:.0f} s, response perplexity {ppl:.1f}", flush=True)
            (args.out / "bot_quality.json").write_text(json.dumps(results, indent=1))  # so far

    base = results["exchanges"]
    print(f"\nscored on {HELD_OUT[1]}: {base['responses']} responses; bigram floor {base['ngram_perplexity']:.1f}")
    print(
        f"| training | train s | vs exchanges | tokens/epoch | resp. ppl | mean of {args.seeds} seeds | vs bigram "
        "| Hits@1 | speaker id | end-of-turn | empty | distinct-2 | rep. 4-grams | echo | words |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        s = r["replies"]["sampled"]
        tokens = " + ".join(f"{v:,}" for v in r["tokens_per_epoch"].values())
        seeds = r["seed_perplexities"]
        spread = f" ± {statistics.stdev(seeds):.1f}" if len(seeds) > 1 else ""
        print(
            f"| {name} | {r['train_seconds']:.0f} | {r['train_seconds'] / base['train_seconds']:.2f}x | {tokens} "
            f"| {r['response_perplexity']:.1f} | {statistics.mean(seeds):.1f}{spread} "
            f"| {-100 * r['below_ngram']:+.0f}% | {r['hits_at_1']['value']:.3f} "
            f"| {formatted(r['speaker_identification']['value'])} | {s['end_of_turn_rate']:.2f} | {s['empty']} "
            f"| {s['distinct_2']:.3f} | {s['repeated_4grams']:.3f} | {s['echo']:.3f} | {s['mean_words']:.1f} |"
        )
    real = base["replies"]["real"]
    print(
        f"| {HELD_OUT[1]}'s real responses | | | | | | | | | {real['end_of_turn_rate']:.2f} | 0 "
        f"| {real['distinct_2']:.3f} | {real['repeated_4grams']:.3f} | {real['echo']:.3f} | {real['mean_words']:.1f} |"
    )


if __name__ == "__main__":
    main()
