"""Fine-tune GPT-2 in TensorFlow on a checked dialogue dataset, resumable from any interruption.

Optionally first on the books' whole text (--prose-epochs: the author's language from all of the
text, narration included), then on the conversations, laid out as tasks/examples.py says: turns
joined by <|endoftext|>, speakers' names where known, the loss on every turn.

Checkpoints (weights, optimizer, and where in which epoch) are saved every checkpoint_every steps
and at every epoch's end, so a run killed at any moment resumes with the same command; the
epochs' batch orders are fixed by the seed, so the resumed run skips exactly what was done.
"""

import dataclasses
import itertools
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras
from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import INPUTS
from tqdm import tqdm

from tasks.budget import PROBE_STEPS, announce, measure_step_seconds, plan_training, read_plan, write_plan
from tasks.cache import ModuleSource
from tasks.config import TrainConfig
from tasks.errors import InvalidDataError
from tasks.examples import (
    TRAINING_TEXT,
    Layout,
    Rows,
    batches,
    check_name,
    conversations_from_pairs,
    encode_conversations,
    encode_prose,
    epoch_rows,
    pack_rows,
    sample_pairs,
    text_stream,
)
from tasks.model import load_model, load_tokenizer, parameter_count
from tasks.runs import append_metrics, claim_checkpoints, plot_losses, read_metrics, run_fingerprint, save_model_dir
from tasks.tables import BOOKS, DATASET, StoredFile, file_sha256, read_table, stored_file

log = logging.getLogger(__name__)
CPU_WARNING_PARAMETERS = 50_000_000  # above this, training on a CPU takes hours: say so first
Progress = Callable[[float], None]
PROSE_ORDERS = 1000  # the prose epochs' shuffles are seeded apart from the dialogue epochs' ones


def token_loss(model, ids: tf.Tensor, targets: tf.Tensor, training: bool, only_targets: bool = False):
    """Summed next-token cross-entropy over the target positions, and the number of them.
    only_targets projects onto the vocabulary at target positions only, skipping the prompts' and
    padding's share of the biggest matmul; its shapes vary, so not under XLA."""
    hidden = model.transformer(input_ids=ids, training=training)[0][:, :-1]
    labels, weights = ids[:, 1:], targets[:, 1:]
    if only_targets:
        where = tf.where(weights > 0)
        hidden, labels, weights = (tf.gather_nd(t, where) for t in (hidden, labels, weights))
    embeddings = tf.cast(model.transformer.wte.embeddings, hidden.dtype)  # GPT-2's output layer is its input one
    logits = tf.matmul(hidden, embeddings, transpose_b=True)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))
    return tf.reduce_sum(losses * weights), tf.reduce_sum(weights)


def training_flops_per_token(config, seq_len: int) -> float:
    """About 6 x parameters, plus attention over seq_len tokens (nanoGPT's estimate)."""
    c = config
    parameters = 12 * c.n_layer * c.n_embd**2 + (c.vocab_size + c.n_positions) * c.n_embd
    return 6 * parameters + 12 * c.n_layer * c.n_embd * seq_len


def matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a plain float32 TensorFlow matmul on this machine: the ceiling to compare against."""
    a = tf.random.normal((n, n))
    tf.linalg.matmul(a, a).numpy()  # warm up
    start = time.perf_counter()
    for _ in range(repeats):
        out = tf.linalg.matmul(a, a)
    out.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def on_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def cpu_has_bf16() -> bool:
    """True on CPUs with bfloat16 matrix units (Intel AMX, AVX512-BF16), where oneDNN runs
    bfloat16 matmuls several times faster than float32 (benchmarks/train_throughput.py)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def precision_policy(mixed_precision: bool | None) -> str:
    """The Keras dtype policy: float16 compute on a GPU, bfloat16 on a CPU, else float32.
    None (the default) means mixed precision wherever the hardware has it."""
    if mixed_precision is False or (mixed_precision is None and not (on_gpu() or cpu_has_bf16())):
        return "float32"
    return "mixed_float16" if on_gpu() else "mixed_bfloat16"


