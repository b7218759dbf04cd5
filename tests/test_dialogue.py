"""Extraction and pairing: passages of the real books pinned by hand, and the PDNC gold standard."""

import re
import statistics

import pytest
from conftest import GUTENBERG, PDNC

from tasks.attribution import VERB_WORDS, alternation, find_subject
from tasks.characters import speakers_of
from tasks.dialogue import detect_convention, extract_utterances, split_paragraphs
from tasks.gutenberg import decode_text, strip_boilerplate
from tasks.pairing import pair_utterances
from tasks.pdnc import (
    STYLES,
    Gold,
    align,
    load_aliases,
    load_novel,
    restyle,
    score,
    speaker_accuracy,
    speaker_precision,
    words,
)


def book(book_id: int) -> str:
    path = GUTENBERG / f"cache/epub/{book_id}/pg{book_id}.txt"
    return strip_boilerplate(decode_text(path.read_bytes(), "utf-8", str(path)))


def texts(passage: str) -> list[str]:
    return [u.text for u in extract_utterances(passage)]


def texts_and_pairs(passage: str) -> tuple[list[str], int]:
    """The passage's utterances and how many pairs they make."""
    utterances = extract_utterances(passage)
    return [u.text for u in utterances], len(pair_utterances(utterances))


@pytest.mark.parametrize(
    "book_id, convention",
    [
        (1342, "double-curly"),
        (158, "double-curly"),
        (11, "single-curly"),
        (4217, "dashes"),
        (14155, "guillemets+dashes"),
        (22367, "guillemets-reversed"),
        (844, "play"),
    ],
)
def test_convention_is_detected_per_book(book_id, convention):
    text = book(book_id)
    assert str(detect_convention(text, split_paragraphs(text))) == convention
    assert len(extract_utterances(text)) > 50


def test_attribution_inside_a_speech_is_removed():  # Pride and Prejudice, chapter 1
    passage = (
        "“My dear Mr. Bennet,” said his lady to him one day, “have you heard that\n"
        "Netherfield Park is let at last?”\n\nMr. Bennet replied that he had not.\n\n"
        "“But it is,” returned she; “for Mrs. Long has just been here, and she\ntold me all about it.”\n"
    )
    assert texts(passage) == [
        "My dear Mr. Bennet, have you heard that Netherfield Park is let at last?",
        "But it is, for Mrs. Long has just been here, and she told me all about it.",
    ]
    assert texts('"Yes," said she, "I will."') == ["Yes, I will."]


def test_a_speech_over_several_paragraphs_is_one_utterance():  # Emma, Mr. Knightley's long speech form
    passage = (
        "“I have a great mind to go,” said he. “It is a long way.\n\n"
        "“But I shall be back by dinner, and you will not miss me.”\n\n“Do go,” said Emma.\n"
    )
    assert texts(passage) == [
        "I have a great mind to go, It is a long way. But I shall be back by dinner, and you will not miss me.",
        "Do go",
    ]


def test_single_quotes_where_the_apostrophe_is_the_closing_mark():  # Alice, chapter 7
    passage = (
        "‘Have some wine,’ the March Hare said in an encouraging tone.\n\n"
        "Alice looked all round the table, but there was nothing on it but tea. ‘I don’t see any wine,’ "
        "she remarked.\n\n‘There isn’t any,’ said the March Hare.\n\n"
        "‘Then it wasn’t very civil of you to offer it,’ said Alice angrily.\n"
    )
    assert texts(passage) == [
        "Have some wine",
        "I don’t see any wine",
        "There isn’t any",
        "Then it wasn’t very civil of you to offer it",
    ]


def test_an_apostrophe_at_a_word_end_does_not_close_the_quote():
    passage = "‘The Miss Bennets’ carriage is at the door, and I’m goin’ home,’ said Kitty.\n"
    assert texts(passage) == ["The Miss Bennets’ carriage is at the door, and I’m goin’ home"]


def test_em_dash_openers_without_closing_marks():  # Joyce, A Portrait of the Artist
    utterances = extract_utterances(book(4217))
    by_text = {u.text: u for u in utterances}
    assert "Good morning, everybody" in by_text and by_text["Good morning, everybody"].speaker == "Stephen"
    assert "All in!" in by_text and "Jesus! O Jesus! Jesus!" in by_text


def test_french_turn_dashes_and_guillemets():  # Flaubert, Madame Bovary
    found = texts(book(14155))
    assert "Levez-vous" in found and "Êtes-vous le médecin?" in found
    assert "Ah! mon Dieu!" in found  # «guillemets» inside narration


def test_german_reversed_guillemets():  # Kafka, Die Verwandlung
    found = texts(book(22367))
    assert "Was ist mit mir geschehen?" in found
    assert "Ach Gott, was für einen anstrengenden Beruf habe ich gewählt!" in " ".join(found)


def test_a_play_gives_speeches_with_their_speakers():  # Wilde, The Importance of Being Earnest
    utterances = extract_utterances(book(844))
    assert (utterances[0].speaker, utterances[0].text) == ("Algernon", "Did you hear what I was playing, Lane?")
    assert (utterances[1].speaker, utterances[1].text) == ("Lane", "I didn’t think it polite to listen, sir.")
    pairs = pair_utterances(utterances)
    assert (pairs[0].prompt, pairs[0].response) == (utterances[0].text, utterances[1].text)


def test_a_chapter_break_ends_the_conversation():
    passage = "“Is it late?” asked Jane.\n\n“Very late,” said Lydia.\n\nCHAPTER II.\n\n“Good morning,” said Mary.\n"
    pairs = pair_utterances(extract_utterances(passage))
    assert [(p.prompt, p.response) for p in pairs] == [("Is it late?", "Very late")]


def test_a_chapter_heading_after_several_blank_lines_ends_the_conversation():  # Pride and Prejudice
    passage = (
        '"Depend upon it, my dear, that when there are sixteen, we shall not be able to dance."\n\n\n\n'
        "CHAPTER II.\n\n\nMr. Bennet was among the earliest of those who waited on Mr. Bingley.\n\n"
        '"I hope Mr. Bingley will like it, Lizzy."\n'
    )
    assert len(extract_utterances(passage)) == 2 and pair_utterances(extract_utterances(passage)) == []


