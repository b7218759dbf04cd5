"""Step 2b: who speaks. A speaker for the utterances the text supports one for, and how it was found.

A sieve over a book's utterances, surest rule first; a later rule never overrides an earlier one,
and nothing is guessed where no rule applies (a wrong name is worse than none):

- explicit: the attribution beside the quote names the speaker ("said Elizabeth"), as extraction
  found it;
- continuation: another utterance of the same speaker turn has a speaker;
- turn: in an exchange of two people, turns alternate: a turn between two turns of one speaker,
  or two turns after a speaker with someone else between, is that speaker's (or the other's),
  as long as all three are in one conversation, in consecutive paragraphs (narration between
  two quotes may bring in someone else).
"""

from dataclasses import replace

from tasks.dialogue import Utterance

EXPLICIT, CONTINUATION, TURN = "explicit", "continuation", "turn"
ROUNDS = 6  # alternation spreads a known speaker this many turns at most


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


def assign_speakers(utterances: list[Utterance]) -> tuple[list[Utterance], list[str]]:
    """The utterances with the speakers the sieve finds, and each one's source ("" where none)."""
    turns = _turns(utterances)
    speaker: list[str] = []
    source: list[str] = []
    for members in turns:  # explicit, then the rest of the turn
        named = next((utterances[i].speaker for i in members if utterances[i].speaker), "")
        speaker.append(named)
        source.append(EXPLICIT if named else "")
    for _ in range(ROUNDS):
        changed = False
        for t in range(len(turns)):
            if speaker[t]:
                continue
            first = lambda k: utterances[turns[k][0]]  # noqa: E731
            last = lambda k: utterances[turns[k][-1]]  # noqa: E731
            # ... A B ? : the turn before last; ? B A ... : the turn after next
            for a, b in ((t - 2, t - 1), (t + 2, t + 1)):
                if not (0 <= a < len(turns) and speaker[a] and speaker[b] and speaker[a] != speaker[b]):
                    continue
                lo, mid, hi = sorted((a, b, t))
                if _adjacent(last(lo), first(mid)) and _adjacent(last(mid), first(hi)):
                    speaker[t], source[t] = speaker[a], TURN
                    changed = True
                    break
        if not changed:
            break
    out, sources = [], []
    for t, members in enumerate(turns):
        for i in members:
            u = utterances[i]
            own = u.speaker
            out.append(replace(u, speaker=own or speaker[t]))
            sources.append(EXPLICIT if own else (CONTINUATION if source[t] == EXPLICIT else source[t]))
    return out, sources
