"""Talk to a trained bot: replies that end with the bot's turn, history that fits the context,
a terminal loop, and transcripts of replies to test prompts.

A conversation is laid out as in training: turns joined by <|endoftext|>, the last one ended by
it too, so the model's next turn is the bot's; a model trained with speakers' names reads the
user's turns under their name (--you) and writes the bot's under its character's (--as).
"""

import functools
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

import numpy as np
from prefect import task
from prefect.cache_policies import INPUTS
from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

from tasks.cache import ModuleSource
from tasks.config import TRAINED_FIX, ChatConfig, check_model_dir, read_prompts
from tasks.decode import Decoder, TokenBytes
from tasks.errors import ConfigError
from tasks.examples import MIN_CONTEXT, Layout, Turn, encode_turns
from tasks.model import load_model, load_tokenizer
from tasks.tables import StoredFile

log = logging.getLogger(__name__)

COMMANDS = "/reset forgets the conversation, /as NAME and /you NAME change who speaks, /quit (or Ctrl-D) ends it"


@functools.lru_cache(maxsize=1)
def _loaded(model_dir: str, saved: int) -> tuple:
    """(tokenizer, model, decoder) of a model directory as saved at that time: bots of the same model
    in one process (a run's evaluation, then its transcript) share it and its compiled decoder."""
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, tokenizer)
    return tokenizer, model, Decoder(model, tokenizer.eos_token_id, token_bytes(tokenizer, model.config.vocab_size))


def token_bytes(tokenizer, size: int) -> TokenBytes:
    """The sampling rules' view of a GPT-2 tokenizer's tokens: each one's bytes, through GPT-2's
    byte-level alphabet (a token is written as one printable character per byte)."""
    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
    special = set(tokenizer.all_special_tokens)
    pieces: list[bytes | None] = [None] * len(tokenizer)
    for piece, token in tokenizer.get_vocab().items():
        if piece not in special:
            pieces[token] = bytes(byte_of[c] for c in piece)
    return TokenBytes.of(pieces, size)


class Bot:
    """A GPT-2 model and tokenizer, the conversation so far, and how to sample replies."""

    def __init__(self, model_dir: Path, cfg: ChatConfig, speaker: str = "", user: str = "") -> None:
        check_model_dir(model_dir, TRAINED_FIX)  # before the tokenizer, whose error would be less to the point
        saved = max(f.stat().st_mtime_ns for f in Path(model_dir).iterdir())
        self.tokenizer, self.model, self.decoder = _loaded(str(Path(model_dir).resolve()), saved)
        self.layout = Layout.of(model_dir)
        self.cfg, self.model_dir = cfg, model_dir
        self.speaker = self.layout.character  # a character's bot speaks as them unless told otherwise
        self.user = ""
        self.cast_as(speaker or self.speaker)
        self.call_user(user)
        self.history: list[Turn] = []
        self.turns = 0  # replies so far: varies the sampling seed from turn to turn, reproducibly

    def cast_as(self, name: str) -> None:
        """The character the bot's turns are written as ("" for none); ConfigError for a name it never learned."""
        self.speaker = self.character_name("--as", name)

    def call_user(self, name: str) -> None:
        """The name the user's turns are written under ("" for none): anyone, not only the cast."""
        self.user = self.character_name("--you", name, known_only=False)

    def character_name(self, flag: str, name: str, known_only: bool = True) -> str:
        return self.layout.speaker_name(flag, name, self.model_dir, known_only)

    def reset(self) -> None:
        self.history.clear()

    def context(self, history: Sequence[Turn], max_new_tokens: int, speaker: str | None = None) -> list[int]:
        """The latest turns that fit in the context beside a full-length reply, each ended by
        <|endoftext|>, then the bot's name when it speaks as a character. The context is as long as
        the training's rows (a scratch model never learned the positions past them), or longer
        when a reply needs it, up to the model's own limit."""
        speaker = self.speaker if speaker is None else speaker
        prefix = self.tokenizer.encode(f"{speaker}:") if speaker and self.layout.names else []
        positions = self.model.config.n_positions
        window = min(max(self.layout.max_length or positions, max_new_tokens + len(prefix) + MIN_CONTEXT), positions)
        budget = window - max_new_tokens - len(prefix)
        ids: list[int] = []
        for name, text in reversed(encode_turns(history, self.tokenizer, self.layout.names)):
            turn_ids = name + text
            if len(ids) + len(turn_ids) > budget:
                if not ids:  # one turn longer than the context: keep its end
                    ids = turn_ids[-budget:]
                break
            ids = turn_ids + ids
        return ids + prefix

    def stream(
        self,
        history: Sequence[Turn],
        cfg: ChatConfig,
        rng: np.random.Generator,
        logit_bias: dict | None = None,
        speaker: str | None = None,
    ) -> "Reply":
        """The bot's next turn after these turns (as speaker, else as the bot's character), sampled as it is read."""
        context = self.context(history, cfg.max_new_tokens, speaker)
        return Reply(self.decoder.sample(context, cfg, rng, logit_bias), self.tokenizer, len(context))

    def replies(
        self, histories: Sequence[Sequence[Turn]], cfg: ChatConfig, rngs: Sequence[np.random.Generator]
    ) -> list[tuple[str, str]]:
        """The bot's next turns after several conversations, sampled side by side (rngs: one each), as
        (text, finish_reason) pairs: the replies stream() gives each alone, in a fraction of the time."""
        contexts = [self.context(history, cfg.max_new_tokens) for history in histories]
        tokens: list[list[int]] = [[] for _ in contexts]
        why = ["length"] * len(contexts)
        for step in self.decoder.sample_rows(contexts, cfg, list(rngs)):
            for row, token in enumerate(step):
                if token == self.tokenizer.eos_token_id:
                    why[row] = "stop"
                elif token is not None:
                    tokens[row].append(token)
        return [(reply_text(self.tokenizer, ids), reason) for ids, reason in zip(tokens, why)]

    def reply(self, text: str, show: TextIO | None = None) -> str:
        """The bot's answer to one line, added to the history with it; show: where to print it as it comes."""
        self.history.append(Turn(self.user, text))
        rng = np.random.default_rng([self.cfg.seed, self.turns])  # the same seed and history, the same replies
        self.turns += 1
        pieces = []
        for piece in self.stream(self.history, self.cfg, rng):
            pieces.append(piece)
            if show is not None:
                print(" ".join(piece.split("\n")), end="", file=show, flush=True)
        answer = " ".join("".join(pieces).split())  # one line
        self.history.append(Turn(self.speaker, answer))
        return answer