class Steps:
    """The compiled training and evaluation steps, on one device or mirrored over several GPUs."""

    def __init__(self, model, optimizer, strategy: tf.distribute.Strategy, xla: bool, loss_scale: bool) -> None:
        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        variables = model.trainable_variables

        @tf.function(jit_compile=xla)
        def gradients(ids, targets, total):
            with tf.GradientTape() as tape:
                loss_sum, _ = token_loss(model, ids, targets, training=True, only_targets=not xla)
                loss = loss_sum / total  # each replica's share of the global mean
                scaled = optimizer.get_scaled_loss(loss) if loss_scale else loss
            grads = tape.gradient(scaled, variables)
            return loss_sum, optimizer.get_unscaled_gradients(grads) if loss_scale else grads

        def train_replica(ids, targets, total):
            loss_sum, grads = gradients(ids, targets, total)
            optimizer.apply_gradients(zip(grads, variables))
            return loss_sum

        self._train = tf.function(lambda ids, targets, total: strategy.run(train_replica, (ids, targets, total)))

        @tf.function(jit_compile=xla)
        def evaluate(ids, targets):
            return token_loss(model, ids, targets, training=False, only_targets=not xla)

        self._eval = tf.function(lambda ids, targets: strategy.run(evaluate, (ids, targets)))

    def _split(self, array: np.ndarray):
        """Each replica's slice of a batch."""
        n = self.strategy.num_replicas_in_sync
        return self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(np.array_split(array, n)[ctx.replica_id_in_sync_group])
        )

    def train(self, ids: np.ndarray, targets: np.ndarray) -> float:
        """One optimizer step; returns the summed loss over the batch's targets."""
        total = tf.constant(max(float(targets[:, 1:].sum()), 1.0))
        out = self._train(self._split(ids), self._split(targets), total)
        return float(self.strategy.reduce("SUM", out, axis=None))

    def evaluate(self, rows: Rows, batch_size: int, pad_id: int) -> float:
        """Mean loss per target token over some rows."""
        loss_sum = count = 0.0
        for ids, targets, _ in batches(rows, batch_size, pad_id):
            loss, n = self._eval(self._split(ids), self._split(targets))
            loss_sum += float(self.strategy.reduce("SUM", loss, axis=None))
            count += float(self.strategy.reduce("SUM", n, axis=None))
        return loss_sum / max(count, 1.0)


def _new_state() -> dict[str, tf.Variable]:
    """Progress that the checkpoint carries with the weights: where in which epoch, and the
    epoch's running sums, so a resumed epoch reports the same numbers as an unbroken one."""
    ints = {k: tf.Variable(0, dtype=tf.int64) for k in ("epoch", "step", "global_step")}
    sums = {k: tf.Variable(0.0, dtype=tf.float64) for k in ("loss_sum", "targets", "real", "positions", "seconds")}
    return ints | sums


def _stale(history: list[dict], patience: int) -> bool:
    """True when the last `patience` epochs did not beat the best validation loss before them."""
    losses = [m["val_loss"] for m in history]
    return len(losses) > patience and min(losses[-patience:]) >= min(losses[:-patience])


def warn_if_slow(model, tokens: int, epochs: int, seq_len: int) -> None:
    """On a CPU, a big model takes hours: say how long before starting."""
    if on_gpu() or parameter_count(model) < CPU_WARNING_PARAMETERS:
        return
    # benchmarks/train_throughput.py: GPT-2 124M trains at about half a float32 matmul's FLOP/s.
    seconds = tokens * epochs * training_flops_per_token(model.config, seq_len) / (0.5 * matmul_flops())
    log.warning(
        "training a %.0fM-parameter model on a CPU, no GPU found: about %.1f hours for %d epochs of %d tokens "
        "(estimated); --max-pairs N trains on a sample",
        parameter_count(model) / 1e6,
        seconds / 3600,
        epochs,
        tokens,
    )


class StepProgress:
    """Training progress: a bar with ETA on a terminal, a log line every tenth elsewhere (worker
    logs, the Prefect UI), and a callback for the Prefect progress artifact."""

    def __init__(self, total: int, done: int, callback: Progress) -> None:
        self.bar = tqdm(total=total, initial=done, unit="step", file=sys.stderr, dynamic_ncols=True, disable=None)
        self.total, self.done, self.callback = total, done, callback
        self.started, self.start_done = time.monotonic(), done

    def step(self, loss: float) -> None:
        self.done += 1
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        fraction = min(self.done / self.total, 1.0)
        if self.bar.disable and int(10 * fraction) > int(10 * (self.done - 1) / self.total):
            left = (time.monotonic() - self.started) / (self.done - self.start_done) * (self.total - self.done)
            log.info(
                "training %.0f%%: step %d of %d, loss %.3f, about %.0f s left",
                100 * fraction,
                self.done,
                self.total,
                loss,
                left,
            )
        self.callback(fraction)