def test_long_narration_ends_the_conversation():
    narration = "She walked on for a long time without a word. " * 20
    passage = f"“Is it late?” asked Jane.\n\n{narration}\n\n“Good morning,” said Mary.\n"
    assert pair_utterances(extract_utterances(passage), max_gap=600) == []
    assert len(pair_utterances(extract_utterances(passage), max_gap=2000)) == 1


def test_the_same_named_speaker_going_on_is_one_speech_not_a_pair():  # Alice, chapter 10
    passage = (
        '"Chorus again!" cried the Gryphon, and the Mock Turtle had just begun\nto repeat it, when a cry of '
        '"The trial\'s beginning!" was heard in the\ndistance.\n\n"Come on!" cried the Gryphon, and, taking '
        'Alice by the hand, it hurried\noff, without waiting for the end of the song.\n\n"What trial is it?" '
        'Alice panted as she ran; but the Gryphon only\nanswered "Come on!" and ran the faster.\n'
    )
    utterances = extract_utterances(passage)
    assert [(u.text, u.speaker) for u in utterances] == [
        ("Chorus again! Come on!", "the Gryphon"),  # the cry in the narration is not the Gryphon's
        ("What trial is it?", "Alice"),
        ("Come on!", "the Gryphon"),
    ]
    pairs = pair_utterances(utterances)
    assert [(p.prompt, p.response) for p in pairs] == [
        ("Chorus again! Come on!", "What trial is it?"),
        ("What trial is it?", "Come on!"),
    ]


def test_unnamed_quotes_side_by_side_are_not_an_exchange():  # Oliver Twist, chapter 10: the crowd
    passage = (
        "Stopped at last! A clever blow. He is down upon the pavement; and the\ncrowd eagerly gather round him: "
        'each new comer, jostling and struggling\nwith the others to catch a glimpse. "Stand aside!" "Give him a '
        'little\nair!" "Nonsense! he don\'t deserve it." "Where\'s the gentleman?" "Here\nhis is, coming down the '
        'street." "Make room there for the gentleman!"\n"Is this the boy, sir!" "Yes."\n\n'
    )
    utterances = extract_utterances(passage)
    assert len({u.turn for u in utterances}) == 8 and not any(u.speaker for u in utterances)  # eight voices
    assert pair_utterances(utterances) == []  # (below, narration between tells of a reply in the paragraph)


def test_each_quote_gets_the_attribution_nearest_it():  # Winnie-the-Pooh; A Room with a View; Oliver Twist
    utterances = extract_utterances(
        'Christopher Robin whispered to\nRabbit, and Rabbit said "Yes, yes, of course," and they walked.\n\n'
        '"I didn\'t want the others to hear," said Christopher Robin.\n\n'
        "Lucy felt that she had been selfish. \"Charlotte, you mustn't spoil me:\nof course, you must look over "
        'the Arno, too. The first\nvacant room in the front--" "You must have it," said Miss Bartlett.\n\n'
        '"Now," said Sikes, as he resumed his seat, "if you\'ll give us something\nto eat."\n'
    )
    assert [(u.text, u.speaker) for u in utterances] == [
        ("Yes, yes, of course", "Rabbit"),
        ("I didn't want the others to hear", "Christopher Robin"),
        (
            "Charlotte, you mustn't spoil me: of course, you must look over the Arno, too. The first vacant room "
            "in the front--",
            "Lucy",
        ),  # fmt: skip
        ("You must have it", "Miss Bartlett"),
        ("Now, if you'll give us something to eat.", "Sikes"),
    ]
    utterances = extract_utterances(  # Great Expectations, chapter 51: "Mr." does not end a sentence
        "And seeing that Mr. Jaggers stood quite still and\nsilent, and apparently quite obdurate, under this "
        'appeal, I turned to\nWemmick, and said, "Wemmick, I know you to be a man with a gentle\nheart."\n'
    )
    assert [u.speaker for u in utterances] == [""]  # not Jaggers


def test_a_name_and_any_verb_after_a_comma_or_a_named_reply_attribute_a_quote():  # Age of Innocence; Anne
    utterances = extract_utterances(
        '"Ah, well, Boston is more conservative than New York," Mrs. Archer conceded.\n\n'
        '"Well now, she\'s such a little thing," feebly reiterated Matthew.\n\n'
        '"I wonder which floor--?" Dallas conjectured; and moving toward the porte-cochere he looked in.\n\n'
        '"He\'ll murder me!" blubbered Noah. "Charlotte! missis!"\n\n'  # Oliver Twist: a verb before the name
        '"Not much wonder! Such silly doings!" was Marilla\'s response.\n\n'
        '"Three pound fifteen." "Not a farthing more," was the firm reply of Mr. Limbkins.\n\n'  # Oliver Twist
        '"Then stay," interjected Matthew\'s sister.\n\n'  # a possessive: someone else, unnamed
        '"Mother doesn\'t think her simple." Janey looked at her brother.\n'  # no comma: an action, not a tag
    )
    assert [u.speaker for u in utterances] == [
        *("Mrs. Archer", "Matthew", "Dallas", "Noah", "Marilla", "", "Mr. Limbkins", "", "")
    ]
    # the subject of the sentence that introduces a quote, after a conjunction and an aside (P&P, chapter 14;
    # A Room with a View, chapter 8)
    for passage, speaker in [
        (
            "Lydia was bid to hold her tongue; but Mr. Collins, much offended, laid aside his book, and said,",
            "Mr. Collins",
        ),
        ("Lucy, from a cowardly wish to improve the situation, said:", "Lucy"),
    ]:
        assert [u.speaker for u in extract_utterances(passage + '\n\n"I have often observed it."\n')] == [speaker]


