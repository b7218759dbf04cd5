"""Step 3: pair consecutive utterances of one conversation into (prompt, response) examples.

A conversation ends at a chapter or scene break, or when more than `max_gap` characters of
narration separate two utterances. Two utterances of one speaker turn (see Utterance.turn), or two
that the text gives to the same named speaker, are one speaker going on, never a pair; nor are two
quotes side by side in one paragraph that the text does not give to two named speakers.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from prefect import task

from tasks.cache import PARQUET_INPUTS
from tasks.config import CorpusConfig
from tasks.tables import PAIRS, StoredFile, Utterance, utterances_from_table, write_table

log = logging.getLogger(__name__)
# Quotes of one paragraph this close (a closing mark, a space, an opening one) are side by side with no
# narration between: a crowd's cries or one speaker's, not an exchange, unless the text names both. An
# exchange inside a paragraph is told by narration ('..." he suggested to her, who replied: "...'). On the
# PDNC novels, 33 such pairs were 6% right.
JUXTAPOSED = 6


@dataclass(frozen=True, slots=True)
class Pair:
    book_id: int
    conversation_id: int  # unique within the book
    prompt_index: int  # Utterance.index of the prompt; the response is the next utterance
    prompt: str
    response: str
    prompt_speaker: str
    response_speaker: str


def same_conversation(a: Utterance, b: Utterance, max_gap: int) -> bool:
    """True when b follows a in one conversation: same scene, little narration between."""
    return a.scene == b.scene and b.start - a.end <= max_gap


def is_reply(a: Utterance, b: Utterance) -> bool:
    """True when b answers a rather than continuing a's speech (or joining a crowd's cries)."""
    if a.turn == b.turn or a.speaker and a.speaker == b.speaker:
        return False
    return not (a.paragraph == b.paragraph and b.start - a.end <= JUXTAPOSED) or bool(a.speaker and b.speaker)


def pair_utterances(utterances: list[Utterance], max_gap: int = CorpusConfig.max_gap) -> list[Pair]:
    """(prompt, response) pairs of consecutive utterances that answer each other."""
    pairs, conversation = [], 0
    for a, b in zip(utterances, utterances[1:]):
        if not same_conversation(a, b, max_gap):
            conversation += 1
        elif is_reply(a, b):
            pairs.append(Pair(a.book_id, conversation, a.index, a.text, b.text, a.speaker, b.speaker))
    return pairs


@task(
    name="pair-utterances",
    task_run_name="pair-{book_id}",
    cache_policy=PARQUET_INPUTS,
    persist_result=True,
)
def pair_utterances_task(book_id: int, utterances: StoredFile, max_gap: int, out_dir: Path) -> StoredFile:
    """03_pairs/<book_id>.parquet (PAIRS); the utterances name speakers by their characters already."""
    pairs = pair_utterances(utterances_from_table(utterances.path), max_gap)
    log.info("book %d: %d pairs", book_id, len(pairs))
    return write_table(pairs, out_dir / f"{book_id}.parquet", PAIRS)
