"""Measure a bot on dialogue pairs, laid out as it was trained: how well it predicts the real
responses, whether it tells them from other lines, whether it knows who says what, and what its
own replies look like beside the author's.

- response perplexity: of each response and its end token, given its prompt (and the earlier
  turns of its conversation, for a model trained on conversations);
- Hits@1 of 10: how often the true response has the highest likelihood per token among it and 9
  other responses of the same book (per token, so that short lines do not win for being short;
  random: 0.10);
- speaker identification: for lines of the 5 characters with most lines, how often the true
  speaker's name before the line makes the line likeliest (random: 0.20);
- an n-gram floor: the response perplexity of an interpolated Kneser-Ney bigram model counted on
  the model's own training turns (saved beside it), scored on the same tokens;
- sampled replies (the chat's sampler and defaults) beside the real responses: end-of-turn rate,
  empty replies, distinct-1/2, repeated 4-grams inside a reply, echo of the prompt, mean length.
"""

import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
from prefect import task
from prefect.cache_policies import INPUTS

from tasks.cache import ModuleSource
from tasks.chat import Bot
from tasks.config import ChatConfig, EvalConfig
from tasks.errors import InvalidDataError
from tasks.examples import MIN_CONTEXT, TRAINING_TEXT, Turn, conversations_from_pairs, encode_turns
from tasks.tables import DATASET, StoredFile, read_table, write_atomically

log = logging.getLogger(__name__)
TOP_SPEAKERS = 5
WORDS = re.compile(r"\w+(?:['’]\w+)?|[^\w\s]")
BATCH = 16  # rows scored, or replies sampled, side by side


@dataclass(frozen=True)
class Response:
    """One response to score: the turns before it (the last one its prompt), and itself."""

    book_id: int
    history: list[Turn]
    turn: Turn


def responses_of(pairs: pd.DataFrame) -> list[Response]:
    """Every response of the pairs' conversations, with the turns before it."""
    return [
        Response(c.book_id, c.turns[:j], c.turns[j])
        for c in conversations_from_pairs(pairs)
        for j in range(1, len(c.turns))
    ]


class Scorer:
    """Log-likelihoods of token sequences given contexts under a model, laid out as it was trained."""

    def __init__(self, bot: Bot) -> None:
        self.bot, self.tokenizer, self.layout = bot, bot.tokenizer, bot.layout
        positions = bot.model.config.n_positions
        self.max_length = min(self.layout.max_length or positions, positions)
        model = bot.model

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32)])
        def row_log_likelihoods(ids, targets):  # one trace for every shape
            hidden = model.transformer(input_ids=ids, training=False)[0][:, :-1]
            where = tf.where(targets[:, 1:] > 0)
            picked = tf.gather_nd(hidden, where)
            logits = tf.matmul(picked, model.transformer.wte.embeddings, transpose_b=True)
            labels = tf.gather_nd(ids[:, 1:], where)
            log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            return tf.math.unsorted_segment_sum(log_probs, where[:, 0], tf.shape(ids)[0])

        self._rows = row_log_likelihoods

    def context(self, r: Response, speaker: str | None = None) -> list[int]:
        """The tokens before the response: its history (or its prompt alone), then its speaker's name."""
        history = r.history if self.layout.history else r.history[-1:]
        ids = [t for name, text in encode_turns(history, self.tokenizer, self.layout.names) for t in name + text]
        speaker = r.turn.speaker if speaker is None else speaker
        if self.layout.names and speaker:
            ids += self.tokenizer.encode(f"{speaker}:")
        return ids

    def target(self, text: str, named: bool) -> list[int]:
        """A response's tokens and its end token, as training encodes a turn with or without a name."""
        return encode_turns([Turn("x" if named else "", text)], self.tokenizer, self.layout.names)[0][1]

    def log_likelihoods(self, items: list[tuple[list[int], list[int]]]) -> np.ndarray:
        """[n, 2]: summed log-probability of each target given its context, and its number of tokens.
        A context is cut from its start to fit the training's row length; a target that leaves less
        than MIN_CONTEXT tokens of context is scored on its end only (rare: longer than any row)."""
        rows = []
        for context, target in items:
            target = target[-(self.max_length - MIN_CONTEXT) :]
            context = context[-(self.max_length - len(target)) :] or [self.tokenizer.eos_token_id]
            rows.append((context + target, len(context)))
        out = np.zeros((len(items), 2))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            width = max(len(rows[i][0]) for i in chunk)
            ids = np.full((BATCH, width), self.tokenizer.eos_token_id, np.int32)
            targets = np.zeros((BATCH, width), np.float32)
            for k, i in enumerate(chunk):
                seq, n_context = rows[i]
                ids[k, : len(seq)] = seq
                targets[k, n_context : len(seq)] = 1.0
            sums = self._rows(tf.constant(ids), tf.constant(targets)).numpy()
            for k, i in enumerate(chunk):
                out[i] = sums[k], len(rows[i][0]) - rows[i][1]
        return out


