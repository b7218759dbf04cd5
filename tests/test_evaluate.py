"""The bot measured on pairs it never saw, talked to as a character, and its cast: the tiny bot of
conftest on Pride and Prejudice, scored on Emma's pairs from the shared corpus."""

import dataclasses
import io
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import GUTENBERG, ROOT, TOKENIZER

from tasks.chat import Bot, converse
from tasks.config import ChatConfig, TrainConfig
from tasks.errors import ConfigError, InvalidDataError
from tasks.evaluate import KneserNeyBigram, Scorer, reply_statistics, responses_of, speaker_identification
from tasks.examples import Layout, Turn
from tasks.validate import validate_pairs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emma_pairs() -> pd.DataFrame:
    from tasks.characters import speakers_of
    from tasks.dialogue import extract_utterances
    from tasks.gutenberg import decode_text, strip_boilerplate
    from tasks.pairing import pair_utterances

    text = strip_boilerplate(decode_text((GUTENBERG / "cache/epub/158/pg158.txt").read_bytes(), "utf-8", "pg158"))
    named, _ = speakers_of(text, extract_utterances(text, 158))
    frame = pd.DataFrame([dataclasses.asdict(p) for p in pair_utterances(named)])
    return validate_pairs(frame, {158: "Emma"}, 0.1, 0, 50)[0]


def test_the_bigram_floor_is_a_probability_distribution_after_any_token():
    stream = np.array([0, 1, 2, 1, 2, 3, 0, 1, 4, 4], np.uint16)
    bigram = KneserNeyBigram(stream, vocab=7)
    for prev in range(7):  # seen contexts, and 5 and 6 which never were
        p = np.exp(bigram.log_probs(np.full(7, prev), np.arange(7)))
        assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    assert bigram.log_probs(np.array([1]), np.array([2]))[0] > bigram.log_probs(np.array([1]), np.array([3]))[0]


def test_reply_statistics_count_what_they_name():
    stats = reply_statistics(
        ["I am well, I am well, I am well.", "Do come to the ball tonight."],
        ["How are you?", "Will you come to the ball tonight?"],
    )
    assert stats["echo"] == 0.5  # the second copies "come to the ball" from its prompt
    assert stats["repeated_4grams"] == pytest.approx(4 / 13)  # 9 four-grams + 4, of which 4 repeat one before
    assert stats["mean_words"] == 9.5 and 0 < stats["distinct_2"] < 1


def test_the_scorer_gives_the_models_own_log_probabilities(tiny_model, emma_pairs):
    import tensorflow as tf

    scorer = Scorer(Bot(tiny_model, ChatConfig()))
    responses = responses_of(emma_pairs)[:5]
    items = [(scorer.context(r), scorer.target(r.turn.text, bool(r.turn.speaker))) for r in responses]
    scores = scorer.log_likelihoods(items)
    for (context, target), (total, count) in zip(items, scores):
        log_probs = tf.nn.log_softmax(scorer.bot.model(tf.constant([context + target])).logits[0]).numpy()
        expected = sum(log_probs[len(context) + i - 1, t] for i, t in enumerate(target))
        assert count == len(target) and total == pytest.approx(expected, rel=1e-4)
    history = scorer.bot.tokenizer.decode(items[-1][0])
    assert history.endswith("<|endoftext|>") or history.endswith(":")  # the history, then the speaker's name
    assert responses[-1].history[-1].text in history

    # A model trained without names cannot be asked who speaks (every name would score the same).
    scorer.layout = dataclasses.replace(scorer.layout, names=False)
    assert speaker_identification(scorer, responses_of(emma_pairs)[:40], 0)["value"] is None


