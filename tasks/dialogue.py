"""Step 2: extract whole utterances from a novel, whatever its quoting convention.

Each book's convention is detected from the text: paired marks (straight or curly double
quotes, curly or straight single quotes where the closing mark is also the apostrophe,
«guillemets», »reversed guillemets«), paragraphs opened by a dash (em-dash, French "--"),
or a play's "NAME." headings. Within one paragraph, the quoted parts make one utterance
(one speaker's turn, attribution between them removed); a paragraph that leaves its quote
open and is followed by one that opens again continues the same speech.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prefect import task

from tasks.attribution import cut_incises, find_speaker
from tasks.cache import PARQUET_INPUTS
from tasks.errors import ExtractionError
from tasks.tables import BOOKS, UTTERANCES, StoredTable, read_table, write_table

log = logging.getLogger(__name__)

PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
SCENE_BREAK = re.compile(
    r"(?:CHAPTER|Chapter|BOOK|Book|PART|Part|VOLUME|Volume|ACT|SCENE|STAVE|Stave|KAPITEL|CHAPITRE|Chapitre)\b.{0,60}"
    r"|[IVXLCDM]+\.?|\d+\.?|[\s*.·~=_-]+",
)
DASH_OPENER = re.compile(r"[ \t]*(?:—|―|--|–\s)\s*")
PLAY_HEADING = re.compile(r"[ \t]*([A-Z][A-Z’'. -]{0,40}[A-Z])\.(?:\s+|$)")
STAGE_DIRECTION = re.compile(r"\[[^\]]*\]")
OPENERS_BEFORE = " \t\n([{—–-‘“«»\"'"  # a straight quote after one of these opens a quotation
CLOSE_PUNCT = ".,!?;:—–-…"  # a closing single quote after one of these is a quote, not an apostrophe
OPEN, CLOSE, WEAK = 0, 1, 2  # WEAK: a closing single quote that may be an apostrophe ("Bennets’ carriage")

# The marks each paired convention uses: (characters to scan, opener, closer).
QUOTES = {
    "double-curly": ("“”", "“", "”"),
    "double-straight": ('"', None, None),
    "single-curly": ("‘’", "‘", "’"),
    "single-straight": ("'", None, None),
    "guillemets": ("«»", "«", "»"),
    "guillemets-reversed": ("»«", "»", "«"),
}


@dataclass(frozen=True, slots=True)
class Utterance:
    book_id: int
    index: int  # position among the book's utterances
    paragraph: int  # paragraph where it starts
    scene: int  # chapter or scene breaks before it
    start: int  # character offsets of the speech in the text (first and last quoted character)
    end: int
    text: str  # the spoken words, attribution removed, whitespace folded
    speaker: str  # as the text names it, "" when unknown


@dataclass(frozen=True, slots=True)
class Convention:
    quote: str | None  # a key of QUOTES, or None
    dashes: bool  # paragraphs opened by a dash are speech
    play: bool  # paragraphs opened by "NAME." are speech

    def __str__(self) -> str:
        parts = [self.quote or ""] + ["dashes"] * self.dashes + ["play"] * self.play
        return "+".join(p for p in parts if p) or "none"


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the non-blank paragraphs."""
    spans, pos = [], 0
    for match in PARAGRAPH_BREAK.finditer(text):
        if text[pos : match.start()].strip():
            spans.append((pos, match.start()))
        pos = match.end()
    if text[pos:].strip():
        spans.append((pos, len(text)))
    return spans


def detect_convention(text: str, paragraphs: list[tuple[int, int]]) -> Convention:
    """The book's dialogue marks, from how often each kind appears."""
    starts = Counter()
    for s, e in paragraphs:
        head = text[s : min(e, s + 45)]
        starts["dash"] += bool(DASH_OPENER.match(head))
        starts["play"] += bool(PLAY_HEADING.match(head)) and head.lstrip()[:1].isupper()
    counts = {
        "double-curly": text.count("“"),
        "double-straight": text.count('"') // 2,
        "single-curly": text.count("‘"),
        "single-straight": len(re.findall(r"(?:^|(?<=\s))'(?=[A-Z])", text, re.MULTILINE)),
        "guillemets": len(re.findall(r"«(?=\s?\w)", text)),
        "guillemets-reversed": len(re.findall(r"»(?=\w)", text)),
    }
    quote, count = max(counts.items(), key=lambda kv: kv[1])
    paragraphs_count = max(len(paragraphs), 1)
    play = starts["play"] > 0.2 * paragraphs_count
    dashes = starts["dash"] > max(10, 0.02 * paragraphs_count)
    if count == 0 or (play and count < starts["play"]) or (dashes and count < starts["dash"] / 20):
        quote = None
    return Convention(quote, dashes, play)


def _marks(text: str, start: int, end: int, quote: str) -> list[tuple[int, int]]:
    """(position, OPEN/CLOSE/WEAK) of the quote marks between start and end."""
    chars, opener, closer = QUOTES[quote]
    single = quote.startswith("single")
    marks = []
    for pos in range(start, end):  # a plain loop over a paragraph is fast enough: see benchmarks
        ch = text[pos]
        if ch not in chars:
            continue
        before = text[pos - 1] if pos > start else " "
        after = text[pos + 1] if pos + 1 < end else " "
        if opener is not None and ch == opener and not (single and before.isalnum()):
            # "think--“ (for": an opening mark after a word and before a space closes (dash-ended speech)
            marks.append((pos, CLOSE if after.isspace() and not before.isspace() else OPEN))
        elif single and before.isalnum() and after.isalnum():
            continue  # don’t
        elif opener is None and before in OPENERS_BEFORE and not after.isspace():
            marks.append((pos, OPEN))
        elif not single:
            marks.append((pos, CLOSE))
        elif not before.isspace():
            marks.append((pos, CLOSE if before in CLOSE_PUNCT or before in '”"' else WEAK))
    return marks