def perplexity(scores: np.ndarray) -> float:
    return math.exp(-scores[:, 0].sum() / max(scores[:, 1].sum(), 1.0))


def hits_at_1(scorer: Scorer, responses: list[Response], candidates: int, rng: np.random.Generator) -> dict:
    """The true response against candidates - 1 others of its book, by likelihood per token."""
    by_book: dict[int, list[str]] = {}
    for r in responses:
        by_book.setdefault(r.book_id, []).append(r.turn.text)
    items, groups = [], []
    for r in responses:
        others = [t for t in set(by_book[r.book_id]) if t != r.turn.text]
        if len(others) < candidates - 1:
            continue
        chosen = [r.turn.text] + list(rng.choice(sorted(others), candidates - 1, replace=False))
        context = scorer.context(r)
        groups.append(len(items))
        items += [(context, scorer.target(text, bool(r.turn.speaker))) for text in chosen]
    if not groups:
        return {"value": None, "responses": 0, "candidates": candidates, "chance": 1 / candidates}
    scores = scorer.log_likelihoods(items)
    per_token = (scores[:, 0] / scores[:, 1]).reshape(len(groups), candidates)
    value = float((per_token.argmax(axis=1) == 0).mean())
    return {"value": value, "responses": len(groups), "candidates": candidates, "chance": 1 / candidates}


def speaker_identification(scorer: Scorer, responses: list[Response], most: int) -> dict:
    """Which of the TOP_SPEAKERS characters' names, said before a line of theirs, makes it likeliest
    (on their first `most` lines; 0: all)."""
    counts = pd.Series([r.turn.speaker for r in responses if r.turn.speaker]).value_counts()
    speakers = list(counts.index[:TOP_SPEAKERS])
    lines = [r for r in responses if r.turn.speaker in speakers][: most or None]
    if len(speakers) < 2 or not lines or not scorer.layout.names:  # a model without names cannot be asked
        return {"value": None, "lines": 0, "speakers": speakers, "chance": None}
    items = [(scorer.context(r, name), scorer.target(r.turn.text, True)) for r in lines for name in speakers]
    sums = scorer.log_likelihoods(items)[:, 0].reshape(len(lines), len(speakers))
    truth = np.array([speakers.index(r.turn.speaker) for r in lines])
    value = float((sums.argmax(axis=1) == truth).mean())
    return {"value": value, "lines": len(lines), "speakers": speakers, "chance": 1 / len(speakers)}


