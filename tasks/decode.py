"""Token-by-token sampling with GPT-2's key/value cache, XLA-compiled, so a reply can stream as it is made.

TensorFlow's `generate` hands back a reply only once it is whole. Here the context is read into a
cache in chunks of CHUNK tokens, then each new token is one call that attends to the cache. Both
calls have fixed shapes (per number of rows and cache size: 128, 256, 512 ... slots), so XLA
compiles each once. Several contexts can be answered side by side (an evaluation samples its
replies in rows of a batch); each is padded on the left to whole chunks, so all rows write their
next token to the same slot. Padding and slots not yet written are masked out with the same
additive -10000 that Hugging Face's own XLA generation uses, so the logits are those of a plain
forward pass: greedy decoding here gives the tokens `generate` gives (tests/test_decode.py).

Each token is then chosen in numpy from the logits: a bias per token (OpenAI's logit_bias), the
repetition penalty on tokens already seen (never on <|endoftext|>, which ends every turn of the
context), no n-gram repeated inside the reply, no end of turn before the reply says something (a
space, a line break or part of a character is nothing), temperature, top-k and top-p; and once a
reply is --wrap-up tokens long, it ends with its sentence, each token more making a sentence's end
likelier (WRAP_UP_PUSH). Temperature 0 is greedy. GPT-2's tokens are bytes, and a character outside
ASCII can take several: after the first bytes of one, only the bytes that finish it as well-formed
UTF-8 may come, and a byte that continues nothing never does, so a reply holds no broken character
(no U+FFFD), nor the invisible controls U+0080 to U+009F; its turn ends only between characters.
"""

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

from tasks.config import ChatConfig

CHUNK = 64  # context tokens read per call: one compiled shape for any context length
# Past --wrap-up tokens, each token more adds this to the logits of the tokens that end a sentence, so a
# reply whose sentence runs on is drawn to its end before --max-new-tokens cuts it off. On 100 Emma
# prompts (scratch:small, the default training), replies that ended within 60 tokens: 0.82 -> 0.98 and
# 0.96 -> 1.00 for two models, 2 and 0.5 words shorter on average, distinct-2 no lower; 0.2 ended all.
WRAP_UP_PUSH = 0.1
MIN_SLOTS = 128
# Where a reply stands in UTF-8 after its last token: between characters (state 0), or owing 1, 2 or 3
# more bytes of a character (states 1 to 3), or owing them with the next byte held to a narrower range
# than 80-bf (states 4 to 8). The narrower ranges are UTF-8's own (no overlong form after e0 or f0, no
# surrogate after ed, nothing past U+10FFFF after f4), and after c2 they also leave out the invisible
# control characters U+0080 to U+009F.
STATES = ((0, 0, 0), (1, 0x80, 0xBF), (2, 0x80, 0xBF), (3, 0x80, 0xBF))  # (bytes owed, next byte's range)
STATES += ((1, 0xA0, 0xBF), (2, 0xA0, 0xBF), (2, 0x80, 0x9F), (3, 0x90, 0xBF), (3, 0x80, 0x8F))
LEAD = {0xC2: 4, 0xE0: 5, 0xED: 6, 0xF0: 7, 0xF4: 8}  # lead bytes with a narrower next byte
LEAD |= {b: 1 for b in range(0xC3, 0xE0)} | {b: 2 for b in range(0xE1, 0xF0) if b != 0xED} | {0xF1: 3, 0xF2: 3, 0xF3: 3}
# A token that ends a sentence: its last mark (closing quotes and brackets aside) is one of these,
# unless it is the dot of a title ("Mr" "." goes on: SHORT_FORMS are the words a dot does not end)
SENTENCE_END = re.compile(rb"[.!?][\"')\]]*\s*$|\xe2\x80\xa6\s*$")
SHORT_FORMS = {b"Mr", b"Mrs", b"Ms", b"Dr", b"St", b"Messrs", b"Mme", b"M", b"Rev", b"Col", b"Capt", b"Gen", b"Esq"}


