"""A book's cast from its own text: names merged per person only where that is sure, genders, lines."""

import subprocess
import sys

import pytest
from conftest import GUTENBERG, PDNC, ROOT

from tasks.characters import speakers_of
from tasks.dialogue import extract_utterances
from tasks.gutenberg import decode_text, strip_boilerplate
from tasks.pairing import pair_utterances
from tasks.pdnc import load_novel


@pytest.fixture(scope="module")
def pride():
    raw = (GUTENBERG / "cache/epub/1342/pg1342.txt").read_bytes()
    text = strip_boilerplate(decode_text(raw, "utf-8", "pg1342"))
    utterances, cast = speakers_of(text, extract_utterances(text, 1342), 1342)
    return text, utterances, {c.character: c for c in cast}


def test_the_bennets_and_mr_darcy_are_four_characters(pride):
    _, _, cast = pride
    for name, gender in [("Elizabeth Bennet", "F"), ("Mr. Darcy", "M"), ("Mrs. Bennet", "F"), ("Mr. Bennet", "M")]:
        assert cast[name].gender == gender and cast[name].utterances > 10, name
    assert {"Elizabeth", "Miss Elizabeth"} <= set(cast["Elizabeth Bennet"].aliases)  # her names, merged
    assert {"Lizzy", "Eliza", "Miss Eliza Bennet"} <= set(cast["Elizabeth Bennet"].aliases)  # and her pet names
    assert "Kitty" in cast and "Kitty" not in cast["Lady Catherine"].aliases  # not every Catherine's
    assert "Darcy" in cast["Mr. Darcy"].aliases
    assert cast["Elizabeth Bennet"].utterances == max(c.utterances for c in cast.values())


def test_ambiguous_names_stay_unmerged(pride):
    _, _, cast = pride
    # "Miss Bennet" (the eldest daughter, Jane) is not folded into Elizabeth, nor Mr. into Mrs. Bennet
    assert "Miss Bennet" in cast and not any("Miss Bennet" in c.aliases[1:] for c in cast.values())
    assert cast["Mr. Bennet"].aliases == ["Mr. Bennet"] and cast["Mrs. Bennet"].aliases == ["Mrs. Bennet"]


def test_pairs_name_speakers_by_their_character(pride):
    _, utterances, cast = pride
    pairs = pair_utterances(utterances)
    speakers = {p.prompt_speaker for p in pairs} | {p.response_speaker for p in pairs}
    assert "Elizabeth Bennet" in speakers and "Elizabeth" not in speakers and "Darcy" not in speakers
    assert all(not (p.prompt_speaker and p.prompt_speaker == p.response_speaker) for p in pairs)


def test_the_characters_command_lists_a_file_s_cast(tmp_path):
    book = GUTENBERG / "cache/epub/11/pg11.txt"  # Alice's Adventures in Wonderland
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "characters", str(book)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PREFECT_HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].endswith("characters") and lines[1].split()[:2] == ["lines", "character"]
    first = lines[2].split()
    assert first[1:3] == ["Alice", "F"] and int(first[0]) > 100  # she speaks most
    assert any(" the Queen " in line for line in lines)  # described characters too


def test_a_recurring_role_is_a_character_and_a_description_is_not():
    text, _ = load_novel(PDNC / "OliverTwist")
    utterances, cast = speakers_of(text, extract_utterances(text))
    cast = {c.character: c for c in cast}
    # "said the doctor" dozens of times: a character of the book (PDNC lists "The Doctor" too)
    assert cast["the doctor"].gender == "M" and cast["the doctor"].utterances > 30
    assert cast["the matron"].gender == "F"
    spoken = {u.speaker for u in utterances}
    # "said the girl" (Nancy), "the old gentleman" (Mr. Brownlow): descriptions of named people
    assert {"the girl", "the old gentleman", "the stranger"}.isdisjoint(spoken)
    # a role said once ("said the housekeeper", Mrs. Bedwin) names no one: it stays the attribution's subject
    assert [u.subject for u in utterances].count("the housekeeper") == 1 and "the housekeeper" not in spoken
    # a hyphened word is one word: "said the hump-backed man" is a man, not "the hump"
    assert "the hump-backed man" in [u.subject for u in utterances] and "the hump" not in spoken
    # the printer's slips are the characters they misspell: "said Mr. Browlow" once, "said Charly"
    assert "Mr. Browlow" in cast["Mr. Brownlow"].aliases and "Mr. Browlow" not in cast
    assert "Charly" not in cast and "Mrs. Maylies" not in cast
