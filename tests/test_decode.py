"""The streaming sampler: the same tokens as transformers' generate under greedy decoding, and its sampling rules."""

from dataclasses import replace

import numpy as np
import pytest
from conftest import TOKENIZER

from tasks.chat import Reply, token_bytes
from tasks.config import ChatConfig
from tasks.decode import CHUNK, Decoder, TokenBytes, TokenChooser
from tasks.model import load_model, load_tokenizer

GREEDY = ChatConfig(temperature=0, repetition_penalty=1.0, no_repeat_ngram=0, max_new_tokens=40)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(TOKENIZER)


@pytest.mark.slow
def test_greedy_decoding_gives_exactly_the_tokens_generate_gives(tiny_model, tokenizer):
    import tensorflow as tf

    model = load_model(str(tiny_model), tokenizer)
    eot = tokenizer.eos_token_id
    decoder = Decoder(model, eot)
    generate = model.generate  # eager: the same arithmetic as compiled, without a compilation per context
    short = tokenizer.encode("Good morning, Mr. Darcy. I hope you are well.") + [eot]
    long = tokenizer.encode(" ".join(["It is a truth universally acknowledged, that a single man"] * 12)) + [eot]
    assert len(short) < CHUNK < 2 * CHUNK < len(long)  # one chunk, and a context read in several
    for context in (short, long):
        ours = list(decoder.sample(context, GREEDY, np.random.default_rng(0)))
        out = generate(tf.constant([context]), do_sample=False, max_new_tokens=40, eos_token_id=eot, pad_token_id=eot)
        theirs = out[0, len(context) :].numpy().tolist()
        assert theirs[0] != eot  # (our sampler never ends a turn before its first token)
        theirs = theirs[: theirs.index(eot) + 1] if eot in theirs else theirs
        assert ours == theirs and len(ours) > 1


def chooser(eot=3, context=(1, 2), token_bytes: TokenBytes | None = None, **settings) -> TokenChooser:
    how = ChatConfig(**(dict(temperature=0, no_repeat_ngram=0) | settings))
    return TokenChooser(how, eot, list(context), {}, token_bytes)


@pytest.fixture(scope="module")
def gpt2_bytes(tokenizer) -> TokenBytes:
    return token_bytes(tokenizer, len(tokenizer))


def test_the_repetition_penalty_spares_the_end_of_turn_and_a_reply_says_something_first():
    rng = np.random.default_rng(0)
    pick = chooser(repetition_penalty=2.0, context=[1, 3, 3])  # token 3 plays <|endoftext|>, as between turns
    assert pick.choose(np.array([0.0, 2.0, 1.5, 9.0]), rng) == 2  # no end of turn yet; seen token 1 halved to 1.0
    assert pick.choose(np.array([0.0, 2.0, 1.5, 1.9]), rng) == 3  # then the end of turn, never penalised
    first = chooser()
    assert first.choose(np.array([0.0, 0.0, 0.0, 5.0]), rng) != 3
    vocabulary = TokenBytes.of([b" ", b"Yes", b"No", None], 4)  # 3: <|endoftext|>
    blank = chooser(context=[1], token_bytes=vocabulary)
    steps = [[6.0, 2.0, 0.0, 5.0], [0.0, 2.0, 0.0, 5.0], [0.0, 2.0, 0.0, 5.0]]
    assert [blank.choose(np.array(logits), rng) for logits in steps] == [0, 1, 3]  # a space, a word, the end


def test_whitespace_and_part_characters_are_blank(tokenizer, gpt2_bytes):
    blank = set(np.flatnonzero(gpt2_bytes.blank))
    assert {tokenizer.decode([i]) for i in blank} >= {" ", "\n", "\n\n"}
    assert tokenizer.encode("☕")[0] in blank and tokenizer.eos_token_id not in blank  # the cup's first byte
    assert not blank & set(tokenizer.encode(" Good morning.\n")) - set(tokenizer.encode(" \n"))


