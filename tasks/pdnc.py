"""Score dialogue extraction against the hand-annotated PDNC novels, as ../shared/pdnc/README.md says.

Not a pipeline step: the yardstick that tests and benchmarks/extraction_quality.py use.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tasks.dialogue import Utterance
from tasks.pairing import Pair

MAX_RUN = 6  # a speaker's turn joins at most this many consecutive quotations
MAX_EXCHANGE_GAP = 1500  # characters between two quotations of one gold exchange
WINDOW = (5, 60)  # how far behind and ahead of the last match an utterance is looked for
STYLES = ("straight", "curly", "single")


@dataclass(frozen=True, slots=True)
class Gold:
    start: int
    end: int
    speaker: str
    words: tuple[str, ...]
    kind: str = ""  # PDNC's quoteType: Explicit, Anaphoric or Implicit


@dataclass(frozen=True, slots=True)
class Score:
    precision: float
    recall: float
    f1: float
    pair_precision: float
    pair_recall: float


def words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", text.lower()))


def load_novel(folder: Path) -> tuple[str, list[Gold]]:
    """The novel's text and its gold quotations in reading order."""
    text = (folder / "novel_text.txt").read_text("utf-8")
    frame = pd.read_csv(folder / "quotation_info.csv", keep_default_na=False)
    gold = []
    for row in frame.itertuples():
        spans = ast.literal_eval(row.quoteByteSpans)
        quoted = words(" ".join(text[a:b] for a, b in spans))
        gold.append(Gold(spans[0][0], spans[-1][1], row.speaker, quoted, row.quoteType))
    return text, sorted(gold, key=lambda g: g.start)


def restyle(text: str, style: str) -> str:
    """The text with its straight double quotes rewritten as curly double or British single ones."""
    if style == "straight":
        return text
    opening, closing = ("“", "”") if style == "curly" else ("‘", "’")
    text = re.sub(r'(^|(?<=[\s(\[—-]))"', opening, text)
    return text.replace('"', closing).replace("'", "’")


def _matches(found: tuple[str, ...], gold: tuple[str, ...]) -> bool:
    if found == gold:
        return True
    if not found or not gold:
        return False
    a, b = set(found), set(gold)
    dice = 2 * len(a & b) / (len(a) + len(b))
    return dice * min(len(found), len(gold)) / max(len(found), len(gold)) >= 0.8


def align(utterances: list[Utterance], gold: list[Gold]) -> list[tuple[int, int] | None]:
    """For each utterance, the (first, last) gold quotation of the quotation or run it matches."""
    result, last = [], 0
    for u in utterances:
        found, match = words(u.text), None
        # forward from the last match first: a short reply ("No, sir.") also matches earlier ones
        ahead = range(last, min(last + WINDOW[1], len(gold)))
        for i in [*ahead, *range(last - 1, max(last - WINDOW[0], 0) - 1, -1)]:
            run: tuple[str, ...] = ()
            for j in range(i, min(i + MAX_RUN, len(gold))):
                if gold[j].speaker != gold[i].speaker:
                    break
                run += gold[j].words
                if _matches(found, run):
                    match = (i, j)
                    break
            if match:
                break
        result.append(match)
        last = match[1] + 1 if match else last
    return result


def score(utterances: list[Utterance], pairs: list[Pair], gold: list[Gold]) -> Score:
    """Utterance precision, recall, F1 and pair precision and recall against the gold."""
    matched = align(utterances, gold)
    covered = {g for m in matched if m for g in range(m[0], m[1] + 1)}
    precision = sum(m is not None for m in matched) / max(len(utterances), 1)
    recall = len(covered) / max(len(gold), 1)
    exchanges = {
        i
        for i in range(len(gold) - 1)
        if gold[i].speaker != gold[i + 1].speaker and gold[i + 1].start - gold[i].end <= MAX_EXCHANGE_GAP
    }
    by_index = {u.index: k for k, u in enumerate(utterances)}
    found = set()
    correct = 0
    for p in pairs:
        k = by_index[p.prompt_index]
        a, b = matched[k], matched[k + 1] if k + 1 < len(matched) else None
        if a and b and b[0] == a[1] + 1 and a[1] in exchanges:
            correct += 1
            found.add(a[1])
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1, correct / max(len(pairs), 1), len(found) / max(len(exchanges), 1))


TITLE_WORDS = {"mr", "mrs", "miss", "ms", "dr", "sir", "lady", "lord", "m", "mme", "madame", "monsieur"}


def load_aliases(folder: Path) -> dict[str, set[str]]:
    """Each annotated character's names (main name and aliases), lower-cased, from character_info.csv."""
    frame = pd.read_csv(folder / "character_info.csv", keep_default_na=False)
    aliases: dict[str, set[str]] = {}
    for row in frame.itertuples():
        names = ast.literal_eval(row.Aliases) if row.Aliases else set()
        aliases[row[2]] = {name.lower() for name in names} | {row[2].lower()}
    return aliases


def _same_person(one: str, other: str) -> bool:
    """True when a name shares a word other than a title and "the" with another ("Sikes", "Bill Sikes"),
    and their titles, where both have one, agree ("Mrs. Bennet" is not "Mr. Bennet")."""
    a, b = set(words(one)) - {"the"}, set(words(other)) - {"the"}
    titles = a & TITLE_WORDS, b & TITLE_WORDS
    return bool((a - TITLE_WORDS) & (b - TITLE_WORDS)) and not (all(titles) and not titles[0] & titles[1])


def names_speaker(name: str, speaker: str, aliases: dict[str, set[str]]) -> bool:
    names = aliases.get(speaker) or aliases.get(speaker.split(" - ")[0], set())  # "Christopher Robin - Story"
    return any(_same_person(name, other) for other in names | {speaker})


def speaker_precision(
    utterances: list[Utterance], gold: list[Gold], aliases: dict[str, set[str]]
) -> tuple[float, float]:
    """How often a named speaker is the annotated one, and the share of matched utterances named.

    Only matched utterances count, and not the narrator's "I" (PDNC names the narrator by character).
    A name is right when it names one of the speaker's names (_same_person)."""
    right = named = matched = 0
    for utterance, match in zip(utterances, align(utterances, gold)):
        if match is None:
            continue
        matched += 1
        if not utterance.speaker or utterance.speaker == "I":
            continue
        named += 1
        right += names_speaker(utterance.speaker, gold[match[0]].speaker, aliases)
    return right / max(named, 1), named / max(matched, 1)


def speaker_accuracy(utterances: list[Utterance], gold: list[Gold], aliases: dict[str, set[str]]) -> dict[str, float]:
    """The share of all gold quotations whose covering utterance names the annotated speaker, overall and
    per PDNC quoteType ("Explicit", "Anaphoric", "Implicit"); a quotation no utterance matches counts as missed."""
    right = [False] * len(gold)
    for utterance, match in zip(utterances, align(utterances, gold)):
        if match and utterance.speaker and utterance.speaker != "I":
            for g in range(match[0], match[1] + 1):
                right[g] = names_speaker(utterance.speaker, gold[g].speaker, aliases)
    accuracy = {"all": sum(right) / max(len(gold), 1)}
    for kind in ("Explicit", "Anaphoric", "Implicit"):
        of_kind = [ok for ok, g in zip(right, gold) if g.kind == kind]
        accuracy[kind] = sum(of_kind) / max(len(of_kind), 1)
    return accuracy
