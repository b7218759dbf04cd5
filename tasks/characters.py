"""Step 2c: a book's cast, from its own text: one character per person, with aliases, gender and lines.

The names come from the speakers the text names (tasks/speakers.py), from the names speeches call
people by twice or more ("Mr. Darcy, you ..."), and from full names the narration gives ("Elizabeth
Bennet"). A shorter name joins a longer one that holds all its words and no other title ("Darcy"
joins "Mr. Darcy"), but only when it fits one character: "Bennet", which fits Mr. and Mrs. Bennet,
stays a name of its own rather than merge two people. A character is called by its fullest name
(with its title when that is one word: "Mr. Darcy", "Elizabeth Bennet"); its gender comes from its
titles, else from the pronouns that follow its names in the narration ("Elizabeth ... her"), where
they agree.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from prefect import task

from tasks.attribution import addressees, alternation
from tasks.cache import PARQUET_INPUTS
from tasks.speakers import assign_speakers
from tasks.tables import BOOKS, CHARACTERS, StoredFile, Utterance, read_table, utterances_from_table, write_table

log = logging.getLogger(__name__)

MALE_TITLES = {"mr", "sir", "lord", "colonel", "captain", "uncle", "father", "monsieur", "m", "herr", "king", "prince"}
FEMALE_TITLES = {"mrs", "miss", "ms", "lady", "aunt", "mother", "madame", "mme", "frau", "queen", "princess"}
TITLES = MALE_TITLES | FEMALE_TITLES | {"dr", "the"}
PRONOUN = re.compile(r"\b(?:(he|his|him|himself)|she|her|hers|herself)\b")  # group 1: a man's
PRONOUN_AGREEMENT = 0.75  # share of the pronouns after a name that must agree to give it a gender
MIN_MENTIONS = 2  # names called fewer times than this, and never speaking, are not the cast


@dataclass(frozen=True, slots=True)
class Character:
    book_id: int
    character: str  # the canonical name
    aliases: list[str]  # every name the text gives them, the canonical one first
    gender: str  # "F", "M", or "" when the text does not say
    utterances: int  # lines spoken


def _words(name: str) -> list[str]:
    return name.lower().replace(".", " ").split()


def _title_gender(name: str) -> str:
    words = set(_words(name))
    male, female = bool(words & MALE_TITLES), bool(words & FEMALE_TITLES)
    return "M" if male and not female else "F" if female and not male else ""


def _joins(short: str, long: str) -> bool:
    """True when short can be a shorter name of long's person: all its words there and no other title;
    with a title, its name must start long's ("Miss Elizabeth" is Miss Elizabeth Bennet, but "Miss
    Bennet" may be her sister)."""
    a, b = set(_words(short)), set(_words(long))
    if not a < b or (a & TITLES) - (b & TITLES):
        return False
    named = [w for w in _words(short) if w not in TITLES]
    return not (a & TITLES) or [w for w in _words(long) if w not in TITLES][: len(named)] == named


def _canonical(aliases: list[str]) -> str:
    """The name to call a character by: the most words of a name, with its title when it has one word
    ("Mr. Darcy"), without when it has more ("Elizabeth Bennet")."""

    def rank(name: str) -> tuple[int, int]:
        words = set(_words(name))
        plain, titled = len(words - TITLES), bool(words & TITLES)
        return plain, titled if plain == 1 else -titled

    return max(aliases, key=rank)


def _pronoun_gender(text: str, names: list[str]) -> dict[str, str]:
    """Per name, the gender the pronouns right after it in the text agree on ("" where they do not)."""
    if not names:
        return {}
    counts: dict[str, Counter] = {}
    # (?=[A-Zt]): the trie is tried only where a name can start (a capital, or "the" of "the Queen")
    pattern = re.compile(rf"(?=[A-Zt])\b({alternation('|'.join(names))})\b([^.!?;\"“”]{{0,80}})")
    for match in pattern.finditer(text):
        pronoun = PRONOUN.search(match.group(2))  # the first pronoun after the name
        if pronoun:
            counts.setdefault(match.group(1), Counter())["M" if pronoun.group(1) else "F"] += 1
    genders = {}
    for name, counter in counts.items():
        gender, n = counter.most_common(1)[0]
        genders[name] = gender if n >= PRONOUN_AGREEMENT * sum(counter.values()) and n >= 2 else ""
    return genders


def _clean(name: str) -> str:
    """A name without the punctuation an attribution may leave on it ("Mr. Knightley--")."""
    return " ".join(name.split()).rstrip("-—–,;:!?'’\"”")