def test_a_name_with_an_epithet_is_named_and_two_of_them_are_not():  # Anne; Oliver Twist; Emma
    utterances = extract_utterances(
        '"You\'d better not," said the unsympathetic Marilla.\n\n'
        '"What\'s that?" inquired the unsentimental Mr. Sikes.\n\n'
        '"We shall," asked the two Harringtons.\n'
    )
    assert [u.speaker for u in utterances] == ["Marilla", "Mr. Sikes", ""]


def test_a_speaker_who_goes_on_after_narration_is_not_answering():  # Pride and Prejudice, chapter 58
    passage = (
        '"If you _will_ thank me," he replied, "let it be for yourself alone."\n\n'
        "Elizabeth was too much embarrassed to say a word. After a short pause,\nher companion added, "
        '"You are too generous to trifle with me."\n\n"Oh, no," said Elizabeth.\n'
    )
    pairs = pair_utterances(extract_utterances(passage))
    assert [(p.prompt, p.response) for p in pairs] == [("You are too generous to trifle with me.", "Oh, no")]


@pytest.mark.parametrize("style", STYLES)
def test_pdnc_scores_in_each_quoting_style(style):
    scores, speakers, sieve, accuracy = [], [], [], []
    for folder in sorted(p for p in PDNC.iterdir() if p.is_dir()):
        text, gold = load_novel(folder)
        aliases = load_aliases(folder)
        text = restyle(text, style)
        utterances = extract_utterances(text)
        scores.append(score(utterances, pair_utterances(utterances), gold))
        speakers.append(speaker_precision(utterances, gold, aliases)[0])
        named = speakers_of(text, utterances)[0]  # the speaker sieve, as the pipeline runs it
        sieve.append(speaker_precision(named, gold, aliases)[0])
        accuracy.append(speaker_accuracy(named, gold, aliases))
    assert statistics.mean(speakers) >= 0.97  # a speaker the attribution names is nearly always the annotated one
    # the sieve, a little under today's scores (README): the attribution alone names 0.35 of all quotations
    # right, 0.09 of the anaphoric and 0.01 of the implicit ones
    assert statistics.mean(sieve) >= 0.92  # the speakers issue's target
    for kind, least in (("all", 0.60), ("Explicit", 0.90), ("Anaphoric", 0.41), ("Implicit", 0.42)):
        assert statistics.mean(a[kind] for a in accuracy) >= least, kind
    # a guard against regressions, a little under today's scores (README); the reference extractor
    # scores 0.92 F1, 0.83 pair precision, 0.78 pair recall (0.91, 0.83, 0.76 in single quotes)
    assert statistics.mean(s.f1 for s in scores) >= 0.95
    assert statistics.mean(s.pair_precision for s in scores) >= 0.86
    assert statistics.mean(s.pair_recall for s in scores) >= 0.90  # the target


def test_straight_single_quotes_of_an_ascii_edition():  # Alice, 2018 ASCII edition
    path = GUTENBERG / "variants/11_carroll_alices-adventures-in-wonderland_2018-ascii.txt"
    text = strip_boilerplate(decode_text(path.read_bytes(), "ascii", str(path)))
    assert str(detect_convention(text, split_paragraphs(text))) == "single-straight"
    curly = [u.text.replace("’", "'") for u in extract_utterances(book(11))]
    straight = [u.text for u in extract_utterances(text)]
    assert sum(a == b for a, b in zip(straight, curly)) > 0.9 * len(curly)  # the same speeches, in step
    assert not any(u.startswith("DRINK ME") for u in straight)  # a label the narrator quotes


def test_titles_and_labels_the_narrator_quotes_are_not_speech():
    text = (
        'Before the house hung a card with "To Let" on it, and the boat was named "Sea Swallow".\n\n'
        'Then he cried "Stop!" and ran to the door.\n\n"Who is there?" said Jane.\n'
    )
    assert [u.text for u in extract_utterances(text)] == ["Stop!", "Who is there?"]
    text = (  # The Age of Innocence; The Picture of Dorian Gray; then Alice, chapter 1, where the quote is speech
        'A dark shabby\nroom hung with yellowing prints of "The Death of Chatham" and "The\nCoronation of '
        'Napoleon."\n\nHe read Vernon Lee\'s "Euphorion," the essays of\nP. G. Hamerton, and a wonderful '
        'new volume called "The Renaissance" by\nWalter Pater.\n\n'
        'It had no pictures or\nconversations in it, "and what is the use of a book," thought Alice\n'
        '"without pictures or conversations?"\n'
    )
    assert [u.text for u in extract_utterances(text)] == [
        "and what is the use of a book, without pictures or conversations?"
    ]


def test_a_letter_quoted_in_full_is_not_talk():  # A Room with a View, chapter 14
    passage = (
        "Lucy was much annoyed, and replied as follows:\n\n"
        '"Beauchamp Mansions, S.W."\n\n"Dear Charlotte,"\n\n'
        '"Many thanks for your warning. When Mr. Emerson forgot himself on the\nmountain, you made me promise '
        'not to tell mother. We expect to be married in January."\n\n'
        '"Miss Lavish cannot have told you much about me, for I am not at Windy\nCorner at all, but here."\n\n'
        '"Yours affectionately,"\n\n"L. M. Honeychurch."\n\n\n'
        "Secrecy has this disadvantage: we lose the sense of proportion.\n\n"
        '"Emerson\'s a common enough name," Lucy remarked.\n'
    )
    assert texts(passage) == ["Emerson's a common enough name"]
    passage = (  # Emma, chapter 50: a valediction of several words
        "                                                       WINDSOR-JULY.\nMY DEAR MADAM,\n\n"
        '"If I made myself intelligible yesterday, this letter will be\nexpected; but I am quite of your '
        'opinion.--Miss\nW. calls me the child of good fortune. I hope she is right."\n\n'
        '                    "Your obliged and affectionate Son,\n\n'
        '                                                 "F. C. WESTON CHURCHILL."\n'
    )
    assert texts(passage) == []
    # no valediction: talk that opens with "My dear," is not a letter
    assert texts('"My dear,"\n\n"Is it you, Jane?"\n\n"It is," said Jane.\n') == [
        "My dear",
        "Is it you, Jane?",
        "It is",
    ]


