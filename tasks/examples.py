"""Training examples: pairs encoded as `prompt <|endoftext|> response <|endoftext|>` and packed into rows.

The loss covers the response and its end token, so the bot learns where its turn ends. Whole
examples are laid end to end in rows of max_length tokens (GPT-2 was pretrained on documents run
together the same way), so almost no compute goes to padding. The padding that is left is
weighted out of the loss by position, never by token id: padding and the real end-of-turn token
are the same id.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tasks.errors import InvalidDataError


@dataclasses.dataclass(frozen=True)
class Example:
    ids: list[int]  # prompt <|endoftext|> response <|endoftext|>
    targets: list[float]  # 1.0 where the token is predicted in the loss (the response and its end)


@dataclasses.dataclass(frozen=True)
class Rows:
    ids: np.ndarray  # [rows, max_length] int32; padding is <|endoftext|>
    targets: np.ndarray  # [rows, max_length] float32; 0 at padding and at each row's first token
    lengths: np.ndarray  # [rows] tokens that are not padding


def encode_pairs(
    prompts: Sequence[str], responses: Sequence[str], tokenizer, max_length: int, mask_prompt: bool = True
) -> tuple[list[Example], int]:
    """Encoded examples, and how many were dropped because the response alone does not fit."""
    eot = tokenizer.eos_token_id
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    response_ids = tokenizer(list(responses))["input_ids"]
    examples, dropped = [], 0
    for p, r in zip(prompt_ids, response_ids):
        room = max_length - len(r) - 2  # tokens left for the prompt
        if room < min(len(p), 8):  # keep at least the prompt's last few words
            dropped += 1
            continue
        p = p[-room:]  # a long prompt keeps its end, which the response answers
        ids = p + [eot] + r + [eot]
        prompt_weight = 0.0 if mask_prompt else 1.0
        examples.append(Example(ids, [prompt_weight] * (len(p) + 1) + [1.0] * (len(r) + 1)))
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


def sample_pairs(data: pd.DataFrame, max_pairs: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation): all pairs, or max_pairs training pairs and validation in proportion."""
    train, val = data[data.split == "train"], data[data.split == "validation"]
    if max_pairs and max_pairs < len(train):
        val = val.sample(n=max(1, round(len(val) * max_pairs / len(train))), random_state=seed)
        train = train.sample(n=max_pairs, random_state=seed)
    if train.empty or val.empty:
        raise InvalidDataError(
            f"{len(train)} training and {len(val)} validation pairs: both are needed; "
            "use more books or a larger --val-fraction"
        )
    return train, val
