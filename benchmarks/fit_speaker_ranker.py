"""Fit tasks/ranking.py's WEIGHTS on the PDNC novels, and score them on novels they were not fit on.

For each novel, the turns the sieve leaves unnamed and their nearby people (ranking.choices), each
labelled by the annotated speaker; a conditional logit (a softmax over each turn's people and no one)
fit by gradient descent. Each novel is scored by weights fit on the others: how many of its gold
quotations the ranked names cover, how many of them rightly, at CONFIDENCE. Last, the weights fit
on all the novels, to paste into tasks/ranking.py.
Run: python benchmarks/fit_speaker_ranker.py [--pdnc ../shared/pdnc] [--style straight]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.characters import speakers_of  # noqa: E402
from tasks.dialogue import extract_utterances  # noqa: E402
from tasks.pdnc import STYLES, align, load_aliases, load_novel, names_speaker, restyle  # noqa: E402
from tasks.ranking import CONFIDENCE, FEATURES, NULL_FEATURES, RANKED, choices, probabilities  # noqa: E402
from tasks.tables import with_speaker  # noqa: E402

PDNC = Path(__file__).resolve().parents[2] / "shared" / "pdnc"
STEPS, RATE, L2 = 800, 0.5, 1.0


def labelled(folder: Path, style: str) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Each unnamed turn's feature rows, which rows are right (no one's, the last, where none is),
    and how many gold quotations the turn covers."""
    text, gold = load_novel(folder)
    aliases = load_aliases(folder)
    styled = restyle(text, style)
    utterances, cast = speakers_of(styled, extract_utterances(styled))
    utterances = [with_speaker(u, "", "") if u.speaker_source == RANKED else u for u in utterances]
    matched = align(utterances, gold)
    found = []
    for choice in choices(utterances, cast, styled):
        spans = [matched[i] for i in choice.turn if matched[i]]
        if not spans:
            continue
        truth = gold[spans[0][0]].speaker
        right = [names_speaker(name, truth, aliases) for name in choice.names]
        quotes = sum(b - a + 1 for a, b in spans)
        found.append((np.array(choice.rows), np.array([*right, not any(right)], float), quotes))
    return found


def fit(examples: list[tuple[np.ndarray, np.ndarray, int]]) -> dict[str, float]:
    """The weights that maximise the likelihood of the right rows (a softmax over each turn's rows)."""
    width, most = examples[0][0].shape[1], max(len(y) for _, y, _ in examples)
    x = np.zeros((len(examples), most, width))
    y = np.zeros((len(examples), most))
    mask = np.zeros((len(examples), most), bool)
    for i, (rows, right, _) in enumerate(examples):
        x[i, : len(right)], y[i, : len(right)], mask[i, : len(right)] = rows, right / right.sum(), True
    w = np.zeros(width)
    for _ in range(STEPS):
        scores = np.where(mask, x @ w, -np.inf)
        p = np.exp(scores - scores.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= RATE * (L2 * w - np.einsum("gm,gmd->d", y - p, x)) / len(examples)
    return {name: round(float(v), 3) for name, v in zip(FEATURES + NULL_FEATURES, w)}


def scored(examples: list[tuple[np.ndarray, np.ndarray, int]], weights: dict[str, float]) -> tuple[int, int]:
    """Gold quotations the ranked names cover rightly and wrongly."""
    right = wrong = 0
    for rows, truth, quotes in examples:
        p = probabilities(rows.tolist(), weights)[:-1]
        best = int(np.argmax(p))
        if p[best] >= CONFIDENCE:
            right, wrong = right + quotes * bool(truth[best]), wrong + quotes * (not truth[best])
    return right, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdnc", type=Path, default=PDNC)
    parser.add_argument("--style", choices=STYLES, default="straight")
    args = parser.parse_args()
    novels = {f.name: labelled(f, args.style) for f in sorted(args.pdnc.iterdir()) if (f / "novel_text.txt").exists()}
    print(f"{'novel (left out)':<30}{'turns':>7}{'right':>7}{'wrong':>7}")
    total = [0, 0]
    for name, examples in novels.items():
        weights = fit([e for other, es in novels.items() if other != name for e in es])
        right, wrong = scored(examples, weights)
        total = [total[0] + right, total[1] + wrong]
        print(f"{name:<30}{len(examples):>7}{right:>7}{wrong:>7}")
    print(f"{'all':<30}{'':>7}{total[0]:>7}{total[1]:>7}  precision {total[0] / max(sum(total), 1):.3f}")
    print("WEIGHTS =", fit([e for es in novels.values() for e in es]))


if __name__ == "__main__":
    main()