def test_an_illustrated_editions_captions_are_not_talk():  # Pride and Prejudice (1894), its list and chapter 1
    utterances = extract_utterances(
        "ILLUSTRATIONS.\n\n"
        "“He came down to see the place”                                        2\n\n"
        "“I’m the tallest”                                                      9\n\n"
        "CHAPTER I.\n\n"
        "“Do not you want to know who has taken it?” cried his wife, impatiently.\n\n"
        "“_You_ want to tell me, and I have no objection to hearing it.”\n\n"
        "[Illustration:\n\n“He came down to see the place”\n\n[_Copyright 1894 by George Allen._]]\n\n"
        "This was invitation enough.\n\n"
        "“Why, my dear, you must know, Mrs. Long says that Netherfield is taken.”\n"
    )
    assert [u.text[:12] for u in utterances] == ["Do not you w", "_You_ want t", "Why, my dear"]
    assert len(pair_utterances(utterances)) == 2  # the caption does not answer Mr. Bennet


def test_a_song_in_quotes_is_not_talk():  # Alice, chapter 2
    passage = (
        "did not come the same as they used to do:--\n\n"
        '"How doth the little crocodile\n    Improve his shining tail,\nAnd pour the waters of the Nile\n'
        '    On every golden scale!"\n\n'
        '"I\'m sure those are not the right words," said poor Alice, and her eyes\nfilled with tears again.\n'
    )
    assert texts(passage) == ["I'm sure those are not the right words"]


def test_words_written_or_only_meant_are_not_speech():  # The Age of Innocence
    passage = (
        'and said:  "You\'re not changed."\n\n'
        'He felt like answering:  "I was, till I saw you again;" but instead he\nstood up abruptly.\n\n'
        'In it he read:  "Granny\'s telegram successful.  Papa and Mamma agree\nmarriage after Easter."\n\n'
        "Her eyes fled to his beseechingly, and their look said:  \"Remember, we're doing\nthis because it's right.\"\n"
    )
    assert texts(passage) == ["You're not changed."]


def test_a_reply_in_the_same_sentence_is_another_speaker():  # The Age of Innocence, chapter 17
    passage = (
        '"I shall see you later, dear friend?" he suggested to the Marchioness,\nwho replied with a smile:  '
        '"As soon as Ellen\'s carriage comes I will\njoin you."\n\n'
        '"Ah--then I won\'t ask him to dine!" he concluded with a laugh; and May\n'
        'echoed, bewildered:  "Goodness--ask the Carfrys\' tutor?"\n'
    )
    pairs = pair_utterances(extract_utterances(passage))
    assert [(p.prompt, p.response) for p in pairs] == [
        ("I shall see you later, dear friend?", "As soon as Ellen's carriage comes I will join you."),
        ("As soon as Ellen's carriage comes I will join you.", "Ah--then I won't ask him to dine!"),
        ("Ah--then I won't ask him to dine!", "Goodness--ask the Carfrys' tutor?"),
    ]


def test_one_speakers_quotes_around_narration_in_a_paragraph_are_one_utterance():  # Anne of Green Gables, ch. 20
    passage = (
        '"Will you ever have any sense, Anne?" groaned Marilla.\n\n'
        '"Oh, yes, I think I will, Marilla," returned Anne optimistically. A good\ncry, indulged in the grateful '
        'solitude of the east gable, had soothed\nher nerves. "I think my\nprospects of becoming sensible are '
        'brighter now than ever."\n\n"I don\'t see how," said Marilla.\n'
    )
    assert texts(passage) == [
        "Will you ever have any sense, Anne?",
        "Oh, yes, I think I will, Marilla I think my prospects of becoming sensible are brighter now than ever.",
        "I don't see how",
    ]


def test_an_inner_quote_in_single_quotes_does_not_end_the_speech():  # Winnie-the-Pooh, in British style
    passage = (
        "‘I wish you would bring it out here, and walk up and down with it, and\nlook up at me every now and then, "
        "and say ’Tut-tut, it looks like rain.’\nI think, if you did that, it would help the deception.’\n\n"
        "‘I think so,’ said Christopher Robin.\n"
    )
    assert texts(passage) == [
        "I wish you would bring it out here, and walk up and down with it, and look up at me every now and then, "
        "and say ’Tut-tut, it looks like rain.’ I think, if you did that, it would help the deception.",
        "I think so",
    ]


def test_a_long_story_over_many_paragraphs_is_one_turn_in_pieces():  # Great Expectations, Magwitch's story
    utterances = extract_utterances(book(1400))
    first = next(u for u in utterances if u.text.startswith("Dear boy and Pip’s comrade. I am not a-going"))
    story = [u for u in utterances if u.turn == first.turn]
    assert len(story) >= 4 and story[1].text.startswith("Tramping, begging, thieving")
    assert all(len(u.text) < 3000 for u in story)  # pieces a reply can answer and a model can hold
    pairs = {p.prompt_index: p for p in pair_utterances(utterances)}
    assert first.index - 1 not in pairs  # "So be it." ends chapter 41; the story opens chapter 42
    assert not any(u.index in pairs for u in story[:-1])  # no pairs inside the one speaker's turn


def test_described_characters_and_the_narrator_are_named_speakers():  # Alice; The Sign of the Four
    utterances = extract_utterances(
        '"One, indeed!" said the Dormouse indignantly.\n\n"What now?" I asked.\n\n'
        '"The Hatter was the first to break the silence," he said.\n'
    )
    assert [u.speaker for u in utterances] == ["the Dormouse", "I", ""]
    assert find_subject("so Alice soon began talking again.") == ""  # no "on began" inside "soon began"
    utterances = extract_utterances('Suddenly she turned round. "Who is there?"\n\nNobody answered, and then: "I."\n')
    assert [u.speaker for u in utterances] == ["", ""]  # sentence openers are not names
    utterances = extract_utterances(  # The Age of Innocence
        '"We are driving dear Ellen home," said Mr. van der Luyden.\n\n"Oh, no," M. Riviere\'s voice said.\n'
    )
    assert [u.speaker for u in utterances] == ["Mr. van der Luyden", ""]