def test_after_the_first_byte_of_a_character_only_its_other_bytes_come(tokenizer, gpt2_bytes):
    cup = tokenizer.encode(" ☕")  # " \xe2\x98", then "\x95": the cup is split over two tokens
    word, eot = tokenizer.encode(" and")[0], tokenizer.eos_token_id
    assert len(cup) == 2 and tokenizer.decode(cup[:1]).endswith("\ufffd")
    # Each step's logits rank the listed tokens first, best first (greedy).
    steps = [[cup[0]], [word, eot, cup[0], cup[1]], [cup[1], eot]]
    pick = chooser(eot, [eot], gpt2_bytes)
    reply = [pick.choose(favourites(len(tokenizer), ranked), np.random.default_rng(0)) for ranked in steps]
    assert reply == [cup[0], cup[1], eot]  # not " and", nor an end or a new character inside the cup
    # A byte that continues nothing never comes between characters.
    stray = chooser(eot, [eot], gpt2_bytes)
    assert stray.choose(favourites(len(tokenizer), [cup[1], word]), np.random.default_rng(0)) == word


def test_a_character_of_three_bytes_takes_its_two_tails_in_one_token_or_two():
    pieces = [b"\xe2", b"\x80", b"\x80\x94", b" a", b"\x80\x94\x80", None]  # "\xe2\x80\x94": a dash
    rules = TokenBytes.of(pieces, 6)
    after_lead = rules.next_state[rules.next_state[0, 0]]  # where each token may lead after "\xe2"
    assert after_lead[2] == 0 and after_lead[1] > 0 and (after_lead[[0, 3, 4, 5]] == -1).all()
    assert rules.next_state[after_lead[1], 1] == 0  # "\x80" then "\x80" finishes it too
    assert (rules.next_state[0, [1, 2, 4]] == -1).all() and (rules.next_state[0, [3, 5]] == 0).all()
    assert rules.blank[[0, 1, 2]].all() and not rules.blank[[3, 5]].any()


def test_only_well_formed_characters_and_no_invisible_controls():
    pieces = [b"\xc2", b"\x85", b"\xa9", b"\xed", b"\xa0\x80", b"\x9f\xbf", b"\xc0\x80"]
    rules = TokenBytes.of(pieces, len(pieces))
    after_c2, after_ed = rules.next_state[0, 0], rules.next_state[0, 3]
    assert rules.next_state[after_c2, 1] == -1 and rules.next_state[after_c2, 2] == 0  # U+0085 no, "©" yes
    assert rules.next_state[after_ed, 4] == -1 and rules.next_state[after_ed, 5] == 0  # a surrogate no, U+D7FF yes
    assert rules.next_state[0, 6] == -1  # an overlong form, which no UTF-8 text holds


def test_a_long_reply_ends_with_its_sentence_but_not_at_a_title(tokenizer, gpt2_bytes):
    eot = tokenizer.eos_token_id
    words = tokenizer.encode(" Yes. Mr. Darcy is here. And then")
    assert tokenizer.decode(words[2:4]) == " Mr."  # " Mr", "."

    def reply(pick: TokenChooser) -> list[int]:  # the model goes on to the last word, then ends
        steps = [favourites(len(tokenizer), [w, eot]) for w in words] + [favourites(len(tokenizer), [eot])]
        out = []
        for logits in steps:
            out.append(pick.choose(logits, np.random.default_rng(0)))
            if out[-1] == eot:
                return out
        return out

    here = words.index(tokenizer.encode(" here")[0])
    plain = ChatConfig(temperature=0, repetition_penalty=1.0, wrap_up=4)  # no penalty on the second "."
    # from 4 tokens on, the reply ends with its sentence: not at "Mr." (token 4), but at "here."
    assert reply(TokenChooser(plain, eot, [eot], {}, gpt2_bytes)) == words[: here + 2] + [eot]
    never = replace(plain, wrap_up=0)  # 0: a reply ends only where the model ends it
    assert reply(TokenChooser(never, eot, [eot], {}, gpt2_bytes)) == words + [eot]
    banned = reply(TokenChooser(plain, eot, [eot], {eot: -100.0}, gpt2_bytes))
    assert banned[: len(words)] == words and eot not in banned  # a banned end of turn stays banned


