"""Who speaks, and where the attribution ("said Elizabeth", "dit-il") sits inside a speech.

Used by dialogue.py: speakers are read from the narration beside a quotation, and in dash
conventions (no closing mark) the attribution is cut out of the speech itself.
"""

import functools
import re


def alternation(words: str) -> str:
    """A regex matching any of the "|"-separated words, as a trie ("sa(?:id|y(?:s)?)"): Python's re tries the
    branches of a plain alternation one by one at every position, a trie only those sharing the first letters.
    Where one word extends another ("cried", "cried out") the longer is tried first."""
    trie: dict = {}
    for word in words.split("|"):
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict) -> str:
        # a space in a word is any run of white space ("broke\nout" across a line break)
        branches = [
            (r"\s+" if char == " " else re.escape(char)) + pattern(child)
            for char, child in sorted(node.items())
            if char
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return f"(?:{pattern(trie)})"


VERB_WORDS = (
    # English
    "said|says|say|asked|cried|replied|returned|answered|continued|added|exclaimed|observed|rejoined|"
    "remarked|whispered|shouted|called|repeated|resumed|interrupted|muttered|murmured|began|inquired|"
    "enquired|thought|retorted|declared|pursued|urged|screamed|sobbed|sighed|suggested|explained|"
    "protested|pleaded|demanded|growled|roared|ventured|interposed|persisted|agreed|admitted|insisted|"
    "faltered|stammered|gasped|groaned|went on|laughed|cried out|broke in|echoed|concluded|argued|opined|"
    "grumbled|responded|objected|assented|snapped|sneered|chimed in|put in|called out|broke out|commented|"
    "announced|mused|reflected|uttered|bawled|yelled|hissed|wailed|moaned|panted|"
    "interjected|questioned|conceded|acknowledged|affirmed|assured|confessed|corrected|drawled|hinted|"
    "insinuated|lamented|mumbled|prompted|queried|reasoned|reminded|remonstrated|scoffed|shrieked|"
    "stuttered|teased|thundered|volunteered|warned|blurted|chuckled|giggled|grunted|jeered|cautioned|"
    "simpered|whimpered|squeaked|sputtered|spluttered|stormed|breathed|chorused|entreated|implored|"
    "besought|expostulated|ejaculated|vociferated|apologised|apologized|broke off|wanted to know|"
    # progressive: "Beaufort was saying in his loud sneering voice"
    "was saying|was asking|was crying|was whispering|was explaining|was answering|was calling|"
    # French
    "dit|reprit|cria|demanda|répondit|fit|s'écria|murmura|ajouta|continua|répliqua|s'exclama|"
    "poursuivit|répéta|balbutia|interrompit|observa|riposta|soupira|déclara|"
    # German
    "sagte|fragte|rief|antwortete|dachte|meinte|schrie|flüsterte|erwiderte|fuhr fort"
)
VERBS = alternation(VERB_WORDS)
TITLES = alternation(
    "Mr|Mrs|Miss|Ms|Dr|Lady|Sir|Lord|Uncle|Aunt|uncle|aunt|Father|Mother|Colonel|Captain|Madame|Monsieur|M|Mme|Herr|Frau"
)
TITLES += r"\.?"  # "Mr. Darcy", "Mrs Bennet"
NAME = rf"(?:{TITLES}\s+(?:(?:van|von|de|der|du|di|da|la|le)\s+)*)?[A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)?"
PRONOUN = alternation("he|she|it|I|they|we|you|il|elle|on|ils|elles|je|tu|nous|vous|er|sie|es|ich|wir")
# A name with an epithet: "said the unsympathetic Marilla", "inquired the unsentimental Mr. Sikes",
# "said poor Lucy" (not "asked the two Harringtons")
EPITHET = r"(?:the\s+(?!two\b|three\b|other\b)[a-z]+|poor|little|old|young|dear|good|wise|gruff)\s+"
EPITHET_NAME = re.compile(rf"{EPITHET}({NAME})")
# a description's second word is not a conjunction or a preposition: "Mrs. Bennet half opened the door
# and called out", "said the master at length"
WORD = r"\w+(?:-\w+)*"  # a hyphened word is one: "the hump-backed man"
DESCRIPTION_TAIL = rf"(?:\s+(?!(?:and|or|but|nor|at|in|on|to|of|for|with|by|from|as|after|before|into|upon)\b){WORD})?"
SUBJECT = rf"(?:{NAME}|{EPITHET}{NAME}|(?:(?:the|le|la|les|der|die|das)\s+|l['’]){WORD}{DESCRIPTION_TAIL}|{PRONOUN})"
# Before the verb a possessive starts a subject ("her husband retorted"); after it, an addressee ("asked her mother").
SUBJECT_BEFORE = rf"(?:(?:his|her|their|my)\s+\w+|{SUBJECT})"
# "Stephen said", "said the rector", French inversion "dit-il", "lui dit-il".
ATTRIBUTION = re.compile(  # \b first: only word starts are tried (and "soon began" holds no "on began")
    rf"\b(?:(?P<before>{SUBJECT_BEFORE})\s+(?:[a-z]+ly\s+)?(?:{VERBS})\b"
    rf"|(?:(?:lui|leur|me|se)\s+)?(?:{VERBS})(?:-t)?-(?:{PRONOUN})\b"
    rf"|(?:{VERBS})\s+(?P<after>{SUBJECT})(?!\w))"  # a whole word: "said only" is not "said on"
)
NEAR_ATTRIBUTION = re.compile(rf"[\s\S]{{0,40}}?(?:{ATTRIBUTION.pattern})")  # starting in the first 40 characters
# Narration that hands over to a quote: "... the Gryphon said, in a rather offended tone, ", "Emma ...
# was pleased enough to exclaim, "
INTRODUCING_WORDS = "|saying|asking|crying|replying|adding|whispering|shouting|exclaiming|calling|" + (
    "exclaim|ask|reply|answer|observe|remark|inquire|enquire"
)
INTRODUCTION = re.compile(
    rf"\b{alternation(VERB_WORDS + INTRODUCING_WORDS)}\b"
    r"(?!\s+(?:his|her|their|its)\s)[^.!?]{0,45}$"  # but not "as he resumed his seat, "
)
# Narration that can trail an attribution: "dit le professeur, qui était un homme d'esprit."
TRAILING = re.compile(
    r"\s*,\s+(?:qui|que|en|avec|with|who|while|as|in|at|turning|looking|smiling|laughing|and then)\b[^.!?;]*"
)
INCISE = re.compile(rf"(?<=[,!?…])\s+(?:{ATTRIBUTION.pattern})(?:[^,.;:!?—]{{0,40}})(?=[,.;:!?]|$)")
# Capitalised words that open a sentence or stand for a pronoun: not names.
NOT_NAMES = set(
    "The A An It This That There Then But And He She I They We You Le La Les Il Elle Der Die Das Er Sie Es "
    "After When As If So Now Yet Still At In On For With Without Before While Although Though Here What How Why "
    "Where Who All One Some His Her My Your Our Their Its No Yes Oh Nobody Everybody Somebody Everyone Someone "
    "Nothing Something Everything Suddenly Presently Perhaps Meanwhile Indeed However Instead Only Just Even "
    "Again Once Soon Thus Hence Finally Nevertheless To First Sometimes Later Afterwards Next Last Besides "
    # interjections, which open speeches the way names are called ("Well, ...", "Hallo, ...")
    "Well Ah Aha Oho Alas Hallo Hullo Hello Wow Hush Aye Nay Bah Pshaw Hurrah Hey Ha Hum Humph Eh Ahem".split()
)
# ... of them, the words that may open a sentence before its subject's name: "Then Cecil said with great emotion:"
LEADING_WORDS = set(
    "And But Then So Now Yet Still Here There Suddenly Presently Perhaps Meanwhile Indeed However Instead Only "
    "Just Even Again Once Soon Thus Hence Finally Nevertheless Sometimes Later Afterwards Next Last Besides".split()
)


# A name the speaker calls someone by, opening the speech or after a comma: "Mr. Darcy, I", "Oh, Marilla,"
CALLED = rf"({NAME})(?=\s*(?:[,.!?;]|--))"
OPENING_VOCATIVE = re.compile(CALLED)
VOCATIVE = re.compile(rf"[,;]\s+{CALLED}")  # starts with a comma: re scans for one fast


@functools.lru_cache(maxsize=1 << 16)  # the cast and each rule of the sieve ask again of the same speech
def addressees(speech: str) -> frozenset[str]:
    """The names a speech calls someone by ("Oh, Marilla, say those blessed words again")."""
    found = [m.group(1) for m in (OPENING_VOCATIVE.match(speech), *VOCATIVE.finditer(speech)) if m]
    return frozenset(name for called in found if (name := name_in(called)))


CLOSING_VOCATIVE = re.compile(rf"[,;]\s+{CALLED}[.!?\s]*$")


def closing_addressee(speech: str) -> str:
    """The name a speech ends by calling someone ("..., Mr. Darcy?"), who usually answers; else ""."""
    found = CLOSING_VOCATIVE.search(speech[-60:])
    return name_in(found.group(1)) if found else ""


# A character the book names by a capitalised description: "the Dormouse", "the Jew".
DESCRIBED_NAME = re.compile(r"(the|The)\s+([A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)?)")
# ... or by a role: "said the doctor", "the old beadle". A description by age, sex, kin or place in
# the scene ("the girl", "the old gentleman", "the other") stands for someone the book names
# elsewhere, and so names no one.
ROLE = re.compile(r"the\s+(?:(?:old|young|little|elder|poor|fat|tall|stout)\s+)?([a-z]+(?:-[a-z]+)*)")
PERSON_NOUNS = set(
    "man woman girl boy lady gentleman child lad lass youth maid maiden stranger other person fellow creature "
    "figure visitor guest speaker one former latter first second third last voice baby infant mother father "
    "son daughter brother sister husband wife aunt uncle cousin niece nephew grandmother grandfather friend "
    "lover bride bridegroom widow orphan young old elder younger eldest youngest rest ancestress ancestor".split()
)
# A role the book gives fewer speeches than this describes someone named elsewhere ("said the
# housekeeper", once): on the PDNC novels, 3 names 4,707 explicit quotes 98.4% right; 2, 4,731 at
# 98.2%; 1, 4,785 at 97.4%
ROLE_MENTIONS = 3


def is_role(name: str) -> bool:
    """True for a name that is a role ("the doctor"), not a name ("the Dormouse", "Mr. Bumble")."""
    return name[:4] == "the " and name[4:5].islower()


def subject_of(match: re.Match) -> str:
    """The subject of an ATTRIBUTION match ("Elizabeth", "he", "the rector")."""
    return (match.group("before") or match.group("after") or "").strip()


# compiled once: re's own cache of patterns is shared with the patterns built for each book's cast
PRONOUN_ALONE, TITLE_ALONE = re.compile(PRONOUN), re.compile(TITLES)


def name_in(subject: str) -> str:
    """The name a subject gives ("Elizabeth", "Mr. Darcy", "the Dormouse"), or "" for "he" or "the rector"."""
    if epithet := EPITHET_NAME.fullmatch(subject):
        return name_in(epithet.group(1))
    if described := DESCRIBED_NAME.match(subject):
        return f"{described.group(1).lower()} {described.group(2)}"
    if role := ROLE.fullmatch(subject):
        noun = role.group(1)
        plural = noun.endswith("s") and not noun.endswith("ss")  # "the ladies": many speak
        return " ".join(subject.split()) if not (plural or noun in PERSON_NOUNS) else ""
    if subject == "I":
        return "I"  # the narrator
    words = subject.split()
    first = words[0] if words else ""
    if first in LEADING_WORDS and len(words) > 1:
        return name_in(" ".join(words[1:]))
    named = first and first not in NOT_NAMES and first[:1].isupper() and not PRONOUN_ALONE.fullmatch(subject)
    # not a possessive ("Riviere's voice") nor a title alone ("Mr")
    named = named and not subject.endswith(("'s", "’s"))
    named = named and not TITLE_ALONE.fullmatch(subject)
    return " ".join(words) if named else ""  # "Mr.\nGamfield" across a line break


def find_subject(narration: str) -> str:
    """Who speaks, from an attribution at the start of the narration ("said Elizabeth", "he said"), else ""."""
    match = NEAR_ATTRIBUTION.match(narration, 0, 120)
    return subject_of(match) if match else ""


# A sentence's end; "Mr. Jaggers" goes on with its sentence (checked after the mark: faster)
NOT_AFTER_TITLE = r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bMs\.)(?<!\bM\.)"
SENTENCE_END = re.compile(rf"[.!?;]{NOT_AFTER_TITLE}(?:[\"'”’)]?\s|--(?=[A-Z]))")
FULL_STOP = re.compile(rf"[.!?]{NOT_AFTER_TITLE}[\"'”’]?\s")  # a sentence's end, not a clause's
LONG_SENTENCE = 300  # characters a sentence that leads into a quote is read back for its subject
LISTENS = r"(?:heard|overheard|saw|listened|watched)\b"  # "and Emma heard her saying": a listener, not the speaker
ACTING_PRONOUN = r"(?P<pronoun>[Hh]e|[Ss]he|I|[Tt]hey|[Ww]e)"
# The subject at the start of a sentence: "Matthew took his courage in both hands and replied:"
# ("but Mr. Collins, much offended, laid aside his book, and said,": after a conjunction, and an aside)
SUBJECT_FIRST = (
    rf"\s*(?:(?:[Aa]nd|[Bb]ut|[Tt]hen|[Ss]o)\s+)?(?:{ACTING_PRONOUN}\b|(?P<name>{NAME}))"
    r"(?:,[^,.;:!?\"“”]{1,60},)?\s+(?:[a-z]+ly\s+)?"
)
ACTOR = re.compile(rf"{SUBJECT_FIRST}(?!{LISTENS})[a-z]+")
# ... whatever its verb, when a later clause of the sentence speaks: "Mr. Bennet saw that ...; and ..., said"
ANY_ACTOR = re.compile(rf"{SUBJECT_FIRST}[a-z]+")
# ... or later in it, the last subject with a verb after it: "While he talked to Isabella, however, Emma
# found an opportunity of saying,", "and soon afterwards Mr. Darcy, drawing near Elizabeth, said to her--",
# and no one where that is a pronoun or a possessive ("Frank Churchill declined it, and his father gave
# his hearty support by calling out,"); not an object ("looked at Jane and said", "turning to Jane,")
LATE_ACTOR = re.compile(
    r"(?<!\bto\s)(?<!\bat\s)(?<!\bof\s)(?<!\bby\s)(?<!\bwith\s)(?<!\bfor\s)(?<!\bnear\s)(?<!\bupon\s)"
    rf"\b(?:{ACTING_PRONOUN}|(?:his|her|their|my)\s+[a-z]+|(?P<name>(?:the\s+)?{NAME}))"
    rf"(?:,(?!\s*(?:and|but|or)\b)[^,.;:!?\"“”]{{1,40}},)?\s+"
    rf"(?!(?:and|or|but|the|a|an|to|of|in|on|at|by|with|who|whom|whose|that|which|as)\b|{LISTENS})[a-z]+"
)


