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

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from tasks.attribution import addressees, alternation
from tasks.ranking import rank_speakers
from tasks.speakers import assign_speakers, narrator_name
from tasks.tables import CHARACTERS, Utterance, read_table, with_speaker

MALE_TITLES = {"mr", "sir", "lord", "colonel", "captain", "uncle", "father", "monsieur", "m", "herr", "king", "prince"}
FEMALE_TITLES = {"mrs", "miss", "ms", "lady", "aunt", "mother", "madame", "mme", "frau", "queen", "princess"}
TITLES = MALE_TITLES | FEMALE_TITLES | {"dr", "the"}
PRONOUN = re.compile(r"\b(?:(he|his|him|himself)|she|her|hers|herself)\b")  # group 1: a man's
PRONOUN_AGREEMENT = 0.75  # share of the pronouns after a name that must agree to give it a gender
# Common English pet names, to the given name they stand for
PET_NAMES = {
    **dict.fromkeys(["lizzy", "lizzie", "liz", "eliza", "beth", "betsy", "betty", "bess", "bessie"], "elizabeth"),
    **dict.fromkeys(["meg", "maggie", "peggy", "madge"], "margaret"),
    **dict.fromkeys(["kitty", "kate", "katie"], "catherine"),
    **dict.fromkeys(["molly", "polly"], "mary"),
    **dict.fromkeys(["harry", "hal"], "henry"),
    **dict.fromkeys(["jack", "johnny"], "john"),
    **dict.fromkeys(["will", "willy", "bill", "billy"], "william"),
    **dict.fromkeys(["bob", "bobby", "rob"], "robert"),
    **dict.fromkeys(["dick", "dickon"], "richard"),
    **dict.fromkeys(["ned", "ted", "teddy"], "edward"),
    **dict.fromkeys(["tom", "tommy"], "thomas"),
    **dict.fromkeys(["jim", "jem", "jimmy"], "james"),
    **dict.fromkeys(["fred", "freddy", "freddie"], "frederick"),
    **dict.fromkeys(["nell", "nelly", "nellie"], "eleanor"),
    "sally": "sarah",
    "fanny": "frances",
    "bella": "isabella",
    "charley": "charles",
    "charlie": "charles",
    "dolly": "dorothy",
    "sukey": "susan",
    "sue": "susan",
}
MIN_MENTIONS = 2  # names called fewer times than this, and never speaking, are not the cast
# a name the text gives this many lines or fewer, one letter off a name with MISPRINT_SHARE times the lines,
# is a misprint of it (tasks/characters.py, _join_misprints)
MISPRINT_LINES, MISPRINT_SHARE = 2, 10


@dataclass(frozen=True, slots=True)
class Character:
    book_id: int
    character: str  # the canonical name
    aliases: list[str]  # every name the text gives them, the canonical one first
    gender: str  # "F", "M", or "" when the text does not say
    utterances: int  # lines spoken


def _words(name: str) -> list[str]:
    return name.lower().replace(".", " ").split()


def title_gender(name: str) -> str:
    """The gender a name's titles give ("Mrs. Bennet": "F"), "" for none or both."""
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


def _at_word_starts(pattern: re.Pattern, text: str) -> Iterator[re.Match]:
    """pattern's matches that start a word. A pattern that opens with its names' trie lets re jump to
    their first letters (five times faster over a book than opening with \\b or a lookahead)."""
    for match in pattern.finditer(text):
        start = match.start()
        if not start or not (text[start - 1].isalnum() or text[start - 1] == "_"):  # as \b would
            yield match


def _pronoun_gender(text: str, names: list[str], wanted: set[str]) -> dict[str, str]:
    """Per wanted name, the gender the pronouns right after it in the text agree on ("" where they do not).
    names: the whole cast's, so that "Miss Bingley" is read as hers, not as Bingley's."""
    if not wanted:
        return {}
    counts: dict[str, Counter] = {}
    pattern = re.compile(rf"({alternation('|'.join(names))})\b([^.!?;\"“”]{{0,80}})")
    for match in _at_word_starts(pattern, text):
        name = " ".join(match.group(1).split())  # "Mr.\nDarcy" across a line break
        if name not in wanted:
            continue
        pronoun = PRONOUN.search(match.group(2))  # the first pronoun after the name
        if pronoun:
            counts.setdefault(name, Counter())["M" if pronoun.group(1) else "F"] += 1
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
    pattern = re.compile(rf"({alternation('|'.join(sorted(first)))})\s+({alternation('|'.join(sorted(surnames)))})\b")
    found = Counter(f"{m.group(1)} {m.group(2)}" for m in _at_word_starts(pattern, text))
    return {name for name, count in found.items() if count >= MIN_MENTIONS}


def _spoken(utterances: list[Utterance]) -> Counter:
    """Lines per speaker's name (the narrator's "I" aside)."""
    return Counter(_clean(u.speaker) for u in utterances if u.speaker and u.speaker != "I")


def _join_pet_names(members: dict[str, list[str]]) -> None:
    """Fold a character known by a pet name ("Lizzy", "Miss Eliza Bennet") into the one character called
    by its given name in its place ("Elizabeth", "Miss Elizabeth Bennet"), when that character has a first
    name and a surname and no title: "Kitty" does not join Lady Catherine."""
    called: dict[tuple[str, ...], set[str]] = {}  # a name's words -> the characters called by it
    for home, aliases in members.items():
        for alias in aliases:
            called.setdefault(tuple(_words(alias)), set()).add(home)
    for home in list(members):
        targets = set()
        for words in map(_words, members[home]):
            plain = [i for i, w in enumerate(words) if w not in TITLES][:1]  # where the first name is
            if plain and words[plain[0]] in PET_NAMES:
                given = (*words[: plain[0]], PET_NAMES[words[plain[0]]], *words[plain[0] + 1 :])
                targets |= called.get(given, set())
        targets.discard(home)
        if len(targets) != 1 or (target := targets.pop()) not in members:
            continue
        canonical = _words(_canonical(members[target]))
        if len(canonical) >= 2 and not set(canonical) & TITLES:
            members[target].extend(members.pop(home))


