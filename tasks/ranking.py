"""Step 2c: a speaker for turns the sieve leaves unknown, by a learned score of the people nearby.

The sieve (tasks/speakers.py) names a turn only where one rule is sure. For each turn it leaves
unnamed, the people who speak within NEAR_TURNS turns of it in its conversation are scored on
FEATURES: where they speak relative to it (the turn before and after are someone else's; two
turns away, with no narration between, alternation), whether the attribution's pronoun or
description fits their gender, whether the speeches around call them by name, whether the
narration around names them. The choice of no one is scored too (NULL_FEATURES: how many
people, whether the attribution said anything). The softmax of the scores gives each a
probability, and the likeliest person is named (speaker_source "ranked") where it reaches
CONFIDENCE. WEIGHTS are a conditional logit fit on the ten shared PDNC novels by
benchmarks/fit_speaker_ranker.py, which also reports them novel by novel, each scored by weights
fit on the other nine.
"""

import math
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.speakers import addressed_in, adjacent, attributed_gender, mentions, speaker_turns
from tasks.tables import Utterance, with_speaker

if TYPE_CHECKING:  # tasks/characters.py calls rank_speakers
    from tasks.characters import Character

RANKED = "ranked"
NEAR_TURNS, NEAR_PARAGRAPHS = 8, 24  # who counts as nearby: turns either side, in paragraphs at most
# the narration read for names: back to the last speech (this many characters at most), its end, and after
NARRATION_BACK, NARRATION_LAST, NARRATION_AFTER = 600, 150, 200
# the probability a name needs: leaving each novel out in turn, 0.6 named 549 quotes more on the ten, 79%
# right; 0.5 named 938, 71% right; 0.7 named 296, 86% right
CONFIDENCE = 0.6
FEATURES = (
    "before",  # they speak the turn before
    "after",  # ... the turn after
    "alternating_before",  # two turns before, the turn between answering with no narration between
    "alternating_after",
    "gender_fits",  # the attribution's "she" or "the lady" fits their gender
    "gender_differs",
    "called_here",  # the turn's speech calls them by name
    "called_before",  # ... the turn before's
    "called_after",
    "in_narration",  # the narration since the last speech names them
    "in_last_narration",  # ... its last NARRATION_LAST characters
    "in_narration_after",  # the narration just after the turn's first speech
    "people",  # log of how many people speak nearby (the same for each: it weighs them against no one)
    "turns",  # how many of the nearby turns are theirs
)
NULL_FEATURES = (
    "no_one",
    "no_one_answering",  # the turn answers the one before with no narration between
    "no_one_answered",  # ... the turn after answers it so
    "no_one_people",  # log of one more than the people nearby
    "no_one_gendered",  # the attribution gives a gender
    "no_one_described",  # the attribution gives a pronoun or description
    "no_one_but_one",  # one person nearby
)
# fit on the ten PDNC novels, straight quotes (benchmarks/fit_speaker_ranker.py)
WEIGHTS = {
    "before": -0.613,
    "after": -0.881,
    "alternating_before": 0.877,
    "alternating_after": 0.742,
    "gender_fits": 0.767,
    "gender_differs": -1.325,
    "called_here": -1.357,
    "called_before": 1.378,
    "called_after": 0.807,
    "in_narration": 0.632,
    "in_last_narration": 0.188,
    "in_narration_after": -0.315,
    "people": 0.324,
    "turns": 0.094,
    "no_one": 0.138,
    "no_one_answering": -0.11,
    "no_one_answered": 0.046,
    "no_one_people": -0.1,
    "no_one_gendered": -0.617,
    "no_one_described": 1.41,
    "no_one_but_one": 0.358,
}


@dataclass(frozen=True, slots=True)
class Choice:
    turn: list[int]  # the indices of the turn's utterances (tasks/speakers.py, speaker_turns)
    names: list[str]  # the people nearby, canonical names
    rows: list[list[float]]  # each one's FEATURES, then no one's NULL_FEATURES as the last row