def test_a_closing_single_quote_after_italics_or_before_a_dash_ends_the_speech():  # Alice; Emma, British style
    passage = (
        "‘I had _not!_’ cried the Mouse, sharply and very angrily.\n\n‘A knot!’ said Alice.\n\n"
        "‘I wonder he did not remember the book’--was all Harriet’s answer.\n"
    )
    assert texts(passage) == ["I had _not!_", "A knot!", "I wonder he did not remember the book"]


def test_the_pdnc_aligner_reads_forward():  # Oliver Twist: "No, sir," twice, a few lines apart
    gold = [Gold(0, 10, "Oliver", ("no", "sir")), Gold(20, 40, "Doctor", ("you", "feel", "sleepy")),
            Gold(50, 60, "Oliver", ("no", "sir"))]  # fmt: skip
    utterances = extract_utterances('"No, sir."\n\n"You feel sleepy?"\n\n"No, sir."\n')
    assert align(utterances, gold) == [(0, 0), (1, 1), (2, 2)]


def test_a_named_speaker_is_scored_against_the_annotated_names():  # Pride and Prejudice
    gold = [Gold(1, 30, "Mr. Bennet", words("I have not the pleasure of understanding you")),
            Gold(40, 60, "Mrs. Bennet", words("Mr Bennet how can you"))]  # fmt: skip
    aliases = {"Mr. Bennet": {"mr. bennet"}, "Mrs. Bennet": {"bennet", "mrs. bennet"}}  # as PDNC lists them
    passage = (
        '"I have not the pleasure of understanding you," said Bennet.\n\n"Mr Bennet, how can you," said Mrs. Bennet.\n'
    )
    assert speaker_precision(extract_utterances(passage), gold, aliases) == (1.0, 1.0)
    passage = passage.replace("said Bennet", "said Mrs. Bennet").replace('can you," said Mrs.', 'can you," said his')
    assert speaker_precision(extract_utterances(passage), gold, aliases) == (0.0, 0.5)  # Mrs. is not Mr. Bennet


def test_a_speech_taken_up_again_after_an_interruption_is_speech():  # Alice, chapter 6
    passage = (
        '"I don\'t much care where--" said Alice.\n\n"Then it doesn\'t matter which way you go," said the Cat.\n\n'
        '"--so long as I get _somewhere_," Alice added as an explanation.\n'
    )
    assert texts_and_pairs(passage) == (
        ["I don't much care where--", "Then it doesn't matter which way you go", "--so long as I get _somewhere_"],
        2,
    )


def test_british_single_quotes_around_elisions_and_possessives():  # Emma; Oliver Twist, restyled
    passage = restyle(
        '"Ah! poor Miss Taylor! \'Tis a sad business."\n\n'
        '"I had a great curiosity to see a friend of Mr. E.\'s," said Mrs. Elton.\n\n'
        "\"You're a going to\nbe made a 'prentice of, Oliver.\"\n\n"
        '"A prentice, sir!" said the child, trembling.\n\n'
        '"She didn\'t" said Oliver.\n\n"She did," said Mrs. Sowerberry.\n\n'
        '"This here boy, sir, wot the parish wants to \'prentis," said Mr.\nGamfield.\n\n'
        "\"And the moral of that is--'The more there is of mine, the less there is\nof yours.'\"\n\n"
        "\"Tell him 'muddle.'\" Then she arranged\nher veil.\n",
        "single",
    )
    assert texts(passage) == [
        "Ah! poor Miss Taylor! ’Tis a sad business.",
        "I had a great curiosity to see a friend of Mr. E.’s",
        "You’re a going to be made a ’prentice of, Oliver.",
        "A prentice, sir!",
        "She didn’t",
        "She did",
        "This here boy, sir, wot the parish wants to ’prentis",  # said Mr. Gamfield
        "And the moral of that is--’The more there is of mine, the less there is of yours.’",
        "Tell him ’muddle.’",
    ]
    assert extract_utterances(passage)[6].speaker == "Mr. Gamfield"


def test_a_quote_mark_lost_to_encoding_opens_an_inner_quote():  # Anne of Green Gables (PDNC text), British style
    passage = restyle(
        '"We had recitations this afternoon. I just wish you could have been there to hear me recite\n'
        "?Mary, Queen of Scots.' I just put my whole soul into it.\"\n\n"
        '"Well," said Marilla.\n',
        "single",
    )
    assert texts(passage) == [
        "We had recitations this afternoon. I just wish you could have been there to hear me recite "
        "?Mary, Queen of Scots.’ I just put my whole soul into it.",
        "Well",
    ]


def test_a_reply_after_a_sentence_of_narration_in_the_same_paragraph():  # Alice, chapter 2
    passage = (
        "So she called softly after it, \"Mouse dear! Do come back again, and we\nwon't talk about cats or dogs "
        "either, if you don't like them!\" When the\nMouse heard this, it turned round and swam slowly back to "
        'her: its face\nwas quite pale (with passion, Alice thought), and it said in a low\ntrembling voice, "Let us '
        "get to the shore, and then I'll tell you my\nhistory.\"\n"
    )
    assert texts_and_pairs(passage) == (
        [
            "Mouse dear! Do come back again, and we won't talk about cats or dogs either, if you don't like them!",
            "Let us get to the shore, and then I'll tell you my history.",
        ],
        1,
    )


def test_she_went_on_after_anothers_attribution_is_the_same_speaker():  # Alice, chapter 8
    passage = (
        '"Idiot!" said the Queen, tossing her head impatiently; and, turning to\nAlice, she went on, '
        '"What\'s your name, child?"\n\n"My name is Alice, so please your Majesty," said Alice very politely.\n'
    )
    utterances = extract_utterances(passage)
    assert [(u.text, u.speaker) for u in utterances] == [
        ("Idiot! What's your name, child?", "the Queen"),
        ("My name is Alice, so please your Majesty", "Alice"),
    ]