@dataclass(frozen=True)
class TokenBytes:
    """What the sampling rules know of each token id's bytes: whether it says anything alone, and from
    each UTF-8 state (STATES) the state it leads to, or -1 where it may not come."""

    blank: np.ndarray  # [vocab] bool: says nothing alone (whitespace, or part of a character)
    next_state: np.ndarray  # [len(STATES), vocab] int
    banned: tuple[np.ndarray, ...]  # per state, the ids that may not come (between characters: about 100)
    ends_sentence: np.ndarray  # [vocab] bool: ends with a sentence's end mark ("." "!" "?" "…", '."')
    short_form: np.ndarray  # [vocab] bool: a title a dot follows without ending the sentence ("Mr", " Dr")

    @classmethod
    def of(cls, pieces: Sequence[bytes | None], size: int) -> "TokenBytes":
        """From each token id's bytes (None for a special token such as <|endoftext|>), for a model
        with `size` logits (ids past the pieces are treated as special tokens)."""
        blank, ends_sentence, short_form = (np.zeros(size, bool) for _ in range(3))
        next_state = np.full((len(STATES), size), -1, np.int64)
        next_state[0] = 0  # plain ASCII and special tokens come only between characters
        for token, data in enumerate(pieces):
            if data is not None:
                ends_sentence[token] = bool(SENTENCE_END.search(data)) and data.strip().rstrip(b".") not in SHORT_FORMS
                short_form[token] = data.strip() in SHORT_FORMS
            if data is None or data.isascii():
                blank[token] = data is not None and not data.strip()
                continue
            for state in range(len(STATES)):
                next_state[state, token] = _after(state, data)
            blank[token] = next_state[0, token] != 0 or not data.decode("utf-8").strip()
        banned = tuple(np.flatnonzero(row < 0) for row in next_state)
        return cls(blank, next_state, banned, ends_sentence, short_form)


def _after(state: int, data: bytes) -> int:
    """The UTF-8 state after these bytes from that state, or -1 if they break a character there."""
    for byte in data:
        owed, low, high = STATES[state]
        if owed:
            if not low <= byte <= high:
                return -1
            state = owed - 1  # the bytes after the next one may be any continuation byte
        elif byte >= 0x80:
            state = LEAD.get(byte, -1)  # a continuation byte that continues nothing, or a byte UTF-8 never uses
            if state < 0:
                return -1
    return state