def choices(utterances: list[Utterance], cast: list["Character"], text: str) -> list[Choice]:
    """For each turn with no speaker and someone speaking nearby, the people nearby and their features.
    The utterances name their speakers by the cast's canonical names (characters.speakers_of)."""
    turns = speaker_turns(utterances)
    speaker = [next((utterances[i].speaker for i in m if utterances[i].speaker not in ("", "I")), "") for m in turns]
    aliases = {c.character: set(c.aliases) | {c.character} for c in cast}
    gender = {c.character: c.gender for c in cast}
    scene = [utterances[m[0]].scene for m in turns]
    paragraph = [utterances[m[0]].paragraph for m in turns]
    found = []
    for t, members in enumerate(turns):
        if speaker[t]:
            continue
        first, last = utterances[members[0]], utterances[members[-1]]
        near = _nearby(t, speaker, scene, paragraph)
        if not near:
            continue
        names = sorted({speaker[k] for k in near})
        said = next((utterances[i].subject.lower() for i in members if utterances[i].subject), "")
        said_gender = attributed_gender(said) if said else ""
        answering = t > 0 and adjacent(utterances[turns[t - 1][-1]], first)
        answered = t + 1 < len(turns) and adjacent(last, utterances[turns[t + 1][0]])
        called = [_called(k, turns, utterances, first) for k in (t, t - 1, t + 1)]
        since = utterances[members[0] - 1].end if members[0] and utterances[members[0] - 1].scene == first.scene else 0
        narration = text[max(since, first.start - NARRATION_BACK) : max(first.start - 1, 0)]
        following = members[-1] + 1 < len(utterances) and utterances[members[-1] + 1].start
        after = text[first.end + 1 : min(first.end + NARRATION_AFTER, following or len(text))]
        rows = []
        for name in names:
            theirs = {k - t for k in near if speaker[k] == name}
            own, sex = aliases.get(name, {name}), gender.get(name, "")
            rows.append(
                [
                    -1 in theirs,
                    1 in theirs,
                    -2 in theirs and answering,
                    2 in theirs and answered,
                    bool(said_gender) and sex == said_gender,
                    bool(said_gender and sex) and sex != said_gender,
                    *(bool(c & own) for c in called),
                    _names(narration, own),
                    _names(narration[-NARRATION_LAST:], own),
                    _names(after, own),
                    math.log(len(names)),
                    len(theirs),
                ]
                + [0.0] * len(NULL_FEATURES)
            )
        no_one = [1, answering, answered, math.log1p(len(names)), bool(said_gender), bool(said), len(names) == 1]
        rows.append([0.0] * len(FEATURES) + no_one)
        found.append(Choice(members, names, [[float(x) for x in row] for row in rows]))
    return found


def _nearby(t: int, speaker: list[str], scene: list[int], paragraph: list[int]) -> list[int]:
    """The named turns within NEAR_TURNS of t, in its scene and within NEAR_PARAGRAPHS paragraphs
    (scene, paragraph: each turn's first utterance's)."""
    at, where = scene[t], paragraph[t]
    return [
        k
        for k in range(max(t - NEAR_TURNS, 0), min(t + NEAR_TURNS + 1, len(speaker)))
        if speaker[k] and k != t and scene[k] == at and abs(paragraph[k] - where) <= NEAR_PARAGRAPHS
    ]


def _called(k: int, turns: list[list[int]], utterances: list[Utterance], here: Utterance) -> frozenset[str]:
    """The names turn k's speech calls someone by, if it is in here's conversation; else none."""
    if not 0 <= k < len(turns):
        return frozenset()
    first = utterances[turns[k][0]]
    if first.scene != here.scene or abs(first.paragraph - here.paragraph) > NEAR_PARAGRAPHS:
        return frozenset()
    return addressed_in(k, turns, utterances)


def _names(narration: str, aliases: set[str]) -> bool:
    """True when the narration has one of the names as whole words ("Eliza" is not in "Elizabeth")."""
    return any(mentions(narration, a) for a in aliases)


def probabilities(rows: list[list[float]], weights: dict[str, float]) -> list[float]:
    """The softmax of the rows' scores under the weights (named by FEATURES + NULL_FEATURES)."""
    w = [weights.get(name, 0.0) for name in FEATURES + NULL_FEATURES]
    scores = [sum(map(operator.mul, row, w)) for row in rows]
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    return [e / sum(exps) for e in exps]


def rank_speakers(
    utterances: list[Utterance], cast: list["Character"], text: str, weights: dict[str, float] = WEIGHTS
) -> list[Utterance]:
    """The utterances with the likeliest nearby person named for each unnamed turn where the
    probability reaches CONFIDENCE (speaker_source "ranked")."""
    named = list(utterances)
    for choice in choices(utterances, cast, text):
        p = probabilities(choice.rows, weights)[:-1]
        best = max(range(len(p)), key=p.__getitem__)
        if p[best] >= CONFIDENCE:
            for i in choice.turn:
                named[i] = with_speaker(utterances[i], choice.names[best], RANKED)
    return named