def test_past_the_wrap_up_a_sentence_end_grows_likelier(tokenizer, gpt2_bytes):
    eot = tokenizer.eos_token_id
    word, stop = tokenizer.encode(" and")[0], tokenizer.encode(".")[0]
    logits = np.zeros(len(tokenizer))
    logits[word], logits[stop] = 11.0, 9.5  # a model that would say "and" for ever
    rng = np.random.default_rng(0)
    how = ChatConfig(temperature=0, repetition_penalty=1.0, no_repeat_ngram=0, wrap_up=4, max_new_tokens=60)
    pick = TokenChooser(how, eot, [eot], {}, gpt2_bytes)
    reply = [pick.choose(logits, rng) for _ in range(60)]
    reply = reply[: reply.index(eot) + 1] if eot in reply else reply
    assert reply[-2:] == [stop, eot] and 4 < len(reply) < 60  # drawn to its sentence's end, then ended
    never = TokenChooser(replace(how, wrap_up=0), eot, [eot], {}, gpt2_bytes)
    assert [never.choose(logits, rng) for _ in range(60)] == [word] * 60  # no wrap-up, no push


def favourites(size: int, ranked: list[int]) -> np.ndarray:
    """Logits that rank the given tokens first, best first."""
    logits = np.zeros(size)
    logits[ranked] = np.arange(len(ranked), 0, -1) + 10.0
    return logits


def test_a_reply_never_repeats_its_own_ngrams():
    rng = np.random.default_rng(0)
    pick = chooser(eot=9, no_repeat_ngram=2, repetition_penalty=1.0)
    loves_4 = np.array([0, 0, 0, 0, 8.0, 7.0, 6.0, 5.0, 0, 0])  # a weak model's favourite word
    reply = [pick.choose(loves_4, rng) for _ in range(6)]
    assert reply[:3] == [4, 4, 5]  # "4 4" is said once; after a 4, "4 4" may not come again
    bigrams = list(zip(reply, reply[1:]))
    assert len(bigrams) == len(set(bigrams))


def test_top_k_one_is_greedy_and_a_seed_repeats_a_sample(tiny_model, tokenizer):
    model = load_model(str(tiny_model), tokenizer)
    decoder = Decoder(model, tokenizer.eos_token_id)
    context = tokenizer.encode("What do you think of our new neighbours?") + [tokenizer.eos_token_id]
    sampled = ChatConfig(max_new_tokens=20)
    first = list(decoder.sample(context, sampled, np.random.default_rng(7)))
    assert list(decoder.sample(context, sampled, np.random.default_rng(7))) == first
    top1 = ChatConfig(top_k=1, temperature=1.5, repetition_penalty=1.0, no_repeat_ngram=0, max_new_tokens=20)
    greedy = ChatConfig(temperature=0, repetition_penalty=1.0, no_repeat_ngram=0, max_new_tokens=20)
    assert list(decoder.sample(context, top1, np.random.default_rng(1))) == list(
        decoder.sample(context, greedy, np.random.default_rng(2))
    )


def test_replies_sampled_side_by_side_are_those_sampled_alone(tiny_model, tokenizer):
    model = load_model(str(tiny_model), tokenizer)
    eot = tokenizer.eos_token_id
    decoder = Decoder(model, eot)
    contexts = [  # one chunk, several, and a single token: padded on the left by different amounts
        tokenizer.encode("What do you think of our new neighbours?") + [eot],
        tokenizer.encode(" ".join(["It is a truth universally acknowledged, that a single man"] * 12)) + [eot],
        [eot],
    ]
    sampled = ChatConfig(max_new_tokens=24)
    for how in (GREEDY, sampled):
        alone = [list(decoder.sample(c, how, np.random.default_rng([5, i]))) for i, c in enumerate(contexts)]
        rows = [np.random.default_rng([5, i]) for i in range(len(contexts))]
        steps = list(decoder.sample_rows(contexts, how, rows))
        together = [[s[r] for s in steps if s[r] is not None] for r in range(len(contexts))]
        assert together == alone
        assert len(steps) == max(len(a) for a in alone)  # the batch ends when its longest reply does


def test_a_reply_cut_inside_a_character_ends_before_it(tokenizer):
    ids = tokenizer.encode(" Tea, Miss Woodhouse? ☕")  # the cup is two byte tokens
    assert tokenizer.decode(ids[:-1]).endswith("\ufffd")
    cut = Reply(iter(ids[:-1]), tokenizer, 0)  # max_new_tokens ran out after the cup's first byte
    assert "".join(cut) == "Tea, Miss Woodhouse? " and cut.finish_reason == "length"
    whole = Reply(iter([*ids, tokenizer.eos_token_id]), tokenizer, 0)
    assert list(whole)[-1].endswith("☕") and whole.finish_reason == "stop"
