"""Talk to a trained bot: replies that end with the bot's turn, history that fits the context,
a terminal loop, and transcripts of replies to test prompts.

A conversation is laid out as in training: turns joined by <|endoftext|>, the last one ended by
it too, so the model's next turn is the bot's.
"""

import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

import tensorflow as tf
from prefect import task
from transformers.generation.tf_logits_process import TFLogitsProcessorList, TFRepetitionPenaltyLogitsProcessor

from tasks.config import ChatConfig, read_prompts
from tasks.model import check_model_dir, load_model, load_tokenizer

log = logging.getLogger(__name__)

COMMANDS = "/reset forgets the conversation, /quit (or Ctrl-D) ends it"


class Bot:
    """A GPT-2 model and tokenizer, the conversation so far, and how to sample replies."""

    def __init__(self, model_dir: Path, cfg: ChatConfig) -> None:
        check_model_dir(model_dir)  # before the tokenizer, whose error would be less to the point
        self.tokenizer = load_tokenizer(str(model_dir))
        self.model = load_model(str(model_dir), self.tokenizer)
        self.cfg, self.model_dir = cfg, model_dir
        self.history: list[str] = []
        self.turns = 0  # replies so far: varies the sampling seed from turn to turn, reproducibly
        self._generate = tf.function(self.model.generate, jit_compile=True)
        eot = self.tokenizer.eos_token_id
        self._penalty = TFLogitsProcessorList([TurnRepetitionPenalty(cfg.repetition_penalty, eot)])

    def reset(self) -> None:
        self.history.clear()

    def context(self) -> list[int]:
        """The latest turns that fit in the context beside a full-length reply, each ended by <|endoftext|>."""
        eot = self.tokenizer.eos_token_id
        budget = self.model.config.n_positions - self.cfg.max_new_tokens
        ids: list[int] = []
        for turn in reversed(self.history):
            turn_ids = self.tokenizer.encode(turn) + [eot]
            if len(ids) + len(turn_ids) > budget:
                if not ids:  # one turn longer than the context: keep its end
                    ids = turn_ids[-budget:]
                break
            ids = turn_ids + ids
        return ids

    def generate(self, context: list[int]) -> list[int]:
        """Sampled token ids after the context, up to (not including) the end of the bot's turn.
        XLA-compiled, 4-5x faster than eager on a CPU; contexts are left-padded to 64, 128, 256 ...
        tokens, so that a whole conversation compiles a few shapes, not one per length."""
        c, eot = self.cfg, self.tokenizer.eos_token_id
        width = min(max(64, 1 << (len(context) - 1).bit_length()), self.model.config.n_positions - c.max_new_tokens)
        pad = width - len(context)
        out = self._generate(
            tf.constant([[eot] * pad + context]),
            attention_mask=tf.constant([[0] * pad + [1] * len(context)]),
            do_sample=True,
            temperature=c.temperature,
            top_k=c.top_k,
            top_p=c.top_p,
            logits_processor=self._penalty,
            max_new_tokens=c.max_new_tokens,
            eos_token_id=eot,
            pad_token_id=eot,
            seed=tf.constant([c.seed, self.turns]),  # a tensor: a new Python value would recompile
        )
        self.turns += 1
        new = out[0, width:].numpy().tolist()
        return new[: new.index(eot)] if eot in new else new

    def reply(self, text: str) -> str:
        """The bot's answer to one line, added to the history with it."""
        self.history.append(text)
        answer = " ".join(self.tokenizer.decode(self.generate(self.context())).split())  # one line
        self.history.append(answer)
        return answer


class TurnRepetitionPenalty(TFRepetitionPenaltyLogitsProcessor):
    """Hugging Face's repetition penalty, but never on <|endoftext|>: it separates the turns of
    every context, so penalising it would keep the bot from ending its turn."""

    def __init__(self, penalty: float, eot: int) -> None:
        super().__init__(penalty)
        self.eot = eot

    def __call__(self, input_ids: tf.Tensor, scores: tf.Tensor, cur_len: int) -> tf.Tensor:
        penalised = super().__call__(input_ids, scores, cur_len)
        is_eot = tf.range(scores.shape[-1]) == self.eot
        return tf.where(is_eot[None, :], scores, penalised)


def transcript_markdown(bot: Bot, prompts: Sequence[str], model_dir: Path) -> str:
    """Each prompt on its own (fresh history) and the bot's reply, with the settings used."""
    settings = ", ".join(f"{k} {v}" for k, v in asdict(bot.cfg).items())
    lines = [f"# Transcript of `{model_dir}`", "", f"Sampling: {settings}.", ""]
    for prompt in prompts:
        bot.reset()
        lines += [f"**You:** {prompt}", "", f"**Bot:** {bot.reply(prompt)}", ""]
    return "\n".join(lines)


def converse(bot: Bot, lines: Iterable[str], out: TextIO, interactive: bool) -> None:
    """Answer each line. Interactive: prompts and commands. Piped: exactly one output line per
    input line, so scripts can read replies in step (a blank line gets a blank line)."""
    if interactive:
        print(f"Talking to {bot.model_dir}; {COMMANDS}.", file=out)
        print("you> ", end="", file=out, flush=True)
    for line in lines:
        text = line.strip()
        if text == "/quit":
            break
        if text == "/reset":
            bot.reset()
            answer = "(conversation forgotten)"
        else:
            answer = bot.reply(text) if text else ""
        if interactive:
            if text:
                print(f"bot> {answer}", file=out)
            print("you> ", end="", file=out, flush=True)
        else:
            print(answer, file=out, flush=True)
    if interactive:
        print(file=out)


def chat(model_dir: Path, cfg: ChatConfig, prompts: Path | None = None) -> None:
    """`authorbot chat`: a transcript of test prompts, else a conversation on stdin and stdout."""
    bot = Bot(model_dir, cfg)
    if prompts is not None:
        print(transcript_markdown(bot, read_prompts(prompts), model_dir))
    else:
        converse(bot, sys.stdin, sys.stdout, sys.stdin.isatty())


@task(name="write-transcript")
def write_transcript_task(model_dir: Path, cfg: ChatConfig, prompts: Path | None, out_path: Path) -> str:
    """Write the bot's replies to the test prompts as Markdown; returns the Markdown."""
    questions = read_prompts(prompts)
    markdown = transcript_markdown(Bot(model_dir, cfg), questions, model_dir)
    out_path.write_text(markdown, "utf-8")
    log.info("replies to %d test prompts written to %s", len(questions), out_path)
    return markdown
