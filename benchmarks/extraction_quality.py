"""Utterance and pair scores of authorbot's extractor against the hand-annotated PDNC novels.

For each novel, in three quoting styles (straight double as annotated, curly double, British
single with ’ also the apostrophe): utterance precision, recall, F1, pair precision and recall;
then how often a named speaker is the annotated one (spkP), the share of matched utterances
that name one (named), and speaker accuracy over all gold quotations (spkA) and per PDNC quote
type (Explicit, Anaphoric, Implicit: exp, ana, imp).
Run: python benchmarks/extraction_quality.py [--pdnc ../shared/pdnc]
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.characters import speakers_of  # noqa: E402
from tasks.dialogue import extract_utterances  # noqa: E402
from tasks.pairing import pair_utterances  # noqa: E402
from tasks.pdnc import STYLES, load_aliases, load_novel, restyle, score, speaker_accuracy, speaker_precision  # noqa: E402

PDNC = Path(__file__).resolve().parents[2] / "shared" / "pdnc"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdnc", type=Path, default=PDNC)
    parser.add_argument("--style", choices=STYLES, action="append")
    args = parser.parse_args()
    columns = ("P", "R", "F1", "pairP", "pairR", "spkP", "named", "spkA", "exp", "ana", "imp")
    print(f"{'novel':<30}{'style':<10}" + "".join(f"{c:>7}" for c in columns))
    for style in args.style or STYLES:
        rows = []
        for folder in sorted(p for p in args.pdnc.iterdir() if (p / "novel_text.txt").exists()):
            text, gold = load_novel(folder)
            styled = restyle(text, style)
            utterances, cast = speakers_of(styled, extract_utterances(styled))  # as the pipeline does
            s = score(utterances, pair_utterances(utterances), gold)
            row = (s.precision, s.recall, s.f1, s.pair_precision, s.pair_recall)
            aliases = load_aliases(folder)
            accuracy = speaker_accuracy(utterances, gold, aliases)
            rows.append(row + speaker_precision(utterances, gold, aliases) + tuple(accuracy.values()))
            print(f"{folder.name:<30}{style:<10}" + "".join(f"{v:>7.3f}" for v in rows[-1]))
        means = [statistics.mean(column) for column in zip(*rows)]
        print(f"{'MEAN':<30}{style:<10}" + "".join(f"{v:>7.3f}" for v in means))


if __name__ == "__main__":
    main()
