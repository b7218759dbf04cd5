"""Who speaks: the speaker sieve on passages of real books (its PDNC scores: test_dialogue.py)."""

from conftest import PDNC

from tasks.characters import speakers_of
from tasks.dialogue import extract_utterances
from tasks.pdnc import align, load_novel
from tasks.speakers import assign_speakers, narrator_name

# Pride and Prejudice, chapter 41: Wickham and Elizabeth, named only at the end of the exchange.
WICKHAM = (
    'With an air of indifference he soon afterwards added, "How long did you\nsay that he was at Rosings?"\n\n'
    '"Nearly three weeks."\n\n"And you saw him frequently?"\n\n"Yes, almost every day."\n\n'
    '"His manners are very different from his cousin\'s."\n\n'
    '"Yes, very different. But I think Mr. Darcy improves on acquaintance."\n\n'
    '"Indeed!" cried Wickham with a look which did not escape her. "And pray\nmay I ask?"\n\n'
    '"Oh, no!" said Elizabeth. "In essentials, I believe, he is very much\nwhat he ever was."\n'
)


def test_turns_alternate_in_an_exchange_of_two():
    utterances = assign_speakers(extract_utterances(WICKHAM))
    assert [(u.speaker, u.speaker_source) for u in utterances] == [
        ("Wickham", "turn"),
        ("Elizabeth", "turn"),
        ("Wickham", "turn"),
        ("Elizabeth", "turn"),
        ("Wickham", "turn"),
        ("Elizabeth", "turn"),
        ("Wickham", "explicit"),
        ("Elizabeth", "explicit"),
    ]


def test_a_third_speaker_nearby_stops_the_alternation():
    passage = WICKHAM.replace('"Nearly three weeks."', '"Nearly three weeks," said Jane.')
    utterances = assign_speakers(extract_utterances(passage))
    assert utterances[1].speaker == "Jane" and utterances[0].speaker == ""  # Jane, Wickham, Elizabeth: three
    assert all(u.speaker_source in ("explicit", "") for u in utterances[:3])


def test_a_speech_that_calls_someone_by_name_is_not_theirs():
    passage = WICKHAM.replace('"Yes, almost every day."', '"Yes, Wickham, almost every day."')
    by_text = {u.text: u for u in assign_speakers(extract_utterances(passage))}
    assert by_text["Yes, Wickham, almost every day."].speaker != "Wickham"


def test_the_rest_of_a_named_turn_is_the_same_speaker():  # Pride and Prejudice's "her companion added"
    passage = (
        '"Oh, no!" said Elizabeth.\n\nAfter a short pause, her companion added,\n\n"When I said that, I meant more."\n'
    )
    utterances = assign_speakers(extract_utterances(passage))
    assert [(u.speaker, u.speaker_source) for u in utterances] == [
        ("Elizabeth", "explicit"),
        ("Elizabeth", "continuation"),  # extraction joined the two in one turn; the sieve names the second
    ]


# Pride and Prejudice, chapter 49: Elizabeth and her father, then "she cried" across a paragraph of narration.
LETTER = (
    '"And have you answered the letter?" said Elizabeth.\n\n"No; but it must be done soon."\n\n'
    "Most earnestly did she then intreat him to lose no more time before he\nwrote.\n\n"
    '"Oh! my dear father," she cried, "come back, and write immediately."\n'
)


def test_a_pronoun_names_the_speaker_two_turns_back_of_that_gender():
    utterances = assign_speakers(extract_utterances(LETTER), genders={"Elizabeth": "F"})
    assert [(u.speaker, u.speaker_source) for u in utterances] == [
        ("Elizabeth", "explicit"),
        ("", ""),  # her father, whom nothing names
        ("Elizabeth", "anaphoric"),
    ]
    he_cried = assign_speakers(extract_utterances(LETTER.replace("she cried", "he cried")), genders={"Elizabeth": "F"})
    assert he_cried[2].speaker == ""  # "he" cannot be Elizabeth, and nobody else is known
    assert assign_speakers(extract_utterances(LETTER))[2].speaker == ""  # without the cast's genders, no guess


def test_a_pronoun_is_not_resolved_when_two_of_that_gender_talk_nearby():
    passage = LETTER + '\n"Yes, do, papa," said Jane.\n'
    utterances = assign_speakers(extract_utterances(passage), genders={"Elizabeth": "F", "Jane": "F"})
    assert [u.speaker for u in utterances] == ["Elizabeth", "", "", "Jane"]  # "she" may be either sister