def reply_text(tokenizer, tokens: list[int]) -> str:
    """A reply's text: without the space before its first word, nor half a character where it was cut
    (a character of several byte tokens, its first bytes sampled before the last token)."""
    return tokenizer.decode(tokens).lstrip().removesuffix("\ufffd")


class Reply:
    """A reply as it is sampled: iterating gives it piece by piece; afterwards `finish_reason` says why it
    ended ("stop": the bot ended its turn, "length": max_new_tokens) and `tokens` holds its token ids."""

    def __init__(self, ids: Iterator[int], tokenizer, prompt_tokens: int) -> None:
        self._ids, self._tokenizer, self.prompt_tokens = ids, tokenizer, prompt_tokens
        self.tokens: list[int] = []
        self.finish_reason = ""

    def __iter__(self) -> Iterator[str]:
        sent = ""
        self.finish_reason = "length"
        for token in self._ids:
            if token == self._tokenizer.eos_token_id:
                self.finish_reason = "stop"
                break
            self.tokens.append(token)
            text = reply_text(self._tokenizer, self.tokens)
            if len(text) > len(sent):
                yield text[len(sent) :]
                sent = text
        text = reply_text(self._tokenizer, self.tokens)
        if len(text) > len(sent):
            yield text[len(sent) :]

    def close(self) -> None:
        """Stop sampling (a client went away)."""
        self._ids.close()


def transcript_markdown(bot: Bot, prompts: Sequence[str], model_dir: Path) -> str:
    """Each prompt on its own (fresh history) and the bot's reply, with the settings used."""
    settings = ", ".join(f"{k} {v}" for k, v in asdict(bot.cfg).items())
    lines = [f"# Transcript of `{model_dir}`", "", f"Sampling: {settings}.", ""]
    you, them = bot.user or "You", bot.speaker or "Bot"
    for prompt in prompts:
        bot.reset()
        lines += [f"**{you}:** {prompt}", "", f"**{them}:** {bot.reply(prompt)}", ""]
    return "\n".join(lines)


def converse(bot: Bot, lines: Iterable[str], out: TextIO, interactive: bool) -> None:
    """Answer each line. Interactive: prompts and commands, replies printed as they are sampled.
    Piped: exactly one output line per input line, so scripts can read replies in step (a blank
    line gets a blank line)."""
    if interactive:
        print(f"Talking to {bot.model_dir}; {COMMANDS}.", file=out)
        print("you> ", end="", file=out, flush=True)
    for line in lines:
        text = line.strip()
        if text == "/quit":
            break
        if text == "/reset":
            bot.reset()
            print("(conversation forgotten)", file=out, flush=True)
        elif text.split(" ", 1)[0] in ("/as", "/you"):
            print(_switch(bot, text), file=out, flush=True)
        elif interactive and text:
            print("bot> ", end="", file=out, flush=True)
            bot.reply(text, show=out)
            print(file=out)
        elif not interactive:
            print(bot.reply(text) if text else "", file=out, flush=True)
        if interactive:
            print("you> ", end="", file=out, flush=True)
    if interactive:
        print(file=out)


def _switch(bot: Bot, command: str) -> str:
    """/as NAME or /you NAME (no name: nobody); what it did, or why not, as one line."""
    verb, _, name = command.partition(" ")
    try:
        (bot.cast_as if verb == "/as" else bot.call_user)(name)
    except ConfigError as exc:
        return f"({exc})"
    if verb == "/as":
        return f"(the bot now speaks as {bot.speaker})" if bot.speaker else "(the bot now speaks unnamed)"
    return f"(you now speak as {bot.user})" if bot.user else "(you now speak unnamed)"


def chat(model_dir: Path, cfg: ChatConfig, prompts: Path | None = None, speaker: str = "", user: str = "") -> None:
    """`authorbot chat`: a transcript of test prompts, else a conversation on stdin and stdout."""
    bot = Bot(model_dir, cfg, speaker, user)
    if prompts is not None:
        print(transcript_markdown(bot, read_prompts(prompts), model_dir))
    else:
        converse(bot, sys.stdin, sys.stdout, sys.stdin.isatty())


@task(
    name="write-transcript",
    cache_policy=INPUTS + ModuleSource(modules=("tasks.decode", "tasks.examples")),
    persist_result=True,
)
def transcript_task(
    weights: StoredFile, cfg: ChatConfig, prompts: tuple[str, ...], speaker: str = "", user: str = ""
) -> str:
    """The bot's replies to the test prompts as Markdown; cached by the weights' bytes, the prompts and
    the settings (the replies are seeded, so the same inputs give the same transcript)."""
    model_dir = weights.path.parent
    return transcript_markdown(Bot(model_dir, cfg, speaker, user), prompts, model_dir)