def actor_name(subject: str) -> str:
    """The name a sentence's subject gives, but not a participle that opens it ("Balancing on the rail,");
    beside a verb of speech, as in "said Chitling", such a word is a name."""
    return "" if subject.endswith("ing") and " " not in subject else name_in(subject)


def sentence_subject(sentence: str, actor_pattern: re.Pattern = ACTOR) -> str:
    """The pronoun ("she") or name that opens a sentence as its subject (ACTOR), else ""."""
    actor = actor_pattern.match(sentence)
    if actor and actor.group("pronoun"):
        return actor.group("pronoun").lower()
    return actor_name(actor.group("name")) if actor else ""


def actor_of(sentence: str) -> str:
    """Who acts in a sentence of narration: a pronoun ("she") or a name, else ""."""
    return sentence_subject(sentence) or last_actor(sentence)


def last_actor(narration: str) -> str:
    """The last subject in the narration with a verb after it (LATE_ACTOR): a name or a pronoun, else ""."""
    for match in reversed(list(LATE_ACTOR.finditer(narration))):
        if match.group("pronoun"):
            return match.group("pronoun").lower()
        if not match.group("name"):  # a possessive: "his father"
            return ""
        if name := actor_name(match.group("name")):
            return name
    return ""


# "She was met in the vestibule by Lydia, who, flying to her, cried in a half whisper, "
RELATIVE_SPEAKER = re.compile(
    rf"(?P<name>{NAME}),\s+who(?:,[^,.;:!?\"“”]{{1,60}},)?\s+(?:[a-z]+ly\s+)?(?:{VERBS})\b[^.!?;]{{0,45}}$"
    # ... or the speaker after a relative clause of their own: "and then Pooh, who had been frowning very
    # hard for some minutes, said:", "the Mouse, who seemed to be a person of authority among them, called out,"
    rf"|(?:^|\s)(?:(?:And|But|Then|So)\s+)?(?P<aside>(?:the\s+)?{NAME}),\s+who\s[^,.;:!?\"“”]{{1,90}},\s+(?:[a-z]+ly\s+)?(?:{VERBS})\b[^.!?;]{{0,45}}$"
)