class Decoder:
    """A GPT-2 model's compiled prefill and step over a fixed-size key/value cache."""

    def __init__(self, model, eot: int, token_bytes: TokenBytes | None = None) -> None:
        self.model, self.eot, self.token_bytes = model, eot, token_bytes  # None: no rules on bytes
        config = model.config
        self.positions, self.layers = config.n_positions, config.n_layer
        self.heads, self.head_size = config.n_head, config.n_embd // config.n_head
        self._extend = tf.function(self._extend_cache, jit_compile=True)

    def _extend_cache(self, ids, mask, past, valid, offset, last, pad):
        """Read ids [rows, n] (mask: 1 where real) into cache slots offset.. ; the logits after ids[:, last].
        pad: each row's padding before its context, so that its positions start at 0 where it does."""
        positions = offset + tf.range(tf.shape(ids)[1])[None, :] - pad[:, None]
        out = self.model.transformer(
            input_ids=ids,
            # padding may run outside the model's positions: it is masked, so any will do
            position_ids=tf.clip_by_value(positions, 0, self.positions - 1),
            attention_mask=tf.concat([valid, mask], axis=1),
            past_key_values=past,
            use_cache=True,
            training=False,
        )
        slots = valid.shape[1]
        start = tf.stack([0, 0, 0, offset, 0])
        # each layer's present is [2, rows, heads, slots + n, head size]: the last n are the new keys and values
        past = [dynamic_update_slice(old, new[:, :, :, slots:], start) for old, new in zip(past, out.past_key_values)]
        valid = dynamic_update_slice(valid, mask, tf.stack([0, offset]))
        hidden = out.last_hidden_state[:, last]
        logits = tf.matmul(hidden, self.model.transformer.wte.embeddings, transpose_b=True)  # the input layer's
        return logits, past, valid

    def slots_for(self, needed: int) -> int:
        """The cache size for `needed` slots: a power of two, at most the model's context (unless more are needed)."""
        return max(min(max(MIN_SLOTS, 1 << (needed - 1).bit_length()), self.positions), needed)

    def sample(
        self, context: list[int], how: ChatConfig, rng: np.random.Generator, logit_bias: dict[int, float] | None = None
    ) -> Iterator[int]:
        """Token ids after the context, one at a time, until <|endoftext|> (yielded last) or max_new_tokens."""
        for tokens in self.sample_rows([context], how, [rng], logit_bias):
            yield tokens[0]

    def sample_rows(
        self,
        contexts: list[list[int]],
        how: ChatConfig,
        rngs: list[np.random.Generator],
        logit_bias: dict[int, float] | None = None,
    ) -> Iterator[list[int | None]]:
        """Replies to several contexts side by side, one step at a time: each row's next token id, None once
        its reply has ended (with <|endoftext|>, or at max_new_tokens). Each row draws from its own rng, so
        a reply is the one sample() gives its context alone (to rounding in the arithmetic)."""
        for context in contexts:
            if not context or len(context) + how.max_new_tokens > self.positions:
                raise ValueError(f"{len(context)} context tokens and {how.max_new_tokens} new ones don't fit the model")
        # contexts are padded on the left to whole chunks, so that every row's next token has the same slot
        width = -(-max(len(c) for c in contexts) // CHUNK) * CHUNK
        slots = self.slots_for(width + how.max_new_tokens)
        rows = len(contexts)
        pad = tf.constant([width - len(c) for c in contexts], tf.int32)
        padded = [[self.eot] * (width - len(c)) + c for c in contexts]
        real = [[0] * (width - len(c)) + [1] * len(c) for c in contexts]
        past = [tf.zeros((2, rows, self.heads, slots, self.head_size)) for _ in range(self.layers)]
        valid = tf.zeros((rows, slots), tf.int32)
        for start in range(0, width, CHUNK):
            ids = tf.constant([row[start : start + CHUNK] for row in padded], tf.int32)
            mask = tf.constant([row[start : start + CHUNK] for row in real], tf.int32)
            logits, past, valid = self._extend(ids, mask, past, valid, tf.constant(start), tf.constant(CHUNK - 1), pad)
        choosers = [TokenChooser(how, self.eot, c, logit_bias or {}, self.token_bytes) for c in contexts]
        ended = [False] * rows
        one = tf.ones((rows, 1), tf.int32)
        for step in range(how.max_new_tokens):
            scores = logits.numpy()
            tokens = [None if ended[r] else choosers[r].choose(scores[r], rngs[r]) for r in range(rows)]
            yield tokens
            ended = [e or t == self.eot for e, t in zip(ended, tokens)]
            if all(ended) or step + 1 == how.max_new_tokens:
                return
            ids = tf.constant([[self.eot if t is None else t] for t in tokens], tf.int32)
            logits, past, valid = self._extend(ids, one, past, valid, tf.constant(width + step), tf.constant(0), pad)


class TokenChooser:
    """The sampling rules of one reply, applied to each token's logits in turn."""

    def __init__(
        self,
        how: ChatConfig,
        eot: int,
        context: list[int],
        logit_bias: dict[int, float],
        token_bytes: TokenBytes | None = None,
    ) -> None:
        self.how, self.eot, self.logit_bias, self.token_bytes = how, eot, logit_bias, token_bytes
        self.said = False  # a token not blank has been chosen
        self.state = 0  # where the reply stands in UTF-8 (STATES): 0 between characters
        self.seen = {t for t in context if t != eot}
        self.reply: list[int] = []
        self.followers: dict[tuple[int, ...], set[int]] = {}  # (n-1)-gram of the reply -> tokens that followed it

    def _past_wrap_up(self) -> int:
        """How far the reply has come past --wrap-up tokens (1 at the token it reaches it), else 0; always 0
        without the tokens' bytes, with --wrap-up 0, or before the reply has said something."""
        wrap_up = self.how.wrap_up
        if self.token_bytes is None or not wrap_up or not self.said:
            return 0
        return max(len(self.reply) - wrap_up + 1, 0)

    def wraps_up(self) -> bool:
        """True when the reply has reached --wrap-up tokens and ended a sentence, and so ends here (unless a
        logit_bias of -100 forbids the end of turn)."""
        if not self._past_wrap_up():
            return False
        rules, reply = self.token_bytes, self.reply
        ends = rules.ends_sentence[reply[-1]] and not (len(reply) > 1 and rules.short_form[reply[-2]])
        return bool(ends) and self.logit_bias.get(self.eot, 0) > -100

    def choose(self, logits: np.ndarray, rng: np.random.Generator) -> int:
        """The next token; remembers it as part of the reply."""
        if self.wraps_up():
            self.reply.append(self.eot)
            return self.eot
        how, logits = self.how, logits.astype(np.float64)
        for token, bias in self.logit_bias.items():
            logits[token] += bias
        if how.repetition_penalty != 1 and self.seen:
            seen = np.fromiter(self.seen, np.int64)
            scores = logits[seen]
            logits[seen] = np.where(scores > 0, scores / how.repetition_penalty, scores * how.repetition_penalty)
        n = how.no_repeat_ngram
        if n and len(self.reply) >= n - 1:
            banned = self.followers.get(tuple(self.reply[len(self.reply) - n + 1 :]), ())
            logits[list(banned)] = -np.inf
        if WRAP_UP_PUSH and (past := self._past_wrap_up()):
            logits[self.token_bytes.ends_sentence] += WRAP_UP_PUSH * past
        if not self.said:
            logits[self.eot] = -np.inf  # a turn says something before it ends
        if self.token_bytes is not None:
            logits[self.token_bytes.banned[self.state]] = -np.inf
        token = _draw(logits, how, rng)
        if n and len(self.reply) >= n - 1:
            self.followers.setdefault(tuple(self.reply[len(self.reply) - n + 1 :]), set()).add(token)
        self.reply.append(token)
        rules = self.token_bytes
        if rules is None:
            self.said = True
        else:  # a token that finishes a character split over several says something too
            before, self.state = self.state, int(rules.next_state[self.state, token])
            self.said = self.said or not rules.blank[token] or (before > 0 and self.state == 0)
        if token != self.eot:
            self.seen.add(token)
        return token


def _draw(logits: np.ndarray, how: ChatConfig, rng: np.random.Generator) -> int:
    """Greedy at temperature 0; else a draw from the top-k tokens, cut to the top-p share."""
    if how.temperature == 0:
        return int(np.argmax(logits))
    k = how.top_k if 0 < how.top_k < len(logits) else len(logits)
    candidates = np.argpartition(logits, -k)[-k:]
    candidates = candidates[np.argsort(-logits[candidates], kind="stable")]
    scaled = logits[candidates] / how.temperature
    probs = np.exp(scaled - scaled[0])
    probs /= probs.sum()
    # the smallest set whose probability reaches top_p (the token that crosses it included)
    keep = int(np.searchsorted(np.cumsum(probs), how.top_p)) + 1
    probs = probs[:keep] / probs[:keep].sum()
    return int(candidates[rng.choice(len(probs), p=probs)])