def _full_names(text: str, names: set[str]) -> set[str]:
    """Names the narration gives in full: a cast member's one-word name followed by a surname the
    cast has with a title ("Elizabeth Bennet", from "Elizabeth" and "Mr. Bennet"), twice or more."""
    first = {n for n in names if len(_words(n)) == 1 and not set(_words(n)) & TITLES}
    surnames = {n.split()[-1] for n in names if set(_words(n)) & TITLES and len(_words(n)) == 2}
    if not first or not surnames:
        return set()
    pattern = re.compile(
        rf"(?=[A-Z])\b({alternation('|'.join(sorted(first)))})\s+({alternation('|'.join(sorted(surnames)))})\b"
    )
    found = Counter(f"{m.group(1)} {m.group(2)}" for m in pattern.finditer(text))
    return {name for name, count in found.items() if count >= MIN_MENTIONS}


def find_cast(text: str, utterances: list[Utterance], book_id: int = 0, full_names: bool = True) -> list[Character]:
    """The book's characters, most lines first; full_names: look for the narration's full names too."""
    spoken = Counter(_clean(u.speaker) for u in utterances if u.speaker and u.speaker != "I")
    called = Counter(_clean(name) for u in utterances for name in addressees(u.text))
    names = {n for n in spoken} | {n for n, count in called.items() if count >= MIN_MENTIONS}
    names = {n for n in names if n and (not n[:1].islower() or n.startswith("the "))}
    if full_names:
        names |= _full_names(text, names)
    ordered = sorted(names, key=lambda n: (-len(_words(n)), n))
    holding: dict[str, set[str]] = {}  # word -> the names with it: a longer name holds all a shorter one's words
    for name in names:
        for word in _words(name):
            holding.setdefault(word, set()).add(name)
    home: dict[str, str] = {}  # name -> the name of its character
    for name in sorted(names, key=lambda n: len(_words(n)), reverse=True):
        longer = set.intersection(*(holding[w] for w in _words(name))) if _words(name) else set()
        fits = {home[other] for other in longer if other != name and _joins(name, other)}
        home[name] = fits.pop() if len(fits) == 1 else name
    members: dict[str, list[str]] = {}
    for name in ordered:
        members.setdefault(home[name], []).append(name)
    pronouns = _pronoun_gender(text, sorted(names))
    cast = []
    for aliases in members.values():
        canonical = _canonical(aliases)
        aliases = [canonical] + [a for a in aliases if a != canonical]
        genders = {_title_gender(a) for a in aliases} - {""} or {pronouns.get(a, "") for a in aliases} - {""}
        lines = sum(spoken[a] for a in aliases)
        cast.append(Character(book_id, canonical, aliases, genders.pop() if len(genders) == 1 else "", lines))
    return sorted(cast, key=lambda c: (-c.utterances, c.character))


def speakers_of(text: str, utterances: list[Utterance]) -> list[Utterance]:
    """The speaker sieve in full: its name-based rules and, with the cast's genders, pronouns too. The cast
    comes from the attributions' names alone: the sieve's other rules only hand those names on."""
    cast = find_cast(text, utterances, full_names=False)
    genders = {alias: c.gender for c in cast for alias in c.aliases if c.gender}
    spoken = {u.speaker for u in utterances if u.speaker}
    return assign_speakers(
        utterances,
        {name: genders[_clean(name)] for name in spoken if _clean(name) in genders},
        {alias for c in cast for alias in c.aliases},
    )


def canonical_speakers(utterances: list[Utterance], cast: list[Character]) -> list[Utterance]:
    """The utterances with each speaker named by their character's canonical name."""
    name_of = {alias: c.character for c in cast for alias in c.aliases}
    named = [(u, name_of.get(_clean(u.speaker), u.speaker) if u.speaker else "") for u in utterances]
    return [replace(u, speaker=name) if name != u.speaker else u for u, name in named]  # replace() is slow


def cast_from_table(path: Path) -> list[Character]:
    """The CHARACTERS file as Character rows."""
    frame = read_table(path, CHARACTERS)
    return [
        Character(int(r["book_id"]), r["character"], list(r["aliases"]), r["gender"], int(r["utterances"]))
        for r in frame.to_dict("records")
    ]


@task(name="find-characters", task_run_name="cast-{book_id}", cache_policy=PARQUET_INPUTS, persist_result=True)
def find_characters_task(book_id: int, book: StoredFile, utterances: StoredFile, out_dir: Path) -> StoredFile:
    """02_characters/<book_id>.parquet (CHARACTERS)."""
    text = read_table(book.path, BOOKS).iloc[0]["text"]
    cast = find_cast(text, utterances_from_table(utterances.path), book_id)
    top = ", ".join(f"{c.character} ({c.utterances})" for c in cast[:5])
    log.info("book %d: %d characters; most lines: %s", book_id, len(cast), top)
    return write_table(cast, out_dir / f"{book_id}.parquet", CHARACTERS)