# A speaker the narration leading into a quote names as heard or as accosting someone: "without her overhearing
# Mr. Weston whisper to his wife,", "when thus accosted by Miss Bingley,", "till roused by Miss Bates's saying,"
SPEECH_INFINITIVE = alternation(
    "say|whisper|exclaim|cry|cry out|ask|add|reply|observe|remark|murmur|mutter|answer|call out|begin|go on"
)
INTRODUCING = alternation(INTRODUCING_WORDS.strip("|"))
HEARD_OR_BY = re.compile(
    rf"\b(?:(?:over)?hear(?:d|ing)?\s+(?P<heard>{NAME})\s+(?:[a-z]+ly\s+)?(?:{SPEECH_INFINITIVE}|{INTRODUCING})"
    rf"|(?:accosted|addressed|interrupted|greeted|hailed|roused|questioned)\s+by\s+(?P<by>{NAME})"
    rf"(?:['’]s\s+{INTRODUCING})?)\b[^.!?;]{{0,45}}$"
)


def subject_before(narration: str) -> str:
    """The subject of an attribution that leads into a quote ("and Rabbit said ", "she cried, in a low
    voice, "), or of the sentence that introduces it ("Matthew took his courage in both hands and
    replied: "); else ""."""
    sentences = SENTENCE_END.split(narration[-120:])
    sentence = sentences[-1].removesuffix(".")  # the sentence that leads into the quote ("Sir William thus began.")
    last = next(reversed(list(ATTRIBUTION.finditer(sentence, max(len(sentence) - 80, 0)))), None)
    if last:
        return subject_of(last)
    if heard := HEARD_OR_BY.search(sentence):
        return name_in(heard.group("heard") or heard.group("by"))
    if not INTRODUCTION.search(sentence):
        return ""
    if relative := RELATIVE_SPEAKER.search(sentence):
        return name_in(relative.group("name") or relative.group("aside"))
    whole = len(sentences) > 1 or len(narration) <= 120  # its start, not a cut in the middle of it
    if actor := actor_of(sentence) if whole else last_actor(sentence):
        return actor
    # a clause with no subject of its own has its sentence's: "Mr. Bennet saw that her whole heart was in
    # the subject; and affectionately taking her hand, said in reply,", "Gilbert reached across the aisle,
    # picked up the end of Anne's long red braid, held it out at arm's length and said in a piercing whisper:"
    if any(not m.group("name") for m in LATE_ACTOR.finditer(sentence)):
        return ""  # it has one that names no one: "and his father gave his hearty support by calling out,"
    if ANY_ACTOR.match(sentence):
        return ""  # it has one, a listener: "And Emma heard her saying in the same half-whisper to Jane,"
    sentences = FULL_STOP.split(narration[-LONG_SENTENCE:])
    if len(sentences) > 1 or len(narration) <= LONG_SENTENCE:
        return sentence_subject(sentences[-1], ANY_ACTOR)
    return ""


