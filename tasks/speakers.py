"""Step 2b: who speaks. A speaker for the utterances the text supports one for, and how it was found.

A sieve over a book's utterances, surest rule first; a later rule never overrides an earlier one,
and nothing is guessed where no rule applies (a wrong name is worse than none):

- explicit: the attribution beside the quote names the speaker ("said Elizabeth"), as extraction
  found it;
- continuation: another utterance of the same speaker turn has a speaker;
- turn: in an exchange of two people, turns alternate: a turn between two turns of one speaker,
  or two turns after a speaker with someone else between, is that speaker's (or the other's),
  as long as all three are in one conversation, in consecutive paragraphs (narration between
  two quotes may bring in someone else);
- anaphoric: "she said": the one speaker of the conversation, nearby, of that gender (the cast's,
  tasks/characters.py), other than whoever spoke the turn before; then alternation again.
"""

from dataclasses import replace

from tasks.attribution import addressees
from tasks.tables import Utterance

EXPLICIT, CONTINUATION, TURN, ANAPHORIC = "explicit", "continuation", "turn", "anaphoric"
# "A B ? she said": the pronoun names the speaker two turns back when of that gender (the one before is
# the other party). On the PDNC novels, 2 turns back: names 93.5% right; 3: 93.0%; 6: 92.6%
RECENT = 2
PRONOUN_GENDER = {"he": "M", "she": "F", "il": "M", "elle": "F", "er": "M", "sie": "F"}
ROUNDS = 6  # alternation spreads a known speaker this many turns at most
# turns either side where a third speaker rules alternation out: on the PDNC novels, 3 gives named
# speakers 95% right against 90% with no such check, 96% with 6 (and far fewer named)
WINDOW = 3
TITLES = {"mr", "mrs", "miss", "ms", "dr", "sir", "lady", "lord", "the", "m", "mme", "madame", "monsieur"}


def _two_people(a: str, b: str) -> bool:
    """True when two names cannot be one person's: no word in common but titles ("Elizabeth" and "Miss
    Elizabeth Bennet" may be one; "Mr. Bennet" and "Mrs. Bennet" are two)."""
    words = lambda name: set(name.lower().replace(".", " ").split())  # noqa: E731
    x, y = words(a), words(b)
    if x & y - TITLES:
        return bool((x & TITLES) and (y & TITLES) and not (x & y & TITLES))
    return True


def _turns(utterances: list[Utterance]) -> list[list[int]]:
    """Indices of the utterances of each speaker turn, in order."""
    turns: list[list[int]] = []
    for i, u in enumerate(utterances):
        if turns and utterances[turns[-1][-1]].turn == u.turn:
            turns[-1].append(i)
        else:
            turns.append([i])
    return turns


def _adjacent(a: Utterance, b: Utterance) -> bool:
    """True when b answers a with no paragraph of narration between (one conversation, next paragraph)."""
    return a.scene == b.scene and b.paragraph - a.paragraph <= 1


def _same_talk(a: Utterance, b: Utterance) -> bool:
    """True when two utterances are near enough to be of one conversation (same scene, a few paragraphs apart)."""
    return a.scene == b.scene and abs(a.paragraph - b.paragraph) <= 2 * WINDOW


def assign_speakers(utterances: list[Utterance], genders: dict[str, str] | None = None) -> list[Utterance]:
    """The utterances with the speakers the sieve finds, and each one's speaker_source ("" where none).
    genders: the cast's, by name ("F", "M"); without them, no pronoun is resolved."""
    turns = _turns(utterances)
    # explicit: a turn is the speaker's whom one of its utterances' attributions names
    speaker = [next((utterances[i].speaker for i in members if utterances[i].speaker), "") for members in turns]
    source = [EXPLICIT if name else "" for name in speaker]
    _spread(turns, speaker, source, utterances)
    if genders:
        found = [
            (t, name)
            for t in range(len(turns))
            if not speaker[t] and (name := _anaphor(t, turns, speaker, utterances, genders))
        ]
        for t, name in found:
            speaker[t], source[t] = name, ANAPHORIC
        _spread(turns, speaker, source, utterances)
    out = []
    for t, members in enumerate(turns):
        for i in members:
            own = utterances[i].speaker
            how = EXPLICIT if own else (CONTINUATION if source[t] == EXPLICIT else source[t])
            out.append(replace(utterances[i], speaker=own or speaker[t], speaker_source=how))
    return out


def _spread(turns: list[list[int]], speaker: list[str], source: list[str], utterances: list[Utterance]) -> None:
    """Alternation, in rounds: each spreads the known speakers one turn further."""
    unknown = [t for t in range(len(turns)) if not speaker[t]]
    for _ in range(ROUNDS):
        found = [(t, name) for t in unknown if not speaker[t] and (name := _alternate(t, turns, speaker, utterances))]
        for t, name in found:
            speaker[t], source[t] = name, TURN
        # only the turns beside a new name can change in the next round
        unknown = sorted({t + d for t, _ in found for d in (-2, -1, 1, 2) if 0 <= t + d < len(turns)})
        if not found:
            return


def _anaphor(t: int, turns: list[list[int]], speaker: list[str], utterances: list[Utterance], genders: dict) -> str:
    """Turn t's speaker when its attribution is a pronoun: the one nearby speaker of that gender, not the last one."""
    pronoun = next((utterances[i].subject.lower() for i in turns[t] if utterances[i].subject), "")
    gender = PRONOUN_GENDER.get(pronoun)
    if not gender:
        return ""
    here = utterances[turns[t][0]]
    last = speaker[t - 1] if t and _same_talk(here, utterances[turns[t - 1][0]]) else ""
    near = range(max(t - RECENT, 0), t)  # who has just spoken: the pronoun refers back
    candidates = {
        speaker[k]
        for k in near
        if speaker[k] and genders.get(speaker[k]) == gender and _same_talk(here, utterances[turns[k][0]])
    }
    candidates = {name for name in candidates if not last or _two_people(name, last)}
    return candidates.pop() if len(candidates) == 1 else ""


def _alternate(t: int, turns: list[list[int]], speaker: list[str], utterances: list[Utterance]) -> str:
    """Turn t's speaker by alternation (A B ? or ? B A gives A), or "" when the exchange may not be two people's."""
    here = utterances[turns[t][0]]
    nearby = {
        speaker[k]
        for k in range(max(t - WINDOW, 0), min(t + WINDOW + 1, len(turns)))
        if speaker[k] and _same_talk(here, utterances[turns[k][0]])
    }
    if len(nearby) > 2:
        return ""  # a third person nearby: who speaks is not a matter of alternation
    for a, b, other in ((t - 2, t - 1, t + 1), (t + 2, t + 1, t - 1)):
        if not (0 <= a < len(turns) and speaker[a] and speaker[b] and _two_people(speaker[a], speaker[b])):
            continue
        if 0 <= other < len(turns) and speaker[other] and not _two_people(speaker[other], speaker[a]):
            continue  # A B ? A: not A twice running
        if speaker[a] in addressees(" ".join(utterances[i].text for i in turns[t])):
            continue  # "..., Elizabeth?" is not Elizabeth speaking
        lo, mid, hi = sorted((a, b, t))
        chain = (
            utterances[turns[lo][-1]],
            utterances[turns[mid][0]],
            utterances[turns[mid][-1]],
            utterances[turns[hi][0]],
        )
        if _adjacent(chain[0], chain[1]) and _adjacent(chain[2], chain[3]):
            return speaker[a]
    return ""