def _quoted_spans(text: str, paragraphs: list[tuple[int, int]], quote: str) -> list[list[tuple[int, int]]]:
    """Per paragraph, the (start, end) of each quoted part; a speech left open continues
    into the next paragraph only when that one opens a quote too."""
    spans: list[list[tuple[int, int]]] = [[] for _ in paragraphs]
    marks_by_par = [_marks(text, s, e, quote) for s, e in paragraphs]
    for i, (_, p_end) in enumerate(paragraphs):
        open_at, weak = None, []
        for pos, kind in marks_by_par[i]:
            if kind == OPEN:
                if open_at is not None:  # a new quote before the last one closed
                    spans[i].append((open_at, weak[-1] if weak else pos))
                open_at, weak = pos + 1, []
            elif open_at is not None and kind == CLOSE:
                spans[i].append((open_at, pos))
                open_at, weak = None, []
            elif open_at is not None:
                weak.append(pos)
        if open_at is None:
            continue
        next_opens = (
            i + 1 < len(paragraphs)
            and marks_by_par[i + 1][:1]
            and marks_by_par[i + 1][0][1] == OPEN
            and not text[paragraphs[i + 1][0] : marks_by_par[i + 1][0][0]].strip()
        )
        if weak and (not text[weak[-1] + 1 : p_end].strip() or not next_opens):
            spans[i].append((open_at, weak[-1]))
        else:  # runs on into the next paragraph, or the printer left it open: end at the paragraph
            spans[i].append((open_at, p_end))
            if next_opens:
                spans[i + 1].insert(0, (-1, -1))  # marker: continues the previous paragraph's speech
    return spans


def _fold(s: str) -> str:
    return " ".join(s.split())


def _clean(parts: list[str]) -> str:
    return _fold(" ".join(parts)).rstrip(",;: ").lstrip()


def _speech_of_paragraph(text: str, s: int, e: int, conv: Convention, spans: list[tuple[int, int]]):
    """(start, end, text, speaker, continues) of a paragraph's speech, or None."""
    continues = bool(spans) and spans[0] == (-1, -1)
    parts = [(a, b) for a, b in spans if a >= 0 and text[a:b].strip()]
    if parts:
        narration = text[parts[0][1] + 1 : parts[1][0] - 1 if len(parts) > 1 else e]
        speaker = find_speaker(narration) or find_speaker(text[s : parts[0][0]][-60:] + " ")
        return parts[0][0], parts[-1][1], _clean([text[a:b] for a, b in parts]), speaker, continues
    head = text[s:e]
    if conv.dashes and (dash := DASH_OPENER.match(head)):
        speech, speaker = cut_incises(_fold(head[dash.end() :]))
        return s + dash.end(), e, speech.rstrip(",;: "), speaker, False
    if conv.play and (heading := PLAY_HEADING.match(head)):
        speech = _fold(STAGE_DIRECTION.sub(" ", head[heading.end() :]))
        return (s + heading.end(), e, speech, heading.group(1).title(), False) if speech else None
    return None


def extract_utterances(text: str, book_id: int = 0) -> list[Utterance]:
    """The book's utterances in reading order; an empty list when it has no dialogue."""
    paragraphs = split_paragraphs(text)
    conv = detect_convention(text, paragraphs)
    spans = _quoted_spans(text, paragraphs, conv.quote) if conv.quote else [[] for _ in paragraphs]
    utterances: list[Utterance] = []
    scene, heading_speaker = 0, ""
    for i, (s, e) in enumerate(paragraphs):
        if SCENE_BREAK.fullmatch(text[s:e].split("\n", 1)[0].strip()) and e - s < 200:
            scene += 1
            continue
        if conv.play and (h := PLAY_HEADING.fullmatch(text[s:e].strip() + " ")):
            heading_speaker = h.group(1).title()
            continue
        found = _speech_of_paragraph(text, s, e, conv, spans[i])
        if found is None and heading_speaker:  # the speech under a play's heading
            speech = _fold(STAGE_DIRECTION.sub(" ", text[s:e]))
            found = (s, e, speech, heading_speaker, False) if speech else None
        heading_speaker = ""
        if found is None or not found[2]:
            continue
        start, end, speech, speaker, continues = found
        if continues and utterances:
            last = utterances.pop()
            utterances.append(
                Utterance(
                    book_id,
                    last.index,
                    last.paragraph,
                    last.scene,
                    last.start,
                    end,
                    f"{last.text} {speech}",
                    last.speaker or speaker,
                )
            )
        else:
            utterances.append(Utterance(book_id, len(utterances), i, scene, start, end, speech, speaker))
    log.debug("book %d: convention %s, %d utterances", book_id, conv, len(utterances))
    return utterances


@task(name="extract-utterances", task_run_name="extract-{book_id}", cache_policy=PARQUET_INPUTS, persist_result=True)
def extract_utterances_task(book_id: int, book: StoredTable, out_dir: Path) -> StoredTable:
    """02_utterances/<book_id>.parquet (UTTERANCES)."""
    row = read_table(book.path, BOOKS).iloc[0]
    utterances = extract_utterances(row["text"], book_id)
    if not utterances:
        raise ExtractionError(
            f"book {book_id} ({row['title'] or 'untitled'}): no dialogue found; it may be a book without quoted speech"
        )
    log.info("book %d: %d utterances", book_id, len(utterances))
    return write_table(utterances, out_dir / f"{book_id}.parquet", UTTERANCES)