def test_eval_on_a_book_it_never_read(tiny_model, emma_pairs, tmp_path):
    pairs_json = tmp_path / "emma" / "pairs.json"
    pairs_json.parent.mkdir()
    pairs_json.write_text(json.dumps(emma_pairs.to_dict("records"), default=int))
    cmd = [sys.executable, "-m", "flows.cli", "eval", str(tiny_model), "--pairs", str(pairs_json)]
    small = ["--max-responses", "60", "--ranked", "10", "--samples", "2", "--max-new-tokens", "12"]
    done = subprocess.run(cmd + small, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| response perplexity |" in done.stdout and "| distinct-2 |" in done.stdout
    result = json.loads((tiny_model.parent / "eval-emma.json").read_text())  # beside the model, by default
    assert result["responses"] == 60 and result["response_tokens"] > 60
    assert 1 < result["response_perplexity"] < 50257 and 1 < result["ngram_perplexity"] < 50257
    assert result["below_ngram"] == pytest.approx(1 - result["response_perplexity"] / result["ngram_perplexity"])
    hits, speakers = result["hits_at_1"], result["speaker_identification"]
    assert hits["responses"] == 10 and hits["chance"] == 0.1 and 0 <= hits["value"] <= 1
    assert len(speakers["speakers"]) == 5 and 0 < speakers["lines"] <= 10 and speakers["chance"] == 0.2
    sampled = result["replies"]["sampled"]
    assert sampled["replies"] == 2 and 0 <= sampled["end_of_turn_rate"] <= 1 and sampled["empty"] == 0
    real = result["replies"]["real"]
    assert real["mean_words"] > 3 and real["end_of_turn_rate"] in (0, 0.5, 1)  # of Emma's 2 lines, within 12 tokens

    (tmp_path / "bad.json").write_text("{}")
    bad = subprocess.run(cmd[:-1] + [str(tmp_path / "bad.json")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith(f"authorbot: --pairs {tmp_path}")


def test_a_bot_speaks_as_a_character_and_switches(tiny_model):
    cast = Layout.of(tiny_model).characters
    name = max(cast, key=cast.get)
    bot = Bot(tiny_model, ChatConfig(max_new_tokens=8), speaker=name.upper(), user="Mr. Nobody")
    assert bot.speaker == name  # the cast's own spelling
    context = bot.tokenizer.decode(bot.context([Turn(bot.user, "Good day.")], 8))
    assert context == f"Mr. Nobody: Good day.<|endoftext|>{name}:"
    with pytest.raises(ConfigError, match=rf"--as 'Elizabth Benet': not in the cast; the closest names are .*{name}"):
        bot.cast_as("Elizabth Benet")

    out = io.StringIO()
    converse(bot, io.StringIO("Hello.\n/as\nHello again.\n/as Nobody At All\n"), out, interactive=False)
    lines = out.getvalue().splitlines()
    assert lines[1] == "(the bot now speaks unnamed)" and lines[3].startswith("(--as 'Nobody At All': not in the cast")
    assert [t.speaker for t in bot.history] == ["Mr. Nobody", name, "Mr. Nobody", ""]


def test_an_unknown_character_to_train_as_is_one_line_with_the_closest(dataset, tmp_path):
    from tasks.train import train_model

    cfg = TrainConfig(model="scratch:tiny", tokenizer=TOKENIZER, character="Elizabth", prose_epochs=0)
    with pytest.raises(
        ConfigError, match=r"--character 'Elizabth': not in the cast; the closest names are 'Elizabeth'"
    ):
        train_model(dataset, cfg, tmp_path)
    assert not (tmp_path / "checkpoints").exists()  # nothing started


def test_whole_books_held_out_for_validation(dataset):
    data = pd.read_parquet(dataset)
    two_books = pd.concat([data, data.assign(book_id=158, prompt=data.prompt + " (again)")])
    checked, _ = validate_pairs(two_books.drop(columns=["title", "split"]), {}, 0.1, 0, 50, val_books=(158,))
    assert set(checked[checked.split == "validation"].book_id) == {158}
    assert set(checked[checked.split == "train"].book_id) == {1342}
    with pytest.raises(InvalidDataError, match="--val-books 11: no pairs from book 11"):
        validate_pairs(two_books.drop(columns=["title", "split"]), {}, 0.1, 0, 50, val_books=(11,))


def test_prose_epochs_come_first_with_their_own_lines(dataset, tmp_path):
    from tasks.tables import BOOKS, write_table
    from tasks.train import train_model

    text = (GUTENBERG / "cache/epub/1342/pg1342.txt").read_text("utf-8-sig")[20000:60000]
    books = tmp_path / "1342.parquet"
    row = dict(book_id=1342, title="P", authors="", language="en", source_url="", sha256="", text=text)
    write_table(pd.DataFrame([row]), books, BOOKS)
    cfg = TrainConfig(model="scratch:tiny", tokenizer=TOKENIZER, epochs=1, max_pairs=100, prose_epochs=1)
    train_model(dataset, cfg, tmp_path / "run", books=[books])
    metrics = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [(m["epoch"], m["stage"]) for m in metrics] == [(1, "prose"), (2, "dialogue")]
    assert metrics[1]["val_loss"] < metrics[0]["val_loss"] < math.log(50257) + 0.1
    assert metrics[0]["train_seconds"] > 0