# After any speech, a verb in the past and a name after it are its attribution whatever the verb:
# '"He'll murder me!" blubbered Noah.', '"...," feebly reiterated Matthew.'
INVERTED = rf"(?:[a-z]+ly\s+)?[a-z]+ed\s+(?P<after>{NAME})\b(?!['’]s)"
INVERTED_TAG = re.compile(rf"\s*{INVERTED}")
# ... and after one that ends with a comma, "!", "?" or "--", a name and a verb in the past too:
# '"..., one season," Mrs. Archer conceded.', '"I wonder which floor--?" Dallas conjectured;'
ADVERB = r"(?:[a-z]+ly|once|then|now|still|again|also|at\s+last|at\s+once)\s+"  # "Mrs. Welland once ventured"
TAG = re.compile(rf"\s*(?:(?P<name>{NAME})\s+(?:{ADVERB})?[a-z]+ed\b|{INVERTED})")
# '"Not much wonder!" was Marilla's response.', "was Mrs. Weston's parting question", "was Emma's
# conclusion", "was the firm reply of Mr. Limbkins": whoever the speech is said to belong to said it
NAMED_REPLY = re.compile(
    rf"\s*was\s+(?:(?P<name>{NAME})['’]s\s+[a-z]+"
    r"|the\s+(?:[a-z]+\s+)?(?:response|reply|answer|comment|observation|remark|question|rejoinder|retort)"
    rf"\s+of\s+(?P<of>{NAME}))\b"
)


