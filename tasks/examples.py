"""Training examples: conversations laid out as GPT-2 reads them, packed into rows.

A conversation's turns are joined by <|endoftext|> (as DialoGPT does), each turn starting with
its speaker's name when the text says who speaks (`Elizabeth Bennet: ...`; names are plain text,
so any GPT-2 tokenizer reads them). The loss covers every turn and each turn's end token (DialoGPT
too learns from whole sessions), so each utterance is computed and learned from once and the bot
learns where its turn ends; a speaker's name is context, never a target. mask_prompt leaves out
the first turn, which has no context in its conversation. A conversation longer than a row goes on
in a further example that starts with the end of the previous one as context. The older layout,
one exchange per example (`prompt <|endoftext|> response <|endoftext|>`), is
`Layout(history=False, names=False)`.

Whole examples are laid end to end in rows of max_length tokens (GPT-2 was pretrained on
documents run together the same way), so almost no compute goes to padding. The padding that is
left is weighted out of the loss by position, never by token id: padding and the real end-of-turn
token are the same id.
"""

import dataclasses
import difflib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.errors import ConfigError, InvalidDataError

MIN_CONTEXT = 8  # tokens of a prompt kept at least; a turn that leaves less room is left out
LAYOUT_FILE = "authorbot.json"  # beside a saved model: how its examples were laid out, and its cast
TRAINING_TEXT = "training_text.npy"  # beside a saved model: its training turns' tokens (text_stream)


@dataclasses.dataclass(frozen=True)
class Turn:
    speaker: str  # a CHARACTERS name, or "" when the text does not say
    text: str


@dataclasses.dataclass(frozen=True)
class Conversation:
    book_id: int
    conversation_id: int
    turns: list[Turn]


@dataclasses.dataclass(frozen=True)
class Layout:
    """How turns become tokens; saved beside the model (LAYOUT_FILE) so chat and eval read it back."""

    history: bool = True  # earlier turns as context (conversations); False: the prompt alone (single exchanges)
    names: bool = True  # a turn whose speaker is known starts with "Name:"
    character: str = ""  # trained as this one character (--character): their turns alone were targets
    characters: dict[str, int] = dataclasses.field(default_factory=dict)  # trained-with cast: lines per name
    max_length: int = 0  # tokens per training row (0: the model's context)

    def save(self, model_dir: Path) -> None:
        (model_dir / LAYOUT_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=1), "utf-8")

    def speaker_name(self, flag: str, name: str, model_dir: Path, known_only: bool = True) -> str:
        """A name to write turns under: one of the cast (case aside), or anyone's when not known_only;
        ConfigError for a model trained without names, or a cast name it does not know."""
        name = " ".join(name.split())
        if not name:
            return ""
        if not self.names:
            raise ConfigError(
                f"{flag} {name!r}: {model_dir} was trained without speakers' names; "
                "train it again with --examples conversations"
            )
        if known_only or name.lower() in {c.lower() for c in self.characters}:
            return check_name(flag, name, self.characters)
        return name

    @classmethod
    def of(cls, model_dir: Path) -> "Layout":
        """The layout a model was trained with; a model from elsewhere (or before names) gets the unnamed one."""
        path = Path(model_dir) / LAYOUT_FILE
        if not path.is_file():
            return cls(history=True, names=False)
        return cls(**json.loads(path.read_text("utf-8")))


@dataclasses.dataclass(frozen=True)
class Example:
    ids: list[int]  # turns, each ended by <|endoftext|>
    targets: list[float]  # 1.0 where the token is predicted in the loss (a target turn and its end)


@dataclasses.dataclass(frozen=True)
class Rows:
    ids: np.ndarray  # [rows, max_length] int32; padding is <|endoftext|>
    targets: np.ndarray  # [rows, max_length] float32; 0 at padding and at each row's first token
    lengths: np.ndarray  # [rows] tokens that are not padding


def conversations_from_pairs(data: pd.DataFrame) -> list[Conversation]:
    """The conversations that DATASET (or PAIRS) rows come from, in reading order. Pairs chain:
    one pair's response is the next one's prompt. Where a speaker went on (an utterance that is
    no reply, so no pair joins it to the one before), the two are one turn; where a pair is
    missing (validation dropped it), the conversation is cut there."""
    conversations = []
    ordered = data.sort_values(["book_id", "conversation_id", "prompt_index"], kind="stable")
    for (book_id, conversation_id), rows in ordered.groupby(["book_id", "conversation_id"], sort=False):
        turns: list[Turn] = []
        last = None  # the utterance index of the latest turn's end
        for r in rows.itertuples():
            prompt = Turn(r.prompt_speaker, r.prompt)
            if last is not None and r.prompt_index == last:
                pass  # the chain goes on: this prompt is the last response
            elif last is not None and r.prompt_index == last + 1 and _one_speaker(turns[-1], prompt):
                turns[-1] = Turn(turns[-1].speaker or prompt.speaker, f"{turns[-1].text} {prompt.text}")
            else:
                if len(turns) > 1:
                    conversations.append(Conversation(int(book_id), int(conversation_id), turns))
                turns = [prompt]
            turns.append(Turn(r.response_speaker, r.response))
            last = r.prompt_index + 1
        if len(turns) > 1:
            conversations.append(Conversation(int(book_id), int(conversation_id), turns))
    return conversations