def test_an_exchange_without_narration_alternates_from_its_first_named_turn():
    # the Wickham passage named only at its second and fifth turns: no two known turns in a row
    passage = WICKHAM.replace('"Nearly three weeks."', '"Nearly three weeks," said Elizabeth.')
    passage = passage.replace("cousin's.\"", "cousin's,\" said Wickham.").replace(" cried Wickham", "")
    passage = passage.replace('"Oh, no!" said Elizabeth. "In', '"Oh, no! In')
    utterances = assign_speakers(extract_utterances(passage))
    assert [(u.speaker, u.speaker_source) for u in utterances] == [
        ("Wickham", "turn"),  # not by parity (before the first named turn), by alternation from the two after it
        ("Elizabeth", "explicit"),
        ("Wickham", "turn"),
        ("Elizabeth", "turn"),
        ("Wickham", "explicit"),
        ("Elizabeth", "turn"),
        ("Wickham", "turn"),
        ("Elizabeth", "turn"),
    ]


# Pride and Prejudice, chapter 6: Sir William ends by calling Mr. Darcy, who answers.
DANCING = (
    'Sir William only smiled. "Your friend performs delightfully," he\ncontinued, after a pause, on seeing '
    'Bingley join the group; "and I doubt\nnot that you are an adept in the science yourself, Mr. Darcy."\n\n'
    '"You saw me dance at Meryton, I believe, sir."\n\n'
    '"Yes, indeed, and received no inconsiderable pleasure from the sight. Do\nyou often dance at St. James\'s?"\n\n'
    '"Never, sir."\n'
)


def test_whom_a_speech_ends_by_calling_answers_it():
    utterances = assign_speakers(extract_utterances(DANCING), names={"Sir William", "Mr. Darcy", "Bingley"})
    assert [(u.speaker, u.speaker_source) for u in utterances] == [
        ("Sir William", "explicit"),
        ("Mr. Darcy", "vocative"),
        ("Sir William", "turn"),
        ("Mr. Darcy", "turn"),
    ]
    # only the cast's names count: without it, nobody is called
    assert assign_speakers(extract_utterances(DANCING))[1].speaker == ""


def test_whom_one_side_of_an_exchange_keeps_calling_is_the_other_side():
    passage = WICKHAM.replace('"Nearly three weeks."', '"Nearly three weeks," said Elizabeth.')
    passage = passage.replace('"Yes, almost', '"Yes, Mr. Wickham, almost').replace(
        '"Yes, very different. But', '"Yes, very different. But, Mr. Wickham,'
    )
    passage = passage.replace(" cried Wickham", "").replace('"Oh, no!" said Elizabeth. "In', '"Oh, no! In')
    utterances = assign_speakers(extract_utterances(passage), names={"Elizabeth", "Mr. Wickham"})
    assert [u.speaker for u in utterances] == ["Mr. Wickham", "Elizabeth"] * 4  # the first by alternation
    once = passage.replace("But, Mr. Wickham,", "But")  # called once: not enough to name him
    named = [u.speaker for u in assign_speakers(extract_utterances(once), names={"Elizabeth", "Mr. Wickham"})]
    assert named == ["", "Elizabeth"] + ["", "Elizabeth"] * 3  # her own side only (below)


# Pride and Prejudice, chapter 40: Jane is only "she"; Elizabeth is named once.
SISTERS = (
    '"His being so sure of succeeding, was wrong," said she; "and certainly\nought not to have appeared; but '
    'consider how much it must increase his\ndisappointment."\n\n"Indeed," replied Elizabeth, "I am heartily '
    "sorry for him; but he has\nother feelings which will probably soon drive away his regard for me.\nYou do "
    'not blame me, however, for refusing him?"\n\n"Blame you! Oh, no."\n\n"But you blame me for having '
    'spoken so warmly of Wickham."\n\n"No--I do not know that you were wrong in saying what you did."\n\n'
    '"But you _will_ know it, when I have told you what happened the very\nnext day."\n'
)