def test_who_acts_after_a_quote_said_it():  # The Age of Innocence, chapter 29
    passage = (
        '"Oh, my friend--!"  She laid her hand lightly on his arm, and he\npleaded earnestly:  "Ellen--why '
        "won't you tell me what's happened?\"\n"
    )
    assert texts_and_pairs(passage) == (["Oh, my friend--!", "Ellen--why won't you tell me what's happened?"], 1)
    passage = (  # Anne of Green Gables, chapter 25: who introduces each quote
        'Miss Harris returned with the rake and cheerfully inquired:\n"Anything else tonight, Mr. Cuthbert?" '
        'Matthew took his courage in\nboth hands and replied: "Well now, since you suggest it, I might as\n'
        'well--take--that is--look at--buy some--some hayseed."\n'
    )
    utterances = extract_utterances(passage)
    assert [u.speaker for u in utterances] == ["Miss Harris", "Matthew"]
    assert len(pair_utterances(utterances)) == 1
    passage = (  # The Age of Innocence, chapter 21: narration that only introduces the second quote
        '"Gad," Archer heard Lawrence Lefferts say, "not one of the lot holds\nthe bow as she does"; and Beaufort '
        "retorted:  \"Yes; but that's the only\nkind of target she'll ever hit.\"\n"
    )
    assert texts_and_pairs(passage) == (
        [
            "Gad, not one of the lot holds the bow as she does",
            "Yes; but that's the only kind of target she'll ever hit.",
        ],
        1,
    )


def test_the_narrators_stage_directions_inside_a_speech_are_cut():  # Emma
    passage = (
        '"Yes--(rather hesitatingly)--I believe I do."\n\n"Yes, my dear, if there is time.--But--(in a very '
        'depressed tone)--she\nis coming for only one week."\n\n"I assure you I have no doubt of it (looking\n'
        'towards Mr. Woodhouse), and I will not say (excepting one or two points) more."\n'
    )
    assert texts(passage) == [
        "Yes--I believe I do.",
        "Yes, my dear, if there is time.--But--she is coming for only one week.",
        "I assure you I have no doubt of it, and I will not say (excepting one or two points) more.",
    ]


