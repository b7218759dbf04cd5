"""Step 2: extract whole utterances from a novel, whatever its quoting convention.

Each book's convention is detected from the text: paired marks (straight or curly double
quotes, curly or straight single quotes where the closing mark is also the apostrophe,
«guillemets», »reversed guillemets«), paragraphs opened by a dash (em-dash, French "--"),
or a play's "NAME." headings. Within one paragraph, one speaker's quoted parts make one
utterance (attribution and narration between them removed); a paragraph that leaves its quote
open and is followed by one that opens again continues the same speech. A speaker an attribution
names again after some narration ("said Alice." ... "said Alice.") goes on with the same speech; one
the text says goes on ("she added", or a paragraph "He continued,"), or who calls the same person by
name across narration, takes up the same turn in a new utterance; a speech longer than
MAX_UTTERANCE goes on in further utterances of its turn.
Letters, songs and poems (quoted or set off by indentation), words only written or meant, and
words the narrator quotes are not speech; the narrator's stage directions inside a speech
("--(rather hesitatingly)--") are cut from it.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from prefect import task
from prefect.cache_policies import INPUTS

from tasks.attribution import (
    ATTRIBUTION,
    INTRODUCTION,
    NOT_AFTER_TITLE,
    ROLE_MENTIONS,
    SENTENCE_END,
    SUBJECT,
    VERBS,
    actor_of,
    addressees,
    alternation,
    attribute,
    beat_speaker,
    cut_incises,
    find_subject,
    is_role,
    name_in,
    subject_before,
    subject_of,
)
from tasks.cache import ModuleSource
from tasks.characters import speakers_of, title_gender
from tasks.errors import ExtractionError
from tasks.speakers import PRONOUN_GENDER, different_people
from tasks.tables import (
    BOOKS,
    CHARACTERS,
    UTTERANCES,
    BookDialogue,
    StoredFile,
    Utterance,
    read_table,
    with_speaker,
    write_table,
)

log = logging.getLogger(__name__)

PARAGRAPH_BREAK = re.compile(r"\n(?:[ \t]*\n)+")  # all the blank lines between two paragraphs
SCENE_BREAK = re.compile(
    r"(?:CHAPTER|Chapter|BOOK|Book|PART|Part|VOLUME|Volume|ACT|SCENE|STAVE|Stave|KAPITEL|CHAPITRE|Chapitre)\b.{0,60}"
    r"|[IVXLCDM]+\.?|\d+\.?|[\s*.·~=_-]+",
)
INDENTED_BLOCK = re.compile(r"(?:[ \t]+\S[^\n]*(?:\n|$)|[ \t]*\n)+")  # every line indented
# A letter read out or copied into the text: from "Dear Sir," to "Yours sincerely," and the signature.
SALUTATION = re.compile(
    r"^\W{0,2}(?:My\s+|MY\s+)?(?:Dear|DEAR|Dearest|DEAREST|Darling)\b[^.!?\n]{0,40},\W{0,2}\s*$", re.MULTILINE
)
VALEDICTION = re.compile(
    r"\W{0,2}(?:(?:Yours|YOURS|Ever\s+your|Believe\s+me|Affectionately|Sincerely|Faithfully)\b"
    r"|Your\s+(?:\w+\s+){0,3}\w+,)"  # "Your obliged and affectionate Son,"
)
DASH_OPENER = re.compile(r"[ \t]*(?:—|―|--|–\s)\s*")
PLAY_HEADING = re.compile(r"[ \t]*([A-Z][A-Z’'. -]{0,40}[A-Z])\.(?:\s+|$)")
STAGE_DIRECTION = re.compile(r"\[[^\]]*\]")
MID_SENTENCE = set("abcdefghijklmnopqrstuvwxyz,;")  # what comes before a word inside a sentence
BOOK_LENGTH = 20_000  # characters: the shortest text whose capitals tell a name from a sentence's first word
# A sentence of narration starting between two quotes ("... he jumped out. She leaned ..."); not "Mr. Darcy".
NARRATION_SENTENCE = re.compile(rf"[.!?;]{NOT_AFTER_TITLE}\s+[A-Z]")
OPENERS_BEFORE = " \t\n([{—–-‘“«»\"'"  # a straight quote after one of these opens a quotation
CLOSE_PUNCT = ".,!?;:—–-…_)*"  # a closing single quote after one of these is a quote, not an apostrophe
# A turn longer than this goes on in a new utterance of the same turn, at a paragraph or quote
# boundary: a reply answers the end of a long speech, and a training example holds about this much.
MAX_UTTERANCE = 2000
SAME_TURN_GAP = 1500  # characters of narration after which the same speaker speaks in a new turn
# An attribution saying the speaker goes on ("she went on", "continued Mr. Collins").
RESUMES = re.compile(r"\b(?:continued|went on|added|resumed|pursued|persisted)\b")
# Words whose first letters the apostrophe stands for ("’em", "’tis"), not an opening quote.
ELISION = re.compile(
    r"’(?:em|tis|twas|twere|twill|twould|ud|un|cause|bout|ere|im|er|is|ow|ouse|ave|ad|ome|alf|oo|s|d|ll|n|t)\b",
    re.IGNORECASE,
)
# WEAK: a closing mark that may be an apostrophe ("Bennets’ carriage"); INNER: opens a quote inside a
# speech whose closing mark is the same character
OPEN, CLOSE, WEAK, INNER = 0, 1, 2, 3

# The marks each paired convention uses: (characters to scan, the opening one; None: told by position).
QUOTES = {
    "double-curly": ("“”", "“"),
    "double-straight": ('"', None),
    "single-curly": ("‘’", "‘"),
    "single-straight": ("'", None),
    "guillemets": ("«»", "«"),
    "guillemets-reversed": ("»«", "»"),
}
# A "?" between a space and a letter is a quote mark lost to an encoding error ("I recite ?Mary, Queen
# of Scots.’"); in single-quote books it opens a quote inside the speech.
MARK_PATTERNS = {
    name: re.compile(f"[{re.escape(chars + '?' * name.startswith('single'))}]") for name, (chars, _) in QUOTES.items()
}


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
        "single-straight": sum(m.start() == 0 or text[m.start() - 1].isspace() for m in re.finditer("'[A-Z]", text)),
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
    """(position, OPEN/CLOSE/WEAK/INNER) of the quote marks between start and end."""
    opener = QUOTES[quote][1]
    single = quote.startswith("single")
    marks = []
    for found in MARK_PATTERNS[quote].finditer(text, start, end):
        pos, ch = found.start(), found.group()
        before = text[pos - 1] if pos > start else " "
        after = text[pos + 1] if pos + 1 < end else " "
        if ch == "?":
            if before.isspace() and (after.isalpha() or after == "_"):
                marks.append((pos, INNER))
        elif opener is not None and ch == opener and not (single and before.isalnum()):
            # "think--“ (for", "has ‘¶": an opening mark before a space closes (a speech cut off by a dash)
            marks.append((pos, CLOSE if after.isspace() else OPEN))
        elif single and before not in OPENERS_BEFORE and after.isalnum():
            continue  # don’t, Mr. E.’s
        elif opener is None and (before in OPENERS_BEFORE or before == "_" and not single) and not after.isspace():
            # a straight double quote opened inside italics too: _"Now I am," said a growly voice._
            marks.append((pos, OPEN))
        elif not single:
            marks.append((pos, CLOSE))
        elif opener is not None and before in OPENERS_BEFORE and (after.isalpha() or after == "_"):
            if not ELISION.match(text, pos):  # ‘saying, ’Tut-tut,’ I shall’, ‘’Mr. Knightley.’--You’
                marks.append((pos, INNER))
        elif not before.isspace():
            closes = (
                before in CLOSE_PUNCT
                or before in '”"’'  # ’muddle.’’
                or text.startswith(("--", "—"), pos + 1)  # book’--was
                or after == " "
                and ATTRIBUTION.match(text, pos + 2, pos + 40)  # ‘She didn’t’ said Oliver.
            )
            marks.append((pos, CLOSE if closes else WEAK))
    return marks


def _is_quoted_word(text: str, start: int, end: int) -> bool:
    """True for a few lower-case words the narrator quotes ("took to ‘haunting’ the post"): the first
    apostrophe-like mark after them closes the quote."""
    inner = text[start:end].lstrip("_")
    return inner[:1].islower() and inner.count(" ") < 4


def _quoted_spans(text: str, paragraphs: list[tuple[int, int]], quote: str) -> list[list[tuple[int, int]]]:
    """Per paragraph, the (start, end) of each quoted part; a speech left open continues
    into the next paragraph only when that one opens a quote too."""
    spans: list[list[tuple[int, int]]] = [[] for _ in paragraphs]
    marks_by_par = [_marks(text, s, e, quote) for s, e in paragraphs]
    for i, (_, p_end) in enumerate(paragraphs):
        open_at, weak, inner = None, [], False
        for pos, kind in marks_by_par[i]:
            # the paragraph's last mark, or one before an attribution, closes the speech: in "a ’prentice of,
            # Oliver.’¶" or "’prentis,’ said Mr. Gamfield" no inner quote was opened
            if open_at is not None and (
                kind == INNER
                or inner
                and kind != OPEN
                and text[pos + 1 : p_end].strip()
                and not ATTRIBUTION.match(text, pos + 2, pos + 40)
            ):
                inner = kind == INNER  # the mark after an inner opening closes the inner quote
            elif kind == OPEN:
                if open_at is not None:  # a new quote before the last one closed
                    spans[i].append((open_at, weak[-1] if weak else pos))
                open_at, weak = pos + 1, []
            elif open_at is not None and (kind == CLOSE or _is_quoted_word(text, open_at, pos)):
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
        opened_in_narration = bool(text[paragraphs[i][0] : open_at - 1].strip())
        if weak and (not text[weak[-1] + 1 : p_end].strip() or not next_opens or opened_in_narration):
            spans[i].append((open_at, weak[-1]))
        else:  # runs on into the next paragraph, or the printer left it open: end at the paragraph
            spans[i].append((open_at, p_end))
            if next_opens:
                spans[i + 1].insert(0, (-1, -1))  # marker: continues the previous paragraph's speech
    return spans


def _fold(s: str) -> str:
    return " ".join(s.split())


# The narrator's stage direction inside a speech: "Yes--(rather hesitatingly)--I believe I do."
STAGE_ASIDE = re.compile(
    r"\s*(?:--|—)?\((?:(?:again|then|still|rather|very|half)\s+)?(?:[a-z]+ly|(?:[a-z]+ly\s+)?(?:with|in)\s+a|(?:[a-z]+ly\s+)?"
    r"(?:smiling|laughing|nodding|turning|looking|blushing|speaking|shaking|raising|lowering|sitting|rising|"
    r"checking|recollecting|returning|resuming|eyeing|inclining|dispersing|sighing|whispering|pointing|"
    r"glancing|bowing|colouring|coloring|pausing|hesitating))\b[^()]*\)(?:--|—)?"
)


def _clean(parts: list[str]) -> str:
    speech = " ".join(parts)
    if "(" in speech:
        speech = STAGE_ASIDE.sub(lambda aside: "--" if aside.group().endswith(("-", "—")) else "", speech)
    return _fold(speech).rstrip(",;: ").lstrip()


class Speech(NamedTuple):
    start: int
    end: int
    text: str
    speaker: str  # a name, or ""
    continues: bool  # goes on from the previous paragraph's speech
    new_turn: bool  # someone else speaks than in the speech before it in this paragraph
    resumes: str = ""  # "before" or "after" the speech, an attribution with "went on", "continued", "added"
    said: bool = False  # the speaker is named by an attribution ("said Alice"), not guessed from narration
    subject: str = ""  # whom the attribution names, a pronoun too ("she")


def _groups(text: str, parts: list[tuple[int, int]], start: int, end: int) -> list[tuple[list[tuple[int, int]], bool]]:
    """The quoted parts of a paragraph grouped by speaker turn: (parts, new_turn) per group.

    Parts separated only by an attribution ("Yes," said she, "I will.") are one turn. Back-to-back
    quotes, or quotes with narration of their own between them, start a new group; it is a new
    speaker when the quotes touch or the attributions name different people ("she" / "he").
    """
    groups: list[tuple[list[tuple[int, int]], bool]] = [([parts[0]], False)]
    for k, ((a0, a1), (b0, b1)) in enumerate(zip(parts, parts[1:])):
        between = text[a1 + 1 : b0 - 1]
        lead_in = text[parts[k - 1][1] + 1 if k else start : a0 - 1]  # the narration before the first quote
        if not between.strip():
            groups.append(([(b0, b1)], True))
        elif len(between.strip()) > 30 and (NARRATION_SENTENCE.search(between) or _sentence_ends(text, a1, between)):
            # who said the first quote (after it, or leading into it) and who the second (leading into it, or after)
            first = find_subject(between) or subject_before(lead_in) or _acts_after(text, a1, between)
            second = subject_before(between) or find_subject(text[b1 + 1 : min(b1 + 120, end)])
            groups.append(([(b0, b1)], _two_people(first, second)))
        elif (second := subject_before(between)) and NEW_CLAUSE.match(between):
            # '"...she does"; and Beaufort retorted:  "Yes..."': the narration only introduces the second quote
            groups.append(([(b0, b1)], _two_people(subject_before(lead_in), second)))
        elif second and _surely_two(find_subject(between) or actor_of(between), second):
            # '"...," Mrs. Welland once ventured to complain; and May answered serenely:  "No; but..."'
            groups.append(([(b0, b1)], True))
        elif _introduces_another(between) or _surely_two(find_subject(between), _own_subject(text, b1, end)):
            # '"No room!" they cried out when they saw Alice coming. "There's plenty of room!" said Alice'
            groups.append(([(b0, b1)], True))
        else:
            groups[-1][0].append((b0, b1))
    return groups


NEW_CLAUSE = re.compile(r"\s*(?:[;:]|,?\s*(?:and|but|while|whereupon)\b)")  # narration that starts a new clause


def _own_subject(text: str, quote_end: int, end: int) -> str:
    """Whom the attribution right after a quote names ('" said Alice'), not one that starts a new clause
    introducing the next quote ('"; and Beaufort retorted:'), else ""."""
    after = text[quote_end + 1 : min(quote_end + 120, end)]
    return "" if NEW_CLAUSE.match(after) else find_subject(after)


def _sentence_ends(text: str, quote_end: int, between: str) -> bool:
    """True when a quote ends its sentence and the narration after it starts a new one ("them!" When the)."""
    return text[quote_end - 1] in ".!?" and between.lstrip()[:1].isupper()


def _acts_after(text: str, quote_end: int, between: str) -> str:
    """Who acts in the sentence of narration right after a quote that ends a sentence ('"Oh, my
    friend--!"  She laid her hand'), else ""."""
    return actor_of(between) if _sentence_ends(text, quote_end, between) else ""


def _two_people(one: str, other: str) -> bool:
    """True when two attributions' subjects differ ("she" / "he", "Jane" / "Mary"); unknown is not different."""
    return bool(one and other) and one.lower() != other.lower()


def _surely_two(one: str, other: str) -> bool:
    """True for two subjects that cannot be one person: "he" and "she", or names with no word in
    common but titles ("Mrs. Welland" and "May"); a pronoun and a name may be one person."""
    pronouns = {one.lower(), other.lower()} & {"he", "she", "they"}
    names = name_in(one), name_in(other)
    if len(pronouns) == 2 or pronouns == {"they"} and any(names):  # "they" cried, then Alice
        return True
    if pronouns in ({"he"}, {"she"}) and any(names):  # "he asked; and ... Mrs. van der Luyden"
        named = title_gender(next(n for n in names if n))
        return bool(named) and named != PRONOUN_GENDER[pronouns.pop()]
    return all(names) and "I" not in names and different_people(*names)


# "he suggested to the Marchioness, who replied with a smile:"
WHO_REPLIES = re.compile(rf",\s+who\s+(?:\w+\s+){{0,2}}(?:{VERBS})\b")
# "; and she looked at him with surprise, and answered:": the subject of a later clause
CLAUSE_SUBJECT = re.compile(rf"[;,]\s+(?:and\s+|but\s+|while\s+|as\s+|then\s+)?(?P<clause>{SUBJECT})\s+[a-z]+")


def _introduces_another(between: str) -> bool:
    """True for narration that attributes the quote before it to one person and introduces the next
    quote as another's ("sighed the Lory; and an old Crab said to her daughter")."""
    first = ATTRIBUTION.search(between[:60])
    if not first or len(between) - first.end() < 12:  # nothing after the first attribution
        return False
    intro = INTRODUCTION.search(between, first.end())
    if not intro or RESUMES.match(intro.group()):  # "said the Queen; and, turning to Alice, she went on,"
        return False
    if WHO_REPLIES.search(between, first.end()):
        return True
    second = ATTRIBUTION.search(between, max(first.end(), intro.start() - 40)) or CLAUSE_SUBJECT.search(
        between, first.end(), intro.start() + 1
    )
    other = (second.group("clause") if second.re is CLAUSE_SUBJECT else subject_of(second)) if second else ""
    return _two_people(subject_of(first), other)


# A quote that a sentence of narration runs straight into: the word just before its mark (and a space)
# is not a speech verb ("the words "To Let"", "Vernon Lee's "Euphorion"", but not "he cried "Stop!"").
NARRATED_INTO = re.compile(rf"(?!(?:{VERBS})$)[A-Za-z]+(?:['’]s)?")


# Words that were never said aloud: written ("In it he read:") or only meant ("as if to say:").
UNSPOKEN = re.compile(
    r"\b(?:(?:as if|as though|seemed|seeming|could|would|might|wanted|longed|felt like|tempted|tongue)"
    r"\s+(?:\w+\s+){0,3}(?:say|ask|answer|retort|reply|exclaim)(?:ing)?"
    r"|(?:look|looks|eyes|face|glance|smile)\s+said|as follows"
    r"|read(?:\s+(?:out|aloud))?(?:\s+from\s+(?:\w+\s+){0,2}\w+)?|reads|ran|runs|wrote|writes|written|printed|headed"
    r"|inscribed|label(?:l)?ed)\b\s*[:,]?\s*$"
)


# A second cry joined to the first by "or": 'shouting "Off with his head!" or "Off with her head!"'.
JOINED_CRY = re.compile(r"[!?][\"”’»']\s+or\s*$")
# A quote the sentence runs on from, lower case: 'a new volume called "The Renaissance" by Walter Pater'.
TITLE_RUNS_ON = re.compile(r"[\"”’»']?[ \t]+[a-z]")


def _is_aside(text: str, part: tuple[int, int], paragraph_start: int, after_speech: bool) -> bool:
    """True for a quoted phrase inside narration, not speech: a word the narrator quotes, a short
    title or name that a sentence runs into (`a card with "To Let" on it`), words written or only meant.
    after_speech: the paragraph quoted someone before this part."""
    inner = text[part[0] : part[1]].lstrip(" .…")
    before = text[max(paragraph_start, part[0] - 41) : part[0] - 1]
    if inner[:1].islower():
        # but a speech going on: "--so long as I get", '"Now," said Sikes, as he sat, "if you'll', 'thought
        # Alice "without', or said: 'in it, "and what is the use of a book," thought Alice'
        if after_speech and (before.rstrip().endswith((",", ";", ":", "-", "—")) or ATTRIBUTION.search(before)):
            return False
        return text[part[1] - 1] not in ",!?" or not find_subject(text[part[1] + 1 : part[1] + 60])
    last_word = before.rsplit(None, 1)[-1] if before[-1:].isspace() and before.strip() else ""
    # but speech a verb still introduces ('the Queen said severely "Who is this?"', 'interrupted him with
    # "Going abroad?"'), and a second cry joined to the first
    narrated_into = bool(NARRATED_INTO.fullmatch(last_word)) and not INTRODUCTION.search(before)
    narrated_into = narrated_into and not (after_speech and JOINED_CRY.search(before))
    # a title the sentence runs on from, not speech after an attribution ('The Duke said "Rather" from his beard')
    runs_on = bool(last_word) and inner[-1:].isalnum() and bool(TITLE_RUNS_ON.match(text, part[1] + 1))
    runs_on = runs_on and not ATTRIBUTION.search(before)
    return (narrated_into or runs_on) and len(inner.split()) <= 6 or bool(UNSPOKEN.search(before))


def is_verse(text: str, start: int, end: int) -> bool:
    """True for a song or poem: three or more short lines, nearly all starting with a capital."""
    first_line = text.find("\n", start, end) - start
    if not 0 < first_line < 70:  # one line, or a line of prose
        return False
    paragraph = text[start:end]
    lines = [line.strip(" \t\"'“”‘’«»_-—(") for line in paragraph.strip().split("\n")]
    if len(lines) < 3 or max(len(line) for line in lines[:-1]) > 55:
        return False
    return sum(line[:1].isupper() for line in lines) >= 0.75 * len(lines)


ILLUSTRATION = re.compile(r"\s*\[(?:Illustration|ILLUSTRATION)\b")  # "[Illustration: “He came down ...” ]"
MAX_ILLUSTRATION = 6  # paragraphs an illustration's brackets may span (a bracket left open ends there)
PAGE_NUMBERED = re.compile(r"[^\n]*\S[ \t]{2,}\d+[ \t]*")  # a list's line: "“I’m the tallest”        9"


def caption_paragraphs(text: str, paragraphs: list[tuple[int, int]]) -> set[int]:
    """Paragraphs of an [Illustration: ...] block and of a list with page numbers (an illustrated
    edition's quoted captions): not talk, and a caption between two speeches would join them."""
    captions: set[int] = set()
    for i, (s, e) in enumerate(paragraphs):
        if i in captions:
            continue
        if ILLUSTRATION.match(text, s, e):  # the block runs until its brackets close
            depth = 0
            for j in range(i, min(i + MAX_ILLUSTRATION, len(paragraphs))):
                captions.add(j)
                depth += text.count("[", *paragraphs[j]) - text.count("]", *paragraphs[j])
                if depth <= 0:
                    break
        elif text[s:e].rstrip()[-1:].isdigit() and all(map(PAGE_NUMBERED.fullmatch, text[s:e].strip().splitlines())):
            captions.add(i)
    return captions


def letter_paragraphs(text: str, paragraphs: list[tuple[int, int]]) -> set[int]:
    """Paragraphs of letters the text quotes in full: not talk, though often in quote marks. A letter
    runs from its place and date and salutation over the quoted paragraphs after it, to its
    valediction and signature."""

    def stripped(j: int) -> str:
        return text[paragraphs[j][0] : paragraphs[j][1]].strip()

    def unquoted(j: int) -> str:  # without its closing quote marks
        return stripped(j).rstrip("\"'”’»")

    letters: set[int] = set()
    for i, (s, e) in enumerate(paragraphs):
        if i in letters or len(stripped(i)) > 80 or not SALUTATION.search(text, s, e):
            continue
        first = i
        while first > max(i - 3, 0) and len(stripped(first - 1)) < 30 and unquoted(first - 1).endswith((",", ".")):
            # "Tunbridge Wells," "September."
            first -= 1
        last, end = i + 1, min(i + 40, len(paragraphs))
        while last < end and not VALEDICTION.match(stripped(last)) and not stripped(last)[:1].isalnum():
            last += 1  # quoted paragraphs of the letter, up to its valediction or to narration
        if last == end or not VALEDICTION.match(stripped(last)):
            continue  # no "Yours ...": a speech that opens with "My dear," not a letter
        signature = last + 1
        while signature < min(last + 3, end) and len(stripped(signature)) < 40 and unquoted(signature)[-1:] not in "?!":
            signature += 1  # "Your loving cousin," "Charlotte."
        letters.update(range(first, signature))
    return letters


def _speeches_of_paragraph(
    text: str, s: int, e: int, conv: Convention, spans: list[tuple[int, int]], introduction: str = ""
) -> list[Speech]:
    """introduction: the paragraph of narration before, where it hands over to this one's first quote."""
    continues = bool(spans) and spans[0] == (-1, -1)
    parts = [(a, b) for a, b in spans if a >= 0 and text[a:b].strip()]
    if parts:
        speeches, dropped_turn = [], False
        for k, (group, new_turn) in enumerate(_groups(text, parts, s, e)):
            goes_on = continues and k == 0
            # drop quoted words in narration ("a cry of "The trial's beginning!" was heard", "prints of "The
            # Death of Chatham" and "The Coronation of Napoleon"")
            group = [
                part
                for j, part in enumerate(group)
                if goes_on and j == 0 or not _is_aside(text, part, s, k > 0 or j > 0)
            ]
            new_turn, dropped_turn = new_turn or dropped_turn, not group and (new_turn or dropped_turn)
            if group:
                # up to the next quote: its own attribution is not this one's ("--" "You must," said Miss B.)
                next_quote = next((a - 1 for a, _ in parts if a > group[0][1]), e)
                after = text[group[0][1] + 1 : min(next_quote, group[0][1] + 160)]
                lead_in = text[s : group[0][0] - 1]  # the paragraph up to the opening mark
                opens_paragraph = k == 0 and not lead_in.strip()
                if opens_paragraph:
                    lead_in = introduction
                before = lead_in[-60:] + " "
                if NEW_CLAUSE.match(after) and subject_before(lead_in):
                    # 'Piglet said, "If you see what I mean, Pooh," and Pooh said, "It's just...': the
                    # clause after the quote leads into the next one; the one before is this one's
                    after = ""
                speaker, subject = attribute(after, lead_in, text[group[0][1] - 1] in ",!?-")
                said = bool(speaker)
                if not speaker and k == 0 and not opens_paragraph and not _is_quoted_word(text, *group[0]):
                    speaker = beat_speaker(lead_in)  # the paragraph's own action beat, not the one before
                words = _clean([text[a:b] for a, b in group])
                resumes = _resumes(before, after)
                speeches.append(
                    Speech(group[0][0], group[-1][1], words, speaker, goes_on, new_turn, resumes, said, subject)
                )
        return speeches
    head = text[s:e]
    if conv.dashes and (dash := DASH_OPENER.match(head)):
        speech, speaker = cut_incises(_fold(head[dash.end() :]))
        return [Speech(s + dash.end(), e, speech.rstrip(",;: "), speaker, False, False)]
    if conv.play and (heading := PLAY_HEADING.match(head)):
        return _play_speech(text, s + heading.end(), e, heading.group(1).title())
    return []


def _play_speech(text: str, start: int, end: int, speaker: str) -> list[Speech]:
    """A play's speech without its [stage directions]; none when only directions are left."""
    speech = _fold(STAGE_DIRECTION.sub(" ", text[start:end]))
    return [Speech(start, end, speech, speaker, False, False)] if speech else []


# How narration that hands over to the next paragraph's quote ends: "She went on, however."
# ... and who speaks first ("Sir William thus began.", "Anne herself answered, lifting her head."), but not a
# reaction ("Lord Henry ... laughed.", "Miss Honeychurch assented.") nor words told ("replied ... that she was.")
RESUMED_SENTENCE_END = re.compile(
    rf"(?:{RESUMES.pattern}(?:,\s*\w+)?"
    r"|\b(?:began|spoke|answered|replied)(?:\s+(?:again|now|up|first|[a-z]+ly))?(?:,\s+[a-z]+ing\b[^.,;]{0,30})?)\.$"
)


def _hands_over(end: str) -> bool:
    """True for the end of narration that hands over to a quote in the next paragraph ("Emma continued:",
    "He presently added, with a smile,", "She went on, however.")."""
    end = end.rstrip()
    return end.endswith((":", ",", "--", "—")) or end.endswith(".") and bool(RESUMED_SENTENCE_END.search(end))


def _introduces_next(narration: str, after_quote: bool) -> bool:
    """True for narration that ends a paragraph by handing over to the next one's quote; after a quote in
    the paragraph too ('"...happy." Thursday was to be the wedding day. ... Charlotte said,'), but not when
    it is that quote's own attribution ('"How then?" I persisted.', '..." said the gallant Mr. Elton--')."""
    end = narration[-40:]
    if not _hands_over(end):
        return False
    if after_quote and end.rstrip().endswith("."):
        # a sentence of its own after the quote's: '" added the Gryphon, before Alice could speak again.
        # The Mock Turtle went on.'
        return bool(SENTENCE_END.search(narration.strip()))
    return not after_quote or not find_subject(narration)


def _resumes(before: str, after: str) -> str:
    """Where an attribution says the speaker goes on: "before" the speech ("her companion added, "),
    "after" it, in the sentence the speech ends ("...," she went on), else ""."""
    if RESUMES.search(before, len(before) - 30):
        return "before"
    said = RESUMES.search(after, 0, 40)
    return "after" if said and not re.search(r"[.!?]", after[: said.start()]) else ""


def _takes_up_again(last: Utterance, last_subject: str, speech: Speech, paragraph: int, scene: int) -> bool:
    """True when the last speaker goes on after some narration: the text names them again ("said
    Jane." ... "said Jane."), says so after a paragraph of narration ("she went on"), or both
    speeches call the same person by name across it. last_subject: whom the last one's attribution names."""
    if last.scene != scene or speech.start - last.end > SAME_TURN_GAP:
        return False
    if speech.speaker and last.speaker:
        return speech.speaker == last.speaker
    if {speech.subject.lower(), last_subject.lower()} == {"he", "she"}:
        return False  # "...," he said. ... She went on, "...": her own earlier speech, not his
    after_narration = last.paragraph < paragraph - 1
    called = addressees(speech.text) if after_narration else set()
    if called and last.speaker not in called and called & addressees(last.text):
        return True  # "Oh, Marilla, ..." / a paragraph / "... Marilla.": one speaker going on
    # "After a pause, her companion added, "...": the one who spoke last; but "...," he went on, right
    # after someone's reply, takes up his own earlier speech, so only after a paragraph of narration.
    return speech.resumes == "before" or speech.resumes == "after" and after_narration


def _unnamed(speech: Speech) -> str:
    """The attribution's subject when it gives no name ("she", "his lady"), folded to one line."""
    return "" if speech.speaker else " ".join(speech.subject.split())


def extract_utterances(text: str, book_id: int = 0) -> list[Utterance]:
    """The book's utterances in reading order; an empty list when it has no dialogue."""
    paragraphs = split_paragraphs(text)
    conv = detect_convention(text, paragraphs)
    spans = _quoted_spans(text, paragraphs, conv.quote) if conv.quote else [[] for _ in paragraphs]
    indented = [bool(INDENTED_BLOCK.fullmatch(text, s, e)) for s, e in paragraphs]
    blocks_are_rare = sum(indented) < 0.2 * len(paragraphs)
    letters = letter_paragraphs(text, paragraphs) | caption_paragraphs(text, paragraphs)
    utterances: list[Utterance] = []
    scene, turn, heading_speaker, last_said, last_subject = 0, 0, "", False, ""
    introduction = (-1, "")  # (paragraph, its text): narration that hands over to the next paragraph's quote
    for i, (s, e) in enumerate(paragraphs):
        if indented[i] and blocks_are_rare or i in letters or spans[i] and is_verse(text, s, e):
            # a letter, a caption, a poem or a song: quoted, or set off from the text, but not talk
            continue
        if e - s < 200 and SCENE_BREAK.fullmatch(text[s:e].strip().split("\n", 1)[0].strip()):
            scene += 1
            continue
        if conv.play and (h := PLAY_HEADING.fullmatch(text[s:e].strip() + " ")):
            heading_speaker = h.group(1).title()
            continue
        lead = introduction[1] if introduction[0] == i - 1 else ""
        speeches = _speeches_of_paragraph(text, s, e, conv, spans[i], lead)
        if not speeches and heading_speaker:  # the speech under a play's heading
            speeches = _play_speech(text, s, e, heading_speaker)
        heading_speaker = ""
        tail = speeches[-1].end + 1 if speeches else s  # the narration after its last quote (none after a dash's)
        if tail < e and _introduces_next(text[tail:e], after_quote=tail > s):
            introduction = (i, text[tail:e])
        for k, sp in enumerate(sp for sp in speeches if sp.text):
            last = utterances[-1] if utterances else None
            same_speech = last is not None and (sp.continues or (k > 0 and not sp.new_turn))
            same_turn = same_speech or (
                k == 0 and last is not None and _takes_up_again(last, last_subject, sp, i, scene)
            )
            # "said Alice." ... "said Alice.": the text names her again, so it is the same speech
            same_speech = same_speech or same_turn and sp.said and last_said and sp.speaker == last.speaker
            turn += not same_turn
            last_subject = last_subject or sp.subject if same_speech else sp.subject
            if same_speech and len(last.text) < MAX_UTTERANCE:
                last_said = last_said if last.speaker else sp.said
                text_so_far = f"{last.text} {sp.text}"
                utterances[-1] = replace(
                    last,
                    end=sp.end,
                    text=text_so_far,
                    speaker=last.speaker or sp.speaker,
                    subject=last.subject or _unnamed(sp),
                )
            else:
                last_said = sp.said
                utterances.append(
                    Utterance(
                        book_id,
                        len(utterances),
                        i,
                        scene,
                        turn,
                        sp.start,
                        sp.end,
                        sp.text,
                        sp.speaker,
                        "",
                        _unnamed(sp),
                    )
                )
    log.debug("book %d: convention %s, %d utterances", book_id, conv, len(utterances))
    return _recurring_roles(_words_not_names(text, utterances))


def _words_not_names(text: str, utterances: list[Utterance]) -> list[Utterance]:
    """The utterances without the one-word speakers the book never writes with a capital inside a
    sentence: a word that opens one ("Symptoms of a lumbering coquetry became visible in her, and Archer
    found the strength to break in:", "Both", "Very soon the Rabbit ... called out") is no one's name,
    where a name comes after a lower-case word somewhere ("said Pooh", "and Archer"). Only in a text as
    long as a book's (BOOK_LENGTH): a passage may name someone only where a sentence starts."""
    words = {u.speaker for u in utterances if u.speaker[:1].isupper() and " " not in u.speaker and u.speaker != "I"}
    if not words or len(text) < BOOK_LENGTH:
        return utterances
    inside: set[str] = set()
    for match in re.finditer(rf"{alternation('|'.join(sorted(words)))}\b", text):
        before = text[max(match.start() - 12, 0) : match.start()]
        if before[-1:].isspace() and before.rstrip()[-1:] in MID_SENTENCE:
            inside.add(match.group())
    if inside == words:
        return utterances
    return [with_speaker(u, "") if u.speaker in words - inside else u for u in utterances]


def _recurring_roles(utterances: list[Utterance]) -> list[Utterance]:
    """The utterances with the roles ("said the doctor") the book names fewer than ROLE_MENTIONS
    speakers by left as subjects, not speakers."""
    roles = Counter(u.speaker for u in utterances if is_role(u.speaker))
    rare = {role for role, count in roles.items() if count < ROLE_MENTIONS}
    if not rare:
        return utterances
    return [with_speaker(u, "", subject=u.speaker) if u.speaker in rare else u for u in utterances]


@task(
    name="extract-dialogue",
    task_run_name="extract-{book_id}-{title}",
    cache_policy=INPUTS + ModuleSource(modules=("tasks.attribution", "tasks.speakers", "tasks.characters")),
    persist_result=True,
)
def extract_dialogue_task(book_id: int, book: StoredFile, data_dir: Path, title: str = "") -> BookDialogue:
    """02_utterances/<book_id>.parquet (UTTERANCES) and 02_characters/<book_id>.parquet (CHARACTERS)."""
    row = read_table(book.path, BOOKS).iloc[0]
    utterances, cast = speakers_of(row["text"], extract_utterances(row["text"], book_id), book_id)
    if not utterances:
        raise ExtractionError(
            f"book {book_id} ({row['title'] or 'untitled'}): no dialogue found; it may be a book without quoted speech"
        )
    top = ", ".join(f"{c.character} ({c.utterances})" for c in cast[:5])
    log.info("book %d: %d utterances, %d characters; most lines: %s", book_id, len(utterances), len(cast), top)
    return BookDialogue(
        write_table(utterances, data_dir / "02_utterances" / f"{book_id}.parquet", UTTERANCES),
        write_table(cast, data_dir / "02_characters" / f"{book_id}.parquet", CHARACTERS),
    )
