"""Extraction, speakers, cast and pairing speed on the shared Gutenberg books, in MB/s on one core.

Baseline, measured in the same run: one regex pass finding every double-quoted span (the
cheapest extractor there is), so the ratio says what authorbot's convention detection,
multi-paragraph speech and attribution handling cost on top of reading the text once.
Run: python benchmarks/extraction_speed.py
"""

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.characters import speakers_of  # noqa: E402
from tasks.dialogue import extract_utterances  # noqa: E402
from tasks.gutenberg import decode_text, strip_boilerplate  # noqa: E402
from tasks.pairing import pair_utterances  # noqa: E402

GUTENBERG = Path(__file__).resolve().parents[2] / "shared" / "gutenberg"
REPEATS = 3
BASELINE = re.compile(r"[“\"«»‘]([^”\"«»’]*)[”\"«»’]")


def timed(fn, texts: list[str]) -> float:
    """Best seconds over REPEATS runs of fn over all texts."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for text in texts:
            fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def pipeline(text: str) -> list:
    """What the dataset flow does to a book after downloading it: utterances and speakers, the cast, pairs."""
    return pair_utterances(speakers_of(text, extract_utterances(text))[0])


def main() -> None:
    paths = sorted(GUTENBERG.glob("cache/epub/*/pg*.txt"))
    texts = [strip_boilerplate(decode_text(p.read_bytes(), "utf-8", str(p))) for p in paths]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    timed(pipeline, texts[:1])  # warm-up
    ours = timed(pipeline, texts)
    extraction = timed(lambda t: pair_utterances(extract_utterances(t)), texts)
    baseline = timed(BASELINE.findall, texts)
    print(
        f"extract+speakers+cast+pair: {len(texts)} books, {megabytes:.1f} MB, {megabytes / ours:.1f} MB/s "
        f"(one regex pass: {megabytes / baseline:.1f} MB/s; ratio {baseline / ours:.3f}); "
        f"extract+pair alone {megabytes / extraction:.1f} MB/s (ratio {baseline / extraction:.3f})"
    )


if __name__ == "__main__":
    main()