def test_narration_that_hands_over_to_the_next_paragraph_names_or_continues_its_speaker():  # Emma; Anne
    passage = (
        '"Robert Martin has no great loss--if he can but think so; and I hope it\nwill not be long before he '
        'does."\n\nEmma laughed and disclaimed. He continued,\n\n"Depend upon it, Elton will not do."\n'
    )
    assert texts_and_pairs(passage) == (  # one speaker going on: no pair
        [
            "Robert Martin has no great loss--if he can but think so; and I hope it will not be long before he does.",
            "Depend upon it, Elton will not do.",
        ],
        0,
    )
    passage = (
        "Not until Anne had finished her saucer of blue plums did Marilla say:\n\n"
        '"Mrs. Barry was here this afternoon, Anne."\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["Marilla"]
    passage = (  # Pride and Prejudice, chapter 26: narration after a paragraph's quote hands over too
        '"I am sure you will be very happy." Thursday was to be the wedding day.\nAs they went down stairs '
        'together, Charlotte said,\n\n"I shall depend on hearing from you very often, Eliza."\n\n'
        '"How then?" I persisted.\n\n"You will not apply my precept."\n'  # the Sign of Four: its own attribution
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["", "Charlotte", "I", ""]
    passage = (  # Emma, chapter 12: the speaker named after a clause; chapter 44: a listener is not
        "While he talked to Isabella, however, Emma found an opportunity of saying,\n\n"
        '"Such a long stay."\n\nAnd Emma heard her saying in the same half-whisper to Jane,\n\n"Here comes this '
        'dear old beau of mine."\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["Emma", ""]
    passage = (  # Emma, chapter 29: the last subject before the quote is "his father", not Frank Churchill
        "Frank Churchill still declined it, looking as serious as he could, and his father gave his hearty "
        'support by calling out,\n\n"Come, Frank, come."\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == [""]


def test_speech_a_verb_introduces_without_a_comma_is_speech():  # Alice, chapter 8
    passage = (
        "When the procession came opposite to Alice, they all stopped and looked\nat her, and the Queen said "
        'severely "Who is this?" She said it to the\nKnave of Hearts, who only bowed and smiled in reply.\n'
    )
    assert texts(passage) == ["Who is this?"]
    passage = (  # five pages on
        "In a very short time the Queen was in a furious passion, and went stamping about, and\n"
        'shouting "Off with his head!" or "Off with her head!" about once in a\nminute.\n'
    )
    assert [(u.text, u.speaker) for u in extract_utterances(passage)] == [
        ("Off with his head! Off with her head!", "the Queen")
    ]


def test_a_quote_opened_inside_italics_is_speech():  # Winnie-the-Pooh, introduction
    passage = (
        "(_\"What does 'under the name' mean?\" asked Christopher Robin._\n\n"
        '"_It means he had the name over the door in gold letters, and lived\nunder it._"\n\n'
        '_"Winnie-the-Pooh wasn\'t quite sure," said Christopher Robin._\n'
    )
    assert [(u.text, u.speaker) for u in extract_utterances(passage)] == [
        ("What does 'under the name' mean?", "Christopher Robin"),
        ("_It means he had the name over the door in gold letters, and lived under it._", ""),
        ("Winnie-the-Pooh wasn't quite sure", "Christopher Robin"),
    ]


def test_the_verb_trie_matches_exactly_the_listed_words():
    verbs = re.compile(alternation(VERB_WORDS))
    words = VERB_WORDS.split("|")
    assert all(verbs.fullmatch(word) for word in words)
    # prefixes, extensions and near misses of listed words are not matched whole
    assert not any(verbs.fullmatch(word) for word in ["sai", "saids", "cried ou", "cried outs", "went", "Said", ""])
    # where one listed word extends another, the longer is taken
    assert verbs.match("cried out loud").group() == "cried out"
    assert verbs.match("says so").group() == "says"


def test_he_going_on_after_her_speech_answers_her():  # Pride and Prejudice, chapter 47
    passage = (
        '"If I had been able," said she, "to carry my point of going to Brighton,\nwith all my family, _this_ '
        'would not have happened."\n\nThey all exclaimed against such terrific ideas; and Mr. Gardiner, after\n'
        "general assurances of his affection for her and all her family, told\nher that he meant to be in London "
        'the very next day.\n\n"Do not give way to useless alarm," added he, "though it is right to be\nprepared '
        'for the worst."\n'
    )
    assert texts_and_pairs(passage)[1] == 1  # "added he": his own speech goes on, in answer to hers


def test_calling_the_same_person_by_name_across_narration_is_one_speaker():  # Oliver Twist, chapter 17
    passage = (
        '"Ah! You may well sigh, Mrs. Mann!" said the beadle.\n\nFinding she had done right, Mrs. Mann sighed '
        "again: evidently to the\nsatisfaction of the public character: who, repressing a complacent\nsmile by "
        'looking sternly at his cocked hat, said,\n\n"Mrs. Mann, I am going to London."\n\n'
        '"Lauk, Mr. Bumble!" cried Mrs. Mann, starting back.\n'
    )
    utterances = extract_utterances(passage)
    assert [u.text for u in utterances] == [
        "Ah! You may well sigh, Mrs. Mann!",
        "Mrs. Mann, I am going to London.",
        "Lauk, Mr. Bumble!",
    ]
    pairs = pair_utterances(utterances)  # only Mrs. Mann's reply to the beadle
    assert [(p.prompt, p.response) for p in pairs] == [("Mrs. Mann, I am going to London.", "Lauk, Mr. Bumble!")]


def test_narration_that_names_the_speaker_then_introduces_another_splits_the_paragraph():  # Age of Innocence, ch. 21
    passage = (
        '"Newland never seems to look ahead," Mrs. Welland once ventured to complain to her daughter; and May\n'
        "answered serenely:  \"No; but you see it doesn't matter, because when there's nothing particular to do\n"
        'he reads a book."\n\n'
        # one person's attribution and introduction, a pronoun and a name: one speech
        '"I am glad of it," said Elizabeth, and turning to her sister she added, "You see I was right."\n'
    )
    found = [(u.speaker, u.text) for u in extract_utterances(passage)]
    assert found == [
        ("Mrs. Welland", "Newland never seems to look ahead"),
        ("May", "No; but you see it doesn't matter, because when there's nothing particular to do he reads a book."),
        ("Elizabeth", "I am glad of it, You see I was right."),
    ]


def test_a_sentence_that_leads_into_a_quote_names_its_speaker_however_it_is_built():
    passages = {  # Pride and Prejudice (twice), Emma, Oliver Twist, Pride and Prejudice, Emma
        "In a few minutes, Mrs. Bennet half opened the door and called out,\n\n"
        '"Lizzy, my dear, I want to speak with you."\n': "Mrs. Bennet",  # not "the door and" calling out
        "Emma then looked up, and immediately saw how it was; and after a\nmoment's debate, as to whether it should "
        'pass unnoticed or not, replied,\n\n"Never marry!--This is a new resolution."\n': "Emma",  # the sentence's
        "While the family were in this confusion, Charlotte Lucas came to spend\nthe day with them. She was met in "
        'the vestibule by Lydia, who, flying to\nher, cried in a half whisper, "I am glad you are come, for there '
        'is such\nfun here!"\n': "Lydia",  # who cried: Lydia, not "She"
        # Alice's Adventures in Wonderland: the speaker after a relative clause of theirs, not "them"
        "At last the Mouse, who seemed to be a person of authority among them,\ncalled out, "
        '"Sit down, all of you, and listen to me!"\n': "the Mouse",
        # Pride and Prejudice, chapter 10: ... after a conjunction
        "But Elizabeth, who had not the least inclination to remain with them,\nlaughingly answered,\n\n"
        '"No, no; stay where you are."\n': "Elizabeth",
        # Emma, chapter 13: "said only" is not "said on" (the French pronoun), which would name no one
        "Mr. John Knightley looked as if he did not comprehend the pleasure, but\nsaid only, coolly,\n\n"
        '"I cannot wish to be snowed up a week at Randalls."\n': "Mr. John Knightley",
        '"You should have heard the people groan," said Chitling; "the officers\nfought like devils."\n': "Chitling",
        # the sentence's subject, whatever its first verb, when a later clause speaks
        "Mr. Bennet saw that her whole heart was in the subject; and affectionately\ntaking her hand, said in "
        'reply,\n\n"Do not make yourself uneasy, my love."\n': "Mr. Bennet",
        "Emma returned her friend's pressure with interest; and was pleased\nenough to exclaim,\n\n"
        '"You are not vain, Mr. Knightley."\n': "Emma",  # to exclaim
        # A Room with a View, chapter 16: a word that opens the sentence is not part of the name
        'There was a pause. Then Cecil said with great emotion:\n\n"It is true."\n': "Cecil",
        # Emma, chapter 26: ".--" ends a sentence ("they looked it over together" is not Emma's)
        "He brought all the music to her, and they looked it over together.--Emma\ntook the opportunity of "
        'whispering,\n\n"You speak too plain. She must understand you."\n': "Emma",
        # Emma, chapter 30, and Pride and Prejudice, chapter 10: a speaker heard, or accosting someone
        "The party did not break up without Emma's being positively\nsecured for the two first dances by the "
        'hero of the evening, nor without\nher overhearing Mr. Weston whisper to his wife, "He has asked her, '
        "my\ndear. That's right. I knew he would!\"\n": "Mr. Weston",
        "Her resistance had not\ninjured her with the gentleman, and he was thinking of her with some\n"
        'complacency, when thus accosted by Miss Bingley,\n\n"I can guess the subject of your reverie."\n': "Miss "
        "Bingley",
    }
    for passage, speaker in passages.items():
        assert [u.speaker for u in extract_utterances(passage)] == [speaker]


def test_verbs_of_speech_of_more_than_one_word_attribute_a_quote():  # The Age of Innocence, Anne of Green Gables
    passage = (
        '"I wonder," Winsett broke off, "how a Countess happens to live in our slum?"\n\n'
        '"Did anyone ever hear the like?" the mystified Marilla wanted to know.\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["Winsett", "Marilla"]
    passage = (  # The Age of Innocence, chapter 19: the verb's two words on two lines
        '"Lefferts--who made love to her and got snubbed for it!" Archer broke\nout contemptuously.\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["Archer"]


def test_a_pronoun_and_a_title_of_the_other_gender_are_two_speakers():  # The Age of Innocence, chapter 9
    passage = (
        '"Is your carriage here?" he asked; and at that moment Mrs. van der\nLuyden, who was being majestically '
        'inserted into her sables, said\ngently:  "We are driving dear Ellen home."\n'
    )
    utterances = extract_utterances(passage)
    assert [u.text for u in utterances] == ["Is your carriage here?", "We are driving dear Ellen home."]
    assert utterances[0].turn != utterances[1].turn


def test_a_progressive_verb_of_speech_attributes_a_quote():  # The Age of Innocence, chapter 14
    passage = (
        '"Lord love us--three whole days at Skuytercliff!" Beaufort was saying\nin his loud sneering voice as '
        'Archer entered.  "You\'d better take all\nyour furs, and a hot-water-bottle."\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["Beaufort"]


def test_a_sentence_of_its_own_after_a_quotes_attribution_hands_over_to_the_next_paragraph():  # Alice, ch. 9
    passage = (
        '"Hold your tongue!" added the Gryphon, before Alice could speak again.\nThe Mock Turtle went on.\n\n'
        '"We had the best of educations--in fact, we went to school every day--"\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["the Gryphon", "Mock Turtle"]
    passage = (  # Pride and Prejudice, chapter 6: a paragraph of narration that ends with who begins to speak
        "Mr. Darcy stood near them in silent indignation at such a mode of passing\nthe evening, to the exclusion "
        "of all conversation, and was too much\nengrossed by his own thoughts to perceive that Sir William Lucas "
        'was his\nneighbour, till Sir William thus began.\n\n"What a charming amusement for young people this '
        'is, Mr. Darcy!"\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["Sir William"]
    passage = (  # A Room with a View, chapter 8: a reaction does not hand over
        '"He was such a nice old man, I\'m sure."\n\nCecil laughed at her feminine inconsequence.\n\n'
        '"Well, that was my idea."\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["", ""]
    passage = '"How then?" I persisted.\n\n"Never you mind."\n'  # the quote's own attribution: no hand-over
    assert [u.speaker for u in extract_utterances(passage)] == ["I", ""]


def test_a_name_after_the_verb_may_have_an_epithet():  # A Room with a View, chapters 4 and 8; Oliver Twist
    for passage, speaker in [
        ('"Yet our rooms smell," said poor Lucy. "We dread going to bed."\n', "Lucy"),
        ('"We all have our limitations, I suppose," said wise Lucy.\n', "Lucy"),
        ('"I don\'t know what to think," replied poor Giles.\n', "Giles"),
    ]:
        assert [u.speaker for u in extract_utterances(passage)] == [speaker], passage


def test_quotes_of_a_paragraph_with_their_own_different_speakers_are_two_turns():  # Alice, chapter 7
    passage = (
        'The table was a large one, but the three were all crowded together at\none corner of it: "No room! '
        'No room!" they cried out when they saw\nAlice coming. "There\'s _plenty_ of room!" said Alice '
        "indignantly, and\nshe sat down in a large arm-chair at one end of the table.\n"
    )
    utterances = extract_utterances(passage)
    assert [(u.text, u.speaker) for u in utterances] == [
        ("No room! No room!", ""),
        ("There's _plenty_ of room!", "Alice"),
    ]
    assert utterances[0].turn != utterances[1].turn and len(pair_utterances(utterances)) == 1
    # the quoted words between them are narration, but who speaks still changes
    passage = (
        '"There\'s no such thing!" Alice was beginning very angrily, but the\nHatter and the March Hare went '
        '"Sh! sh!" and the Dormouse sulkily\nremarked, "If you can\'t be civil, you\'d better finish the story '
        'for\nyourself."\n'
    )
    utterances = extract_utterances(passage)
    assert [u.speaker for u in utterances] == ["", "the Dormouse"]
    assert utterances[0].turn != utterances[1].turn


def test_a_word_the_book_never_capitalizes_inside_a_sentence_names_no_one():  # The Age of Innocence
    text, _ = load_novel(PDNC / "TheAgeOfInnocence")
    # "Symptoms of a lumbering coquetry became visible in her, and Archer found the strength to break in:"
    passage = text.index("Symptoms of a lumbering coquetry")
    utterances = extract_utterances(text)
    after = next(u for u in utterances if u.start > passage)
    speakers = {u.speaker for u in utterances}
    assert after.speaker != "Symptoms" and {"Symptoms", "Both", "Do"}.isdisjoint(speakers)
    assert {"Archer", "Mrs. Archer", "Mr. Jackson"} <= speakers  # names the book writes inside sentences too
    # a passage is too short to tell: there a name may only ever open a sentence
    assert [u.speaker for u in extract_utterances('"Yes," Symptoms said.\n')] == ["Symptoms"]


def test_a_clause_after_a_quote_that_leads_into_the_next_is_the_next_ones():  # Winnie-the-Pooh, chapter 5
    passage = (
        'they began to talk in a friendly way about this and that, and Piglet said, "If you see what I '
        'mean,\nPooh," and Pooh said, "It\'s just what I think myself, Piglet," and\nPiglet said, "But, on '
        'the other hand, Pooh, we must remember," and\nPooh said, "Quite true, Piglet, although I had forgotten '
        'it for the\nmoment."\n'
    )
    assert [u.speaker for u in extract_utterances(passage)] == ["Piglet", "Pooh", "Piglet", "Pooh"]