def _one_speaker(a: Turn, b: Turn) -> bool:
    return not (a.speaker and b.speaker and a.speaker != b.speaker)


def encode_turns(turns: Sequence[Turn], tokenizer, names: bool) -> list[tuple[list[int], list[int]]]:
    """(name tokens, text tokens and the end token) of each turn: the one layout training, chat and eval share."""
    eot = tokenizer.eos_token_id
    named = [names and bool(t.speaker) for t in turns]
    texts = tokenizer([(" " if n else "") + t.text for t, n in zip(turns, named)])["input_ids"] if turns else []
    prefixes = {t.speaker: tokenizer.encode(f"{t.speaker}:") for t, n in zip(turns, named) if n}
    return [(prefixes[t.speaker] if n else [], ids + [eot]) for t, n, ids in zip(turns, named, texts)]


def text_stream(conversations: Sequence[Conversation], tokenizer) -> np.ndarray:
    """Every turn's text and end token, unnamed, one after another: what an n-gram baseline counts."""
    turns = [t for c in conversations for t in c.turns]
    stream = [tokenizer.eos_token_id] + [i for _, ids in encode_turns(turns, tokenizer, names=False) for i in ids]
    return np.array(stream, np.uint16 if len(tokenizer) <= 1 << 16 else np.int32)


def encode_conversations(
    conversations: Sequence[Conversation], tokenizer, max_length: int, layout: Layout, mask_prompt: bool = False
) -> tuple[list[Example], int]:
    """Examples of the conversations, and how many target turns were left out for not fitting."""
    examples, dropped = [], 0
    for conversation in conversations:
        encoded = encode_turns(conversation.turns, tokenizer, layout.names)
        weights = [
            float(t.speaker == layout.character) if layout.character else float(i > 0 or not mask_prompt)
            for i, t in enumerate(conversation.turns)
        ]
        if layout.history:
            made, lost = _with_history(encoded, weights, max_length)
        else:
            made, lost = _one_exchange_each(
                encoded, weights, max_length, float(not mask_prompt and not layout.character)
            )
        examples += made
        dropped += lost
    return examples, dropped


def _one_exchange_each(encoded, weights, max_length: int, prompt_weight: float) -> tuple[list[Example], int]:
    """prompt <|endoftext|> response <|endoftext|> for each target turn; a long prompt keeps its end."""
    examples, dropped = [], 0
    for i in range(1, len(encoded)):
        if not weights[i]:
            continue
        context = encoded[i - 1][0] + encoded[i - 1][1]
        name, body = encoded[i]
        room = max_length - len(name) - len(body)
        if room < min(len(context), MIN_CONTEXT):
            dropped += 1
            continue
        context = context[-room:]
        examples.append(
            Example(context + name + body, [prompt_weight] * len(context) + [0.0] * len(name) + [1.0] * len(body))
        )
    return examples, dropped