def _train_epoch(steps: Steps, rows: Rows, state: dict, manager, cfg: TrainConfig, pad_id: int, bar) -> None:
    """Train on this epoch's batches from where the checkpoint left off, checkpointing as it goes."""
    for n, (ids, targets, real) in enumerate(batches(rows, cfg.batch_size, pad_id)):
        if n < int(state["step"]):
            continue  # trained before the interruption
        start = time.perf_counter()
        loss_sum = steps.train(ids, targets)
        count = float(targets[:, 1:].sum())
        for key, value in [
            ("seconds", time.perf_counter() - start),
            ("loss_sum", loss_sum),
            ("targets", count),
            ("real", real),
            ("positions", ids.size),
        ]:
            state[key].assign_add(value)
        state["step"].assign_add(1)
        state["global_step"].assign_add(1)
        if int(state["global_step"]) % cfg.checkpoint_every == 0:
            manager.save()
        bar.step(loss_sum / max(count, 1.0))


def _end_epoch(epoch: int, steps: Steps, val_rows: Rows, state: dict, cfg: TrainConfig, pad_id: int) -> dict:
    """The epoch's metrics line; resets the running sums for the next epoch."""
    val_loss = steps.evaluate(val_rows, cfg.batch_size, pad_id)
    s = {k: float(v) for k, v in state.items()}
    record = {
        "epoch": epoch,
        "step": int(s["global_step"]),
        "train_loss": s["loss_sum"] / max(s["targets"], 1.0),
        "val_loss": val_loss,
        "val_perplexity": math.exp(min(val_loss, 50.0)),
        "tokens_per_sec": s["real"] / max(s["seconds"], 1e-9),
        "useful_token_share": s["real"] / max(s["positions"], 1.0),
        "train_seconds": s["seconds"],
    }
    for key in ("loss_sum", "targets", "real", "positions", "seconds", "step"):
        state[key].assign(0)
    state["epoch"].assign(epoch)
    return record


def layout_of(cfg: TrainConfig, data) -> Layout:
    """How this training lays out its examples, with the cast it trains on (lines per speaker)."""
    lines = data[data.split == "train"].response_speaker.value_counts()
    cast = {str(name): int(n) for name, n in lines.items() if name}
    character = check_name("--character", cfg.character, cast) if cfg.character else ""
    conversations = cfg.examples == "conversations"
    return Layout(history=conversations, names=conversations, character=character, characters=cast)


def _examples(data, max_pairs: int, cfg: TrainConfig, layout: Layout, tokenizer, max_length: int, dataset_path: Path):
    """(training examples, validation examples, training pairs, their text as one token stream) of
    whole conversations holding about max_pairs training pairs (0: all)."""
    train, val = sample_pairs(data, max_pairs, cfg.seed)
    conversations = conversations_from_pairs(train)
    train_examples, dropped = encode_conversations(conversations, tokenizer, max_length, layout, cfg.mask_prompt)
    val_examples, _ = encode_conversations(
        conversations_from_pairs(val), tokenizer, max_length, layout, cfg.mask_prompt
    )
    if dropped:
        log.warning("%d training turns are longer than --max-length %d: left out", dropped, max_length)
    if not train_examples or not val_examples:
        raise InvalidDataError(
            f"{dataset_path}: no training or no validation "
            + (f"turn of {layout.character}" if layout.character else "pair")
            + f" fits in --max-length {max_length} tokens; raise --max-length (up to the model's context)"
            + (" or hold out other books" if layout.character else "")
        )
    return train_examples, val_examples, len(train), text_stream(conversations, tokenizer)


def prose_examples(books: list[Path], tokenizer, max_length: int) -> list:
    """The books' whole text (BOOKS tables) as language-modelling rows."""
    texts = [text for path in books for text in read_table(path, BOOKS).text]
    return encode_prose(texts, tokenizer, max_length)