def test_one_named_side_of_an_exchange_has_every_second_turn_after_it():
    utterances = assign_speakers(extract_utterances(SISTERS))
    assert [(u.speaker, u.speaker_source) for u in utterances] == [
        ("", ""),  # Jane's "she": no cast, so no pronoun is resolved here
        ("Elizabeth", "explicit"),
        ("", ""),
        ("Elizabeth", "turn"),
        ("", ""),
        ("Elizabeth", "turn"),
    ]
    longer = SISTERS + '\n"Oh! no."\n\n"Yes, Jane."\n'  # to the end of the exchange
    assert [u.speaker for u in assign_speakers(extract_utterances(longer))][-2:] == ["", "Elizabeth"]


def test_a_pronoun_names_the_subject_of_the_narration_before_the_speech():  # The Age of Innocence, chapter 17
    passage = (
        "Archer rose to go, and as his hand met Madame Olenska's he felt that\nshe was waiting for him to make "
        'some allusion to her unanswered letter.\n\n"When can I see you?" he asked, as she walked with him to the '
        "door of\nthe room.\n"
    )
    genders = {"Archer": "M", "Madame Olenska": "F"}
    (asked,) = assign_speakers(extract_utterances(passage), genders, set(genders), passage)
    assert (asked.speaker, asked.speaker_source) == ("Archer", "anaphoric")
    (asked,) = assign_speakers(extract_utterances(passage), genders, set(genders))
    assert asked.speaker == ""  # without the text, the narration is not read
    # another man named in the narration after its subject: "he" may be either
    other = passage.replace("met Madame Olenska's", "met Beaufort's")
    genders |= {"Beaufort": "M"}
    assert assign_speakers(extract_utterances(other), genders, set(genders), other)[0].speaker == ""
    # "she asked": the narration's man is not her
    she = passage.replace("he asked, as she", "she asked, as he")
    assert assign_speakers(extract_utterances(she), genders, set(genders), she)[0].speaker == ""

    # A Room with a View, chapter 2: a sentence may end inside a parenthesis, and the next one is read
    lavish = (
        "The men on the\nriver were fishing. (Untrue; but then, so is most information.) Then\nMiss Lavish "
        'darted under the archway of the white bullocks, and she\nstopped, and she cried:\n\n"A smell! a true '
        'Florentine smell!"\n'
    )
    genders = {"Miss Lavish": "F", "Lucy": "F"}
    assert assign_speakers(extract_utterances(lavish), genders, set(genders), lavish)[0].speaker == "Miss Lavish"


def test_the_narration_read_for_a_pronoun_starts_after_the_last_quote_and_passes_over_its_pronouns():
    # Oliver Twist, chapter 44: the narration opens right after Fagin's closing quote
    sikes = (
        '"Lost!" cried Fagin. "She has pretty well settled that, in her own\nmind, already."\n\n'
        "Sikes looked with an aspect of great perplexity into the Jew's face,\nand reading no satisfactory "
        "explanation of the riddle there, clenched\nhis coat collar in his huge hand and shook him soundly.\n\n"
        '"Speak, will you!" he said; "or if you don\'t, it shall be for want of\nbreath."\n'
    )
    genders = {"Fagin": "M", "Sikes": "M"}
    utterances = assign_speakers(extract_utterances(sikes), genders, set(genders), sikes)
    assert [(u.speaker, u.speaker_source) for u in utterances] == [("Fagin", "explicit"), ("Sikes", "anaphoric")]

    # A Room with a View, chapter 18: "He said:" is about the man before it, two sentences back
    beebe = (
        '"It would be DEATH to gossip about Mr. Vyse\'s dismissal at\nthe present moment."\n\n'
        "Mr. Beebe raised his eyebrows. Death is a strong word--surely too\nstrong. There was no question of "
        'tragedy. He said: "Of course, Miss\nHoneychurch will make the fact public in her own way."\n\n'
        '"I know," said Miss Bartlett civilly.\n'
    )
    genders = {"Mr. Beebe": "M", "Miss Bartlett": "F", "Freddy": "M", "Miss Honeychurch": "F"}
    utterances = assign_speakers(extract_utterances(beebe), genders, set(genders), beebe)
    assert [u.speaker for u in utterances] == ["Miss Bartlett", "Mr. Beebe", "Miss Bartlett"]
    # a sentence about another man in between: "He" may be either
    other = beebe.replace("There was no", "Freddy saw no")
    assert assign_speakers(extract_utterances(other), genders, set(genders), other)[1].speaker == ""

    # Pride and Prejudice, chapter 56: "Eliza" is a name of its own, not a part of "Elizabeth"
    walk = (
        "They proceeded in silence along the gravel walk\nthat led to the copse; Elizabeth was determined to "
        'make no effort for\nconversation with a woman.\n\n"How could I ever think her like her nephew?" said '
        "she, as she looked in\nher face.\n"
    )
    genders = {"Elizabeth": "F", "Eliza": "F", "Lady Catherine": "F"}
    assert assign_speakers(extract_utterances(walk), genders, set(genders), walk)[0].speaker == "Elizabeth"