def attribute(after: str, lead_in: str, open_end: bool = False) -> tuple[str, str]:
    """(speaker, subject) of a quote from the attribution after it ("said Elizabeth", "she said") or the
    one leading into it ("and Rabbit said "): the name ("" for a pronoun), and whom it names, pronouns too.
    open_end: the quote ends with a comma, "!", "?" or "--", so a name and any verb after it attribute it (TAG)."""
    subject = find_subject(after)
    if speaker := name_in(subject):
        return speaker, subject
    tag = not subject and (NAMED_REPLY.match(after) or (TAG if open_end else INVERTED_TAG).match(after))
    if tag and (speaker := name_in(named := next(g for g in tag.groups() if g))):
        return speaker, named
    lead_subject = subject_before(lead_in)
    return name_in(lead_subject), subject or lead_subject


# The subject of a sentence of action before a quote ("After a pause, Lord Henry pulled out his watch.").
BEAT = re.compile(
    rf"(?:^|[.!?;]{NOT_AFTER_TITLE}\s+)(?:[A-Z][a-z]+(?:\s+[a-z]+)*,\s+)?(?P<subject>(?:[Tt]he\s+)?{NAME})\s+(?:[a-z]+ly\s+)?[a-z]+[^.!?;]*[.!?;:,]?\s*$"
)


def beat_speaker(narration: str) -> str:
    """The named subject of the narration's last sentence, who usually speaks next, else ""."""
    match = BEAT.search(narration[-300:])
    return actor_name(match.group("subject")) if match else ""


def cut_incises(speech: str) -> tuple[str, str]:
    """A dash-led speech without its attributions ("Good morning, Stephen said." -> "Good morning")."""
    speaker = ""
    parts, pos = [], 0
    for match in INCISE.finditer(speech):
        subject = subject_of(ATTRIBUTION.search(match.group()))
        speaker = speaker or name_in(subject)
        parts.append(speech[pos : match.start()])
        pos = match.end()
        trailing = TRAILING.match(speech, pos)
        if trailing:
            pos = trailing.end()
        pos = len(speech) if re.match(r"[.;:!?]?\s*$", speech[pos:]) else pos + 1
    parts.append(speech[pos:])
    return " ".join(p.strip() for p in parts if p.strip()), speaker
