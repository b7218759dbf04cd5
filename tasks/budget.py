"""A training that fits a time budget: measure this machine's step time, then train on as many pairs as fit.

A newcomer on a laptop CPU who fine-tunes the 124M GPT-2 on a whole author would wait for hours.
With a budget (--time-budget MINUTES, 45 by default on a CPU), a few real training steps are timed
first (on the model and optimizer as they are, which are then put back exactly as they were), the
whole training is estimated from them, and when it would take longer, a seeded sample of the
training pairs (validation shrunk in proportion) that fits is taken instead, and said so. The plan
is written beside the checkpoints, so a resumed run keeps it rather than measuring again.
"""

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import tensorflow as tf

log = logging.getLogger(__name__)

PROBE_STEPS = 3  # timed steps, after one that compiles
EVAL_SHARE = 0.35  # an evaluation step costs about this much of a training step (no backward pass)
MARGIN = 0.9  # aim under the budget: the estimate is of steps, not of saving the model


@dataclass(frozen=True)
class Plan:
    pairs: int  # training pairs to use
    all_pairs: int  # training pairs there are
    step_seconds: float  # measured
    estimate_seconds: float  # the training planned, steps and validation
    full_seconds: float  # the training of every pair, estimated the same way

    def share_of(self, rows: int) -> int:
        """The same share of other rows (the books' text for the prose epochs) as of the pairs."""
        return rows if self.pairs == self.all_pairs else max(1, math.floor(rows * self.pairs / self.all_pairs))


def time_steps(step, ids, targets, steps: int = PROBE_STEPS) -> float:
    """Seconds per step over batches ids[i], targets[i], after one untimed step (tracing, XLA compilation)."""
    step(ids[0], targets[0])
    start = time.perf_counter()
    for i in range(steps):
        step(ids[(i + 1) % len(ids)], targets[(i + 1) % len(ids)])
    return (time.perf_counter() - start) / steps


def measure_step_seconds(step, ids, targets, model, optimizer) -> float:
    """time_steps on the real model and optimizer, which are then restored to exactly where they were."""
    saved = [(v, tf.identity(v)) for v in [*model.weights, *optimizer.variables]]
    try:
        return time_steps(step, ids, targets)
    finally:
        for variable, value in saved:
            variable.assign(value)


def plan_training(
    all_pairs: int,
    steps_per_epoch: int,
    val_steps: int,
    epochs: int,
    step_seconds: float,
    budget_minutes: float,
    prose_steps: int = 0,
    prose_epochs: int = 0,
) -> Plan:
    """The pairs that fit the budget (all of them when they do), with the estimates either way. The
    prose epochs (prose_steps each) shrink in the same proportion as the pairs."""
    per_epoch = step_seconds * (steps_per_epoch + EVAL_SHARE * val_steps)
    full = per_epoch * epochs + step_seconds * (prose_steps + EVAL_SHARE * val_steps) * prose_epochs
    budget = budget_minutes * 60 * MARGIN
    pairs = all_pairs if full <= budget else max(1, math.floor(all_pairs * budget / full))
    return Plan(pairs, all_pairs, step_seconds, full * pairs / all_pairs, full)


def read_plan(path: Path) -> Plan | None:
    """The plan a run made before it was interrupted, if any."""
    return Plan(**json.loads(path.read_text("utf-8"))) if path.is_file() else None


def write_plan(path: Path, plan: Plan) -> None:
    path.write_text(json.dumps(asdict(plan)), "utf-8")


def announce(plan: Plan, budget_minutes: float, epochs: int, tokens_per_sec: float) -> None:
    """One line before training: what it trains on, how long it expects, and how to train on everything."""
    if plan.pairs == plan.all_pairs:
        log.info(
            "time budget %g min: %d epochs of all %d pairs fit (about %.1f min at %.0f tokens/s)",
            budget_minutes,
            epochs,
            plan.all_pairs,
            plan.estimate_seconds / 60,
            tokens_per_sec,
        )
        return
    log.warning(
        "time budget %g min: %d epochs of all %d pairs would take about %.1f min here (%.0f tokens/s); "
        "training on %d of them instead, about %.1f min; --time-budget 0 trains on every pair",
        budget_minutes,
        epochs,
        plan.all_pairs,
        plan.full_seconds / 60,
        tokens_per_sec,
        plan.pairs,
        plan.estimate_seconds / 60,
    )