def test_no_rule_names_someone_their_attribution_rules_out_by_gender():
    genders = {"Wickham": "M", "Elizabeth": "F"}
    he = WICKHAM.replace("cousin's.\"", "cousin's,\" he said.")
    assert [u.speaker for u in assign_speakers(extract_utterances(he), genders, set(genders))] == [
        "Wickham",
        "Elizabeth",
    ] * 4
    for attribution in ("she said", "said the lady"):  # the exchange is not what alternation takes it for
        passage = WICKHAM.replace("cousin's.\"", f"cousin's,\" {attribution}.")
        utterances = assign_speakers(extract_utterances(passage), genders, set(genders))
        assert utterances[4].text.startswith("His manners")
        assert [u.speaker for u in utterances] == [""] * 5 + ["Elizabeth", "Wickham", "Elizabeth"]
    # without the cast's genders, alternation gives the turn to Wickham
    assert assign_speakers(extract_utterances(passage))[4].speaker == "Wickham"


def test_a_description_the_book_uses_for_one_person_names_them_where_they_talk():
    # Oliver Twist: "said the girl" is Nancy's, and the other rules find her for dozens of those turns
    text, gold = load_novel(PDNC / "OliverTwist")
    utterances, _ = speakers_of(text, extract_utterances(text))
    girl = [(u, m) for u, m in zip(utterances, align(utterances, gold)) if u.subject == "the girl" and m]
    described = [gold[m[0]].speaker for u, m in girl if u.speaker_source == "anaphoric"]
    assert len(described) >= 40 and set(described) == {"Nance"}  # PDNC's name for her
    # the girl who is someone else, in a scene where Nancy does not talk, keeps no name
    others = [u.speaker for u, m in girl if gold[m[0]].speaker not in ("Nance", "Nancy")]
    assert others and not any(others)


def test_a_turn_between_two_of_one_persons_is_theirs_whatever_names_they_go_by():
    # Oliver Twist, chapter 2: Mr. Bumble is "the beadle", "Bumble" and "Mr. Bumble" in one exchange with
    # Mrs. Mann, so his side of it reads as three names; a turn between two of his, hers between, is his
    text, _ = load_novel(PDNC / "OliverTwist")
    utterances, _ = speakers_of(text, extract_utterances(text))
    k = next(k for k, u in enumerate(utterances) if u.text == "I inwented it.")
    found = [(u.speaker, u.speaker_source) for u in utterances[k - 2 : k + 3]]
    assert found == [
        ("Bumble", "explicit"),  # "said Bumble"
        ("Mrs. Mann", "explicit"),
        ("Bumble", "turn"),  # "I inwented it."
        ("Mrs. Mann", "turn"),  # "You, Mr. Bumble!"
        ("Mr. Bumble", "vocative"),  # "I, Mrs. Mann."
    ]


def test_the_first_person_narrator_is_whom_the_speeches_beside_theirs_call_by_name():
    # The Sign of the Four: Watson tells it ("I said"), and Holmes calls him Watson
    text, gold = load_novel(PDNC / "TheSignOfTheFour")
    found = extract_utterances(text)
    names = {"Watson", "Holmes", "Mr. Sherlock Holmes", "Miss Morstan", "Mr. Thaddeus", "Sahib", "Jones"}
    assert narrator_name(found, names) == "Watson"
    assert narrator_name(found, names - {"Watson"}) == ""  # nobody else is called half as often
    utterances, _ = speakers_of(text, found)
    narrated = [gold[m[0]].speaker for u, m in zip(utterances, align(utterances, gold)) if m and u.speaker == "Watson"]
    assert len(narrated) > 100 and narrated.count("Dr. Watson") >= 0.9 * len(narrated)
    assert not any(u.speaker == "I" for u in utterances)
    # a story told in the third person has no narrator to name
    text, _ = load_novel(PDNC / "PrideAndPrejudice")
    assert narrator_name(extract_utterances(text), {"Elizabeth", "Mr. Darcy", "Jane", "Lizzy"}) == ""