def _join_misprints(members: dict[str, list[str]], spoken: Counter) -> None:
    """Fold a character the text gives MISPRINT_LINES lines or fewer, by a name one letter short or long of
    another character's ("Mr. Browlow" for Mr. Brownlow, "Charly" for Charley Bates, "Mrs. Maylies"),
    into that one, when it has MISPRINT_SHARE times the lines and no other character is so close."""
    lines = {home: sum(spoken[a] for a in aliases) for home, aliases in members.items()}
    for home in [h for h in members if lines[h] <= MISPRINT_LINES]:
        targets = {
            other
            for other, aliases in members.items()
            if other != home and lines[other] >= MISPRINT_SHARE * max(lines[home], 1)
            for a in members[home]
            for b in aliases
            if _one_letter_apart(_words(a), _words(b))
        }
        if len(targets) == 1:
            members[targets.pop()].extend(members.pop(home))


def _one_letter_apart(a: list[str], b: list[str]) -> bool:
    """True for two names whose words are the same but one, not a title, of five letters or more, which
    is the other with one letter more."""
    differ = [(x, y) for x, y in zip(a, b) if x != y]
    if len(a) != len(b) or len(differ) != 1 or differ[0][0] in TITLES or differ[0][1] in TITLES:
        return False
    short, long = sorted(differ[0], key=len)
    return (
        len(short) >= 5
        and len(long) == len(short) + 1
        and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
    )


def find_cast(text: str, utterances: list[Utterance], book_id: int = 0) -> list[Character]:
    """The book's characters, most lines first (the lines the utterances' speakers give them)."""
    spoken = _spoken(utterances)
    called = Counter(_clean(name) for u in utterances for name in addressees(u.text))
    names = {n for n in spoken} | {n for n, count in called.items() if count >= MIN_MENTIONS}
    names = {n for n in names if n and (not n[:1].islower() or n.startswith("the "))}
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
    _join_pet_names(members)
    _join_misprints(members, spoken)
    # pronouns give a gender only to the characters no title gives one (the costliest search here)
    untitled = {a for aliases in members.values() if not any(map(title_gender, aliases)) for a in aliases}
    pronouns = _pronoun_gender(text, sorted(names), untitled)
    cast = []
    for aliases in members.values():
        canonical = _canonical(aliases)
        aliases = [canonical] + [a for a in aliases if a != canonical]
        genders = {title_gender(a) for a in aliases} - {""} or {pronouns.get(a, "") for a in aliases} - {""}
        cast.append(Character(book_id, canonical, aliases, genders.pop() if len(genders) == 1 else "", 0))
    return _with_lines(cast, spoken)


def _with_lines(cast: list[Character], spoken: Counter) -> list[Character]:
    """The cast with each character's lines counted from spoken, most lines first."""
    counted = [replace(c, utterances=sum(spoken[a] for a in c.aliases)) for c in cast]
    return sorted(counted, key=lambda c: (-c.utterances, c.character))


def speakers_of(text: str, utterances: list[Utterance], book_id: int = 0) -> tuple[list[Utterance], list[Character]]:
    """The speaker sieve in full, and the book's cast. The cast comes from the attributions' names (the
    sieve's rules only hand those names on), so it is found once, before the sieve: its names and genders
    drive the sieve's vocative and pronoun rules, and its lines are counted after it. The utterances name
    their speakers by their characters' canonical names ("Lizzy" and "Elizabeth" are "Elizabeth Bennet")."""
    cast = find_cast(text, utterances, book_id)
    narrator = narrator_name(utterances, {alias for c in cast for alias in c.aliases})
    if narrator:  # "I said" is the narrator's: Watson's, in The Sign of the Four
        utterances = [with_speaker(u, narrator) if u.speaker == "I" else u for u in utterances]
    genders = {alias: c.gender for c in cast for alias in c.aliases if c.gender}
    spoken = {u.speaker for u in utterances if u.speaker}
    named = assign_speakers(
        utterances,
        genders | {name: genders[_clean(name)] for name in spoken if _clean(name) in genders},
        {alias for c in cast for alias in c.aliases},
        text,
        narrator,
    )
    named = rank_speakers(canonical_speakers(named, cast), cast, text)
    return named, _with_lines(cast, _spoken(named))


def canonical_speakers(utterances: list[Utterance], cast: list[Character]) -> list[Utterance]:
    """The utterances with each speaker named by their character's canonical name."""
    name_of = {alias: c.character for c in cast for alias in c.aliases}
    named = [(u, name_of.get(_clean(u.speaker), u.speaker) if u.speaker else "") for u in utterances]
    return [with_speaker(u, name) if name != u.speaker else u for u, name in named]


def cast_from_table(path: Path) -> list[Character]:
    """The CHARACTERS file as Character rows."""
    frame = read_table(path, CHARACTERS)
    return [
        Character(int(r["book_id"]), r["character"], list(r["aliases"]), r["gender"], int(r["utterances"]))
        for r in frame.to_dict("records")
    ]
