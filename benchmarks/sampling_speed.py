"""Replies sampled side by side against one at a time: what an evaluation's sampled replies cost.

`authorbot eval` (and every run's evaluation) samples replies to real prompts with the chat's
sampler. The baseline, measured in the same run, is how it did so before: each reply alone,
`Decoder.sample`, one token per call. Against it, `Decoder.sample_rows` with rows of
tasks/evaluate.py's BATCH. Random weights of each size (the real model's FLOPs), contexts of 16 to
240 tokens of Pride and Prejudice, the end of turn banned so every reply is --new-tokens long; one
untimed pass first, so XLA's compilations are not counted.

Run: python benchmarks/sampling_speed.py [--sizes small,124M] [--replies 32] [--new-tokens 40]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_latency import TOKENIZER, save_random_model  # noqa: E402

BOOK = ROOT.parent / "shared" / "gutenberg" / "cache" / "epub" / "1342" / "pg1342.txt"


def alone(decoder, contexts: list[list[int]], how, ban: dict) -> None:
    """The baseline: each reply by itself."""
    import numpy as np

    for i, context in enumerate(contexts):
        for _ in decoder.sample(context, how, np.random.default_rng(i), ban):
            pass


def side_by_side(decoder, contexts: list[list[int]], how, ban: dict) -> None:
    """Rows of BATCH replies at once, as the evaluation samples them."""
    import numpy as np

    from tasks.evaluate import BATCH

    for first in range(0, len(contexts), BATCH):
        rows = contexts[first : first + BATCH]
        for _ in decoder.sample_rows(rows, how, [np.random.default_rng(first + k) for k in range(len(rows))], ban):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small", help="comma-separated: small (scratch:small), 124M")
    parser.add_argument("--replies", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=40)
    args = parser.parse_args()

    import numpy as np

    from tasks.config import ChatConfig
    from tasks.decode import Decoder
    from tasks.evaluate import BATCH
    from tasks.model import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(TOKENIZER))
    eot = tokenizer.eos_token_id
    text = tokenizer.encode(BOOK.read_text("utf-8")[5000:60000])
    lengths = np.linspace(16, 240, args.replies).astype(int)
    contexts = [text[i * 250 : i * 250 + n] + [eot] for i, n in enumerate(lengths)]
    how = ChatConfig(max_new_tokens=args.new_tokens)
    ban = {eot: -100.0}
    tokens = args.replies * args.new_tokens
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory() as folder:
            save_random_model(size, folder)
            decoder = Decoder(load_model(folder, tokenizer), eot)

        seconds = {}
        for name, run in (("one at a time", alone), (f"rows of {BATCH}", side_by_side)):
            run(decoder, contexts, how, ban)  # compiles each shape
            start = time.perf_counter()
            run(decoder, contexts, how, ban)
            seconds[name] = time.perf_counter() - start
        base = seconds["one at a time"]
        for name, s in seconds.items():
            print(
                f"{size}: {name}: {args.replies} replies x {args.new_tokens} tokens in {s:.1f} s, "
                f"{tokens / s:.0f} tokens/s ({base / s:.2f}x)"
            )


if __name__ == "__main__":
    main()