def _with_history(encoded, weights, max_length: int) -> tuple[list[Example], int]:
    """As many turns per example as fit; a further example starts with the last turns as context."""
    examples, dropped = [], 0
    turns: list[tuple[list[int], list[float]]] = []  # the current example's turns: ids, targets

    def flush() -> None:
        if any(w for _, targets in turns for w in targets):
            examples.append(Example([t for ids, _ in turns for t in ids], [w for _, ts in turns for w in ts]))

    for (name, body), weight in zip(encoded, weights):
        ids, targets = name + body, [0.0] * len(name) + [weight] * len(body)
        if len(ids) + MIN_CONTEXT > max_length:  # a turn that cannot fit with any context
            dropped += int(weight > 0)
            flush()
            turns = []
            continue
        if sum(len(t[0]) for t in turns) + len(ids) > max_length:
            flush()
            room = min(max_length - len(ids), max_length // 2)  # the context carried over
            kept: list[tuple[list[int], list[float]]] = []
            for old_ids, _ in reversed(turns):
                if sum(len(k[0]) for k in kept) + len(old_ids) > room:
                    if not kept:  # keep the end of the last turn at least
                        kept = [(old_ids[-room:], [0.0] * room)]
                    break
                kept.insert(0, (old_ids, [0.0] * len(old_ids)))
            turns = kept
        turns.append((ids, targets))
    flush()
    return examples, dropped


def pack_rows(examples: Sequence[Example], max_length: int, pad_id: int) -> Rows:
    """Whole examples packed into rows of max_length tokens: each goes into the open row it fills
    best (best fit), so rows end up nearly full whatever the order of lengths."""
    rows: list[tuple[list[int], list[float]]] = []
    by_room: list[list[int]] = [[] for _ in range(max_length + 1)]  # room left -> rows with that room
    for ex in examples:
        need = len(ex.ids)
        room = next((r for r in range(need, max_length + 1) if by_room[r]), None)
        if room is None:
            rows.append(([], []))
            row, room = len(rows) - 1, max_length
        else:
            row = by_room[room].pop()
        rows[row][0].extend(ex.ids)
        rows[row][1].extend(ex.targets)
        by_room[room - need].append(row)
    ids = np.full((len(rows), max_length), pad_id, np.int32)
    targets = np.zeros((len(rows), max_length), np.float32)
    for i, (row_ids, row_targets) in enumerate(rows):
        ids[i, : len(row_ids)] = row_ids
        targets[i, : len(row_targets)] = row_targets
    targets[:, 0] = 0.0  # nothing precedes a row's first token
    return Rows(ids, targets, np.array([len(r[0]) for r in rows], np.int64))


def epoch_rows(examples: Sequence[Example], epoch: int, seed: int, max_length: int, pad_id: int) -> Rows:
    """This epoch's shuffled, packed rows: the same for the same seed and epoch, so a resumed run
    skips exactly the batches it had already trained on."""
    order = np.random.default_rng([seed, epoch]).permutation(len(examples))
    return pack_rows([examples[i] for i in order], max_length, pad_id)


def batches(rows: Rows, batch_size: int, pad_id: int):
    """(ids, targets, real tokens) of batch_size rows each; the last batch is filled out with empty
    rows so that every step has one shape (one XLA compilation)."""
    for start in range(0, len(rows.ids), batch_size):
        ids, targets = rows.ids[start : start + batch_size], rows.targets[start : start + batch_size]
        short = batch_size - len(ids)
        if short:
            ids = np.concatenate([ids, np.full((short, ids.shape[1]), pad_id, np.int32)])
            targets = np.concatenate([targets, np.zeros((short, targets.shape[1]), np.float32)])
        yield ids, targets, int(rows.lengths[start : start + batch_size].sum())


def encode_prose(texts: Sequence[str], tokenizer, max_length: int) -> list[Example]:
    """Books' whole text as plain language modelling: paragraphs run together, cut into rows of max_length."""
    stream: list[int] = []
    newlines = tokenizer.encode("\n\n")
    for text in texts:
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        for ids in tokenizer([" ".join(p.split()) for p in paragraphs])["input_ids"]:
            stream += ids + newlines
        stream.append(tokenizer.eos_token_id)  # between books, as between GPT-2's documents
    return [
        Example(stream[i : i + max_length], [1.0] * len(stream[i : i + max_length]))
        for i in range(0, len(stream) - MIN_CONTEXT, max_length)
    ]


def check_name(flag: str, name: str, known) -> str:
    """The known name meant by name (case aside); else a ConfigError listing the closest ones."""
    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.3)
    close += [k for k in by_lower if name.lower() in k and k not in close]  # "Darcy" -> "mr. darcy"
    hint = ", ".join(repr(by_lower[c]) for c in close[:5]) or ", ".join(repr(k) for k in list(known)[:5])
    raise ConfigError(f"{flag} {name!r}: not in the cast; the closest names are {hint}")


def sample_pairs(data: pd.DataFrame, max_pairs: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation): all pairs, or whole conversations holding about max_pairs training pairs
    and validation in proportion."""
    train, val = data[data.split == "train"], data[data.split == "validation"]
    if max_pairs and max_pairs < len(train):
        val = _whole_conversations(val, max(1, round(len(val) * max_pairs / len(train))), seed)
        train = _whole_conversations(train, max_pairs, seed)
    if train.empty or val.empty:
        raise InvalidDataError(
            f"{len(train)} training and {len(val)} validation pairs: both are needed; "
            "use more books or a larger --val-fraction, or other --val-books"
        )
    return train, val


def _whole_conversations(frame: pd.DataFrame, pairs: int, seed: int) -> pd.DataFrame:
    """Conversations drawn at random, whole, until they hold about this many pairs."""
    keys = frame.set_index(["book_id", "conversation_id"]).index
    sizes = keys.value_counts().sample(frac=1.0, random_state=seed)
    chosen = sizes.index[: max(1, int((sizes.cumsum() <= pairs).sum()))]
    return frame[keys.isin(chosen)]