def train_model(
    dataset_path: Path,
    cfg: TrainConfig,
    out_dir: Path,
    progress: Progress = lambda f: None,
    books: list[Path] = (),
) -> Path:
    """Train, or resume, on a DATASET table (after cfg.prose_epochs on the BOOKS tables' text);
    returns out_dir/model, the best model by validation loss."""
    data = read_table(dataset_path, DATASET)
    layout = layout_of(cfg, data)  # an unknown --character fails here, before the model is built
    if cfg.prose_epochs and not books:
        raise InvalidDataError("--prose-epochs: no books' text given to train on; this is a bug")
    tokenizer = load_tokenizer(cfg.tokenizer_spec)
    model, steps, checkpoint_objects = _build(cfg, tokenizer)
    max_length, eot = min(cfg.max_length, model.config.n_positions), tokenizer.eos_token_id
    layout = dataclasses.replace(layout, max_length=max_length)
    train_examples, val_examples, train_pairs, stream = _examples(
        data, cfg.max_pairs, cfg, layout, tokenizer, max_length, dataset_path
    )
    prose = prose_examples(list(books), tokenizer, max_length) if cfg.prose_epochs else []

    ckpt_dir, metrics_path = out_dir / "checkpoints", out_dir / "metrics.jsonl"
    claim_checkpoints(ckpt_dir, run_fingerprint(file_sha256(dataset_path), cfg))
    state = _new_state()
    checkpoint = tf.train.Checkpoint(**checkpoint_objects, **state)
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=2)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info(
            "resuming from checkpoint %s at epoch %d, step %d",
            manager.latest_checkpoint,
            int(state["epoch"]) + 1,
            int(state["step"]),
        )
    history = read_metrics(metrics_path, int(state["epoch"]))
    best = min((m["val_loss"] for m in history), default=math.inf)

    first = epoch_rows(train_examples, 1, cfg.seed, max_length, eot)
    budget = cfg.minutes_allowed(on_gpu())
    plan = read_plan(ckpt_dir / "plan.json")
    if plan is None and budget and not manager.latest_checkpoint:
        val_rows = pack_rows(val_examples, max_length, eot)
        prose_steps = math.ceil(len(prose) / cfg.batch_size) * cfg.prose_epochs
        plan = _measure_plan(cfg, steps, checkpoint_objects, first, train_pairs, val_rows, budget, eot, prose_steps)
        write_plan(ckpt_dir / "plan.json", plan)
    if plan and plan.pairs < plan.all_pairs:
        train_examples, val_examples, train_pairs, stream = _examples(
            data, plan.pairs, cfg, layout, tokenizer, max_length, dataset_path
        )
        first = epoch_rows(train_examples, 1, cfg.seed, max_length, eot)
        prose = [
            prose[i]
            for i in sorted(np.random.default_rng(cfg.seed).permutation(len(prose))[: plan.share_of(len(prose))])
        ]
    val_rows = pack_rows(val_examples, max_length, eot)
    per_epoch = math.ceil(len(first.ids) / cfg.batch_size)
    log.info(
        "training %s (%.1fM parameters) on %d pairs as %d %s (%d validation), %d tokens in %d rows of %d per epoch",
        cfg.model,
        parameter_count(model) / 1e6,
        train_pairs,
        len(train_examples),
        cfg.examples,
        len(val_examples),
        first.lengths.sum(),
        len(first.ids),
        max_length,
    )
    if prose:
        log.info("first %d epoch(s) of the books' text: %d rows of %d tokens", cfg.prose_epochs, len(prose), max_length)
    if not budget:
        warn_if_slow(model, int(first.lengths.sum()), cfg.epochs - int(state["epoch"]), max_length)
    prose_steps = math.ceil(len(prose) / cfg.batch_size)
    bar = StepProgress(per_epoch * cfg.epochs + prose_steps * cfg.prose_epochs, int(state["global_step"]), progress)
    started = time.monotonic()
    for epoch in range(int(state["epoch"]) + 1, cfg.prose_epochs + cfg.epochs + 1):
        stage, stage_epoch = ("prose", epoch) if epoch <= cfg.prose_epochs else ("dialogue", epoch - cfg.prose_epochs)
        if stage == "dialogue" and _stale([m for m in history if m.get("stage") != "prose"], cfg.patience):
            log.info("validation loss has not improved for %d epochs: stopping early", cfg.patience)
            break
        total = cfg.prose_epochs if stage == "prose" else cfg.epochs
        bar.bar.set_description(f"{stage} epoch {stage_epoch}/{total}")
        epoch_start = time.monotonic()
        if stage == "prose":
            rows = epoch_rows(prose, PROSE_ORDERS + epoch, cfg.seed, max_length, eot)
        else:
            rows = first if stage_epoch == 1 else epoch_rows(train_examples, stage_epoch, cfg.seed, max_length, eot)
        _train_epoch(steps, rows, state, manager, cfg, eot, bar)
        record = _end_epoch(epoch, steps, val_rows, state, cfg, eot)
        record["stage"] = stage
        record["epoch_seconds"] = time.monotonic() - epoch_start  # wall clock, validation included
        record["planned_seconds"] = plan.estimate_seconds if plan else None  # the whole training, estimated
        append_metrics(metrics_path, record)  # before the checkpoint: a kill in between re-runs the epoch
        history.append(record)
        log.info(
            "epoch %d (%s): train loss %.3f, validation loss %.3f (perplexity %.1f), %.0f tokens/s",
            epoch,
            stage,
            record["train_loss"],
            record["val_loss"],
            record["val_perplexity"],
            record["tokens_per_sec"],
        )
        if record["val_loss"] < best or not (ckpt_dir / "best").is_dir():
            best = min(best, record["val_loss"])
            save_model_dir(model, None, ckpt_dir / "best")
        manager.save()
    bar.bar.close()
    if plan and history:
        log.info(
            "trained in %.1f min (planned %.1f min)", (time.monotonic() - started) / 60, plan.estimate_seconds / 60
        )
    if not (ckpt_dir / "best").is_dir():  # resumed with every epoch already trained, best/ deleted
        save_model_dir(model, None, ckpt_dir / "best")
    if history:
        plot_losses(history, out_dir / "loss.png")
    save_model_dir(ckpt_dir / "best", tokenizer, out_dir / "model")
    layout.save(out_dir / "model")
    np.save(out_dir / "model" / TRAINING_TEXT, stream)  # for eval's n-gram floor
    return out_dir / "model"


