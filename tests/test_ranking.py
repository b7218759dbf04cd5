"""The ranker: a speaker for turns the sieve leaves unnamed, on a PDNC novel its weights were fit on."""

from conftest import PDNC

from tasks.characters import speakers_of
from tasks.dialogue import extract_utterances
from tasks.pdnc import align, load_aliases, load_novel, names_speaker
from tasks.ranking import CONFIDENCE, RANKED, choices, probabilities, rank_speakers
from tasks.tables import with_speaker


def test_the_ranker_names_elizabeth_answering_lady_catherine_and_is_mostly_right():  # chapter 56
    text, gold = load_novel(PDNC / "PrideAndPrejudice")
    utterances, cast = speakers_of(text, extract_utterances(text))
    promise = next(u for u in utterances if u.text == "I will make no promise of the kind.")
    assert (promise.speaker, promise.speaker_source) == ("Elizabeth Bennet", RANKED)
    aliases = load_aliases(PDNC / "PrideAndPrejudice")
    ranked = [(u, m) for u, m in zip(utterances, align(utterances, gold)) if u.speaker_source == RANKED and m]
    right = sum(names_speaker(u.speaker, gold[m[0]].speaker, aliases) for u, m in ranked)
    assert len(ranked) >= 40 and right >= 0.75 * len(ranked)


def test_a_turn_stays_unnamed_where_no_one_reaches_the_confidence():
    text, _ = load_novel(PDNC / "PrideAndPrejudice")
    utterances, cast = speakers_of(text, extract_utterances(text))
    unranked = [with_speaker(u, "", "") if u.speaker_source == RANKED else u for u in utterances]
    found = choices(unranked, cast, text)
    assert len(found) >= 300
    # with no weights, each person nearby and no one are as likely: at most a half, short of CONFIDENCE
    assert all(max(probabilities(c.rows, {})) <= 0.5 < CONFIDENCE for c in found)
    assert rank_speakers(unranked, cast, text, weights={}) == unranked
    assert rank_speakers(unranked, cast, text) == utterances