class KneserNeyBigram:
    """An interpolated Kneser-Ney bigram model over token ids, the continuation counts smoothed
    towards uniform so that no token has zero probability."""

    def __init__(self, stream: np.ndarray, vocab: int, discount: float = 0.75) -> None:
        prev, nxt = stream[:-1].astype(np.int64), stream[1:].astype(np.int64)
        self.keys, counts = np.unique(prev * vocab + nxt, return_counts=True)
        self.counts, self.vocab, self.d = counts, vocab, discount
        self.context_total = np.bincount(prev, minlength=vocab)
        self.followers = np.bincount(self.keys // vocab, minlength=vocab)
        continuations = np.bincount(self.keys % vocab, minlength=vocab)
        seen = int((continuations > 0).sum())
        self.p_continuation = (np.maximum(continuations - discount, 0) + discount * seen / vocab) / len(self.keys)

    def log_probs(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        keys = prev.astype(np.int64) * self.vocab + nxt
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        pair = np.where(self.keys[at] == keys, self.counts[at], 0)
        total = self.context_total[prev]
        safe = np.maximum(total, 1)
        weight = np.where(total > 0, self.d * self.followers[prev] / safe, 1.0)
        p = np.where(total > 0, np.maximum(pair - self.d, 0) / safe, 0.0) + weight * self.p_continuation[nxt]
        return np.log(p)


def ngram_perplexity(model_dir: Path, tokenizer, responses: list[Response]) -> float | None:
    """The bigram floor's response perplexity, from the model's training text; None when it has none saved."""
    path = Path(model_dir) / TRAINING_TEXT
    if not path.is_file():
        return None
    bigram = KneserNeyBigram(np.load(path), len(tokenizer))
    eot = tokenizer.eos_token_id
    total = count = 0.0
    for r in responses:
        ids = np.array([eot] + encode_turns([Turn("", r.turn.text)], tokenizer, names=False)[0][1])
        total += bigram.log_probs(ids[:-1], ids[1:]).sum()
        count += len(ids) - 1
    return math.exp(-total / max(count, 1.0))


def words(text: str) -> list[str]:
    return WORDS.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def reply_statistics(replies: list[str], prompts: list[str]) -> dict:
    """distinct-1/2 over all replies, the share of a reply's 4-grams that repeat one before them in
    it, the share of replies that copy 4 words of their prompt in a row, mean length in words."""
    tokens = [words(r) for r in replies]
    distinct = {}
    for n in (1, 2):
        grams = [g for t in tokens for g in ngrams(t, n)]
        distinct[n] = len(set(grams)) / max(len(grams), 1)
    fours = [ngrams(t, 4) for t in tokens]
    repeated = sum(len(g) - len(set(g)) for g in fours) / max(sum(len(g) for g in fours), 1)
    echo = sum(bool(set(g) & set(ngrams(words(p), 4))) for g, p in zip(fours, prompts)) / max(len(replies), 1)
    return {
        "distinct_1": distinct[1],
        "distinct_2": distinct[2],
        "repeated_4grams": repeated,
        "echo": echo,
        "mean_words": float(np.mean([len(t) for t in tokens])) if tokens else 0.0,
    }


def sample_replies(bot: Bot, responses: list[Response], sampling: ChatConfig, seed: int) -> dict:
    """The chat's replies to these responses' histories, with their statistics and the real ones'."""
    replies, ended = [""] * len(responses), 0
    # rows of similar length side by side (less padding); each reply keeps the seed of its place
    order = sorted(range(len(responses)), key=lambda i: sum(len(t.text) for t in responses[i].history))
    for first in range(0, len(order), BATCH):
        rows = order[first : first + BATCH]
        histories = [responses[i].history for i in rows]
        sampled = bot.replies(histories, sampling, [np.random.default_rng([seed, i]) for i in rows])
        for i, (text, why) in zip(rows, sampled):
            replies[i] = " ".join(text.split())
            ended += why == "stop"
    prompts = [r.history[-1].text for r in responses]
    sampled = reply_statistics(replies, prompts) | {
        "replies": len(replies),
        "end_of_turn_rate": ended / max(len(replies), 1),
        "empty": sum(not r for r in replies),
    }
    real = reply_statistics([r.turn.text for r in responses], prompts)
    # the share of the author's own responses that would end within the same token limit, laid out as
    # the sampled replies are (unnamed: the bot speaks without a name here), their end token included
    laid_out = encode_turns([r.turn for r in responses], bot.tokenizer, names=False)
    real["end_of_turn_rate"] = sum(len(ids) <= sampling.max_new_tokens for _, ids in laid_out) / max(len(laid_out), 1)
    return {"sampled": sampled, "real": real, "examples": [[p, s] for p, s in zip(prompts[:5], replies[:5])]}


def evaluate_bot(model_dir: Path, pairs: pd.DataFrame, cfg: EvalConfig, sampling: ChatConfig) -> dict:
    """Every measure above, on the responses of these pairs (a seeded sample of cfg.max_responses)."""
    started = time.monotonic()
    bot = Bot(model_dir, sampling)
    responses = responses_of(pairs)
    if not responses:
        raise InvalidDataError("no responses to score: the pairs file holds no conversation with two turns")
    rng = np.random.default_rng(cfg.seed)
    if cfg.max_responses and len(responses) > cfg.max_responses:
        responses = [responses[i] for i in sorted(rng.choice(len(responses), cfg.max_responses, replace=False))]
    scorer = Scorer(bot)
    log.info("scoring %d responses", len(responses))
    scores = scorer.log_likelihoods(
        [(scorer.context(r), scorer.target(r.turn.text, bool(r.turn.speaker))) for r in responses]
    )
    ranked = responses[: cfg.ranked] if cfg.ranked else responses
    ppl, floor = perplexity(scores), ngram_perplexity(model_dir, bot.tokenizer, responses)
    log.info(
        "response perplexity %.1f (bigram floor %s); ranking %d responses", ppl, floor and f"{floor:.1f}", len(ranked)
    )
    result = {
        "model": str(model_dir),
        "layout": {k: v for k, v in asdict(bot.layout).items() if k != "characters"},
        "responses": len(responses),
        "response_tokens": int(scores[:, 1].sum()),
        "response_perplexity": ppl,
        "ngram_perplexity": floor,
        "below_ngram": None if floor is None else 1 - ppl / floor,
        "hits_at_1": hits_at_1(scorer, ranked, cfg.candidates, rng),
        "speaker_identification": speaker_identification(scorer, responses, cfg.ranked),
    }
    log.info("sampling replies to %d prompts", min(cfg.samples, len(responses)))
    result["replies"] = sample_replies(bot, responses[: cfg.samples], sampling, cfg.seed)
    result["seconds"] = time.monotonic() - started
    return result


def formatted(x) -> str:
    """A measure as a report shows it: three decimals, "-" where there is none."""
    return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def eval_markdown(result: dict) -> str:
    """The evaluation as a Markdown report."""
    h, s, replies = result["hits_at_1"], result["speaker_identification"], result["replies"]
    lines = [
        f"# Evaluation of `{result['model']}`",
        "",
        f"{result['responses']} responses ({result['response_tokens']} tokens), in {result['seconds']:.0f} s.",
        "",
        "| measure | bot | baseline |",
        "|---|---|---|",
        f"| response perplexity | {formatted(result['response_perplexity'])} | bigram (Kneser-Ney) "
        f"{formatted(result['ngram_perplexity'])} |",
        f"| Hits@1 of {h['candidates']} ({h['responses']} responses) | {formatted(h['value'])} | "
        f"random {formatted(h['chance'])} |",
        f"| speaker identification ({s['lines']} lines, {', '.join(s['speakers'])}) | {formatted(s['value'])} | "
        f"random {formatted(s['chance'])} |",
        "",
        f"| {replies['sampled']['replies']} sampled replies | bot | real responses |",
        "|---|---|---|",
        f"| end-of-turn rate (within --max-new-tokens) | {formatted(replies['sampled']['end_of_turn_rate'])} | "
        f"{formatted(replies['real']['end_of_turn_rate'])} |",
        f"| empty replies | {replies['sampled']['empty']} | 0 |",
    ]
    for key in ("distinct_1", "distinct_2", "repeated_4grams", "echo", "mean_words"):
        lines.append(
            f"| {key.replace('_', '-')} | {formatted(replies['sampled'][key])} | {formatted(replies['real'][key])} |"
        )
    lines += ["", "Sampled replies:", ""]
    lines += [f"- *{p}* -> {r or '(empty)'}" for p, r in replies["examples"]]
    return "\n".join(lines) + "\n"


def write_eval(result: dict, path: Path) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(result, indent=1), "utf-8"))


@task(
    name="evaluate-bot",
    cache_policy=INPUTS + ModuleSource(modules=("tasks.chat", "tasks.decode", "tasks.examples")),
    persist_result=True,
)
def evaluate_bot_task(weights: StoredFile, dataset: StoredFile, cfg: EvalConfig, sampling: ChatConfig) -> dict:
    """The evaluation on the dataset's validation pairs; cached by the bytes of the weights and of the
    dataset, the settings and this code, so the same command again measures nothing twice."""
    data = read_table(dataset.path, DATASET)
    return evaluate_bot(weights.path.parent, data[data.split == "validation"], cfg, sampling)