def _measure_plan(
    cfg: TrainConfig,
    steps: Steps,
    objects: dict,
    first: Rows,
    pairs: int,
    val_rows: Rows,
    budget: float,
    pad_id: int,
    prose_steps: int,
):
    """Time a few real steps (the model and optimizer are put back after), and plan the training to fit."""
    probe = list(itertools.islice(batches(first, cfg.batch_size, pad_id), PROBE_STEPS + 1))
    ids, targets = np.stack([b[0] for b in probe]), np.stack([b[1] for b in probe])
    seconds = measure_step_seconds(steps.train, ids, targets, objects["model"], objects["optimizer"])
    per_epoch, val_steps = (math.ceil(len(r.ids) / cfg.batch_size) for r in (first, val_rows))
    plan = plan_training(pairs, per_epoch, val_steps, cfg.epochs, seconds, budget, prose_steps, cfg.prose_epochs)
    tokens_per_sec = sum(int(b[2]) for b in probe[1:]) / (seconds * max(len(probe) - 1, 1))
    announce(plan, budget, cfg.epochs, tokens_per_sec)
    return plan


def _build(cfg: TrainConfig, tokenizer):
    """The model, its compiled steps, and what a checkpoint saves, on every GPU there is."""
    xla = on_gpu() if cfg.xla is None else cfg.xla  # on a CPU, XLA was no faster (benchmarks/)
    policy = precision_policy(cfg.mixed_precision)
    tf_keras.mixed_precision.set_global_policy(policy)
    loss_scale = policy == "mixed_float16"  # float16 gradients underflow without it; bfloat16 ones do not
    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    with strategy.scope():
        model = load_model(cfg.model, tokenizer, cfg.seed)
        optimizer = tf_keras.optimizers.AdamW(cfg.lr, weight_decay=0.01, global_clipnorm=1.0)
        if loss_scale:
            optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        steps = Steps(model, optimizer, strategy, xla, loss_scale)
    tf_keras.mixed_precision.set_global_policy("float32")  # models made later (chat) compute in float32
    log.info("compute %s, XLA %s, %d device(s)", policy, "on" if xla else "off", strategy.num_replicas_in_sync)
    return model, steps, {"model": model, "optimizer": optimizer}


TRAINING_INPUTS = INPUTS + ModuleSource(modules=("tasks.model", "tasks.examples", "tasks.runs", "tasks.budget"))


@task(name="train-model", cache_policy=TRAINING_INPUTS, persist_result=True)
def train_model_task(
    dataset: StoredFile, cfg: TrainConfig, sources: tuple[str, str], out_dir: Path, books: tuple[StoredFile, ...] = ()
) -> StoredFile:
    """Train on the dataset (after the books' text, with --prose-epochs); cached by its content, the
    model and tokenizer (sources: their fingerprints), the settings and this code. A rerun after a
    kill resumes from the checkpoint."""
    artifact = create_progress_artifact(0.0, description=f"training {cfg.model} into {out_dir}")
    last = [0]

    def progress(fraction: float) -> None:
        if int(fraction * 100) > last[0]:  # one API call per percent
            last[0] = int(fraction * 100)
            update_progress_artifact(artifact, last[0])

    weights = train_model(dataset.path, cfg, out_dir, progress, [b.path for b in books]) / "tf_model.h5"
    update_progress_artifact(artifact, 100.0)
    return stored_file(weights)
