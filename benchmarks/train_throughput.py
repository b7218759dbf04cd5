"""Training and generation throughput of authorbot's TensorFlow GPT-2, against this machine's matmul.

For scratch:small and a GPT-2-124M-sized model (random weights, the real one's FLOPs): useful
(non-padding) tokens per second, the FLOP/s that achieves (6 x parameters + attention, per token),
and that divided by the FLOP/s of a plain float32 TensorFlow matmul measured in the same run.
The batches are real pairs from the shared corpus, packed as in training, so the useful-token
share is the real one. KerasHub's GPT2CausalLM (TensorFlow too, XLA) runs the same batches
side by side, in a subprocess since it needs Keras 3.

Generation speed: benchmarks/serve_latency.py.
Run: python benchmarks/train_throughput.py [--sizes small,124M] [--steps 3] [--no-keras-hub]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUTENBERG = ROOT.parent / "shared" / "gutenberg"
TOKENIZER = ROOT.parent / "shared" / "gpt2-tokenizer"
SIZES = {  # GPT2Config arguments
    "small": dict(n_layer=4, n_head=4, n_embd=256, n_positions=512),  # scratch:small
    "124M": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024),  # GPT-2 as released
}
ENGINES = {  # label: (xla, compute dtype)
    "authorbot fp32": (False, "float32"),
    "authorbot fp32 XLA": (True, "float32"),
    "authorbot bf16": (False, "mixed_bfloat16"),
}


def real_batches(batch_size: int, seq_len: int):
    """Packed rows of Pride and Prejudice's conversations: (ids, targets, useful-token share)."""
    import dataclasses

    import pandas as pd

    from tasks.dialogue import extract_utterances
    from tasks.examples import Layout, conversations_from_pairs, encode_conversations, pack_rows
    from tasks.gutenberg import decode_text, strip_boilerplate
    from tasks.model import load_tokenizer
    from tasks.pairing import pair_utterances

    raw = (GUTENBERG / "cache/epub/1342/pg1342.txt").read_bytes()
    pairs = pair_utterances(extract_utterances(strip_boilerplate(decode_text(raw, "utf-8", "pg1342"))))
    tokenizer = load_tokenizer(str(TOKENIZER))
    conversations = conversations_from_pairs(pd.DataFrame([dataclasses.asdict(p) for p in pairs]))
    examples, _ = encode_conversations(conversations, tokenizer, seq_len, Layout())
    rows = pack_rows(examples, seq_len, tokenizer.eos_token_id)
    n = len(rows.ids) // batch_size * batch_size
    return rows.ids[:n].reshape(-1, batch_size, seq_len), rows.targets[:n].reshape(-1, batch_size, seq_len), rows


def measure_authorbot(size: str, xla: bool, dtype: str, ids, targets, steps: int) -> float:
    """Seconds per training step of tasks.train.Steps, authorbot's training step."""
    import tensorflow as tf
    import tf_keras
    from transformers import GPT2Config, TFGPT2LMHeadModel

    from tasks.budget import time_steps
    from tasks.train import Steps

    tf_keras.mixed_precision.set_global_policy(dtype)
    model = TFGPT2LMHeadModel(GPT2Config(vocab_size=50257, **SIZES[size]))
    model(tf.constant([[0]]))
    optimizer = tf_keras.optimizers.AdamW(5e-5, weight_decay=0.01, global_clipnorm=1.0)
    optimizer.build(model.trainable_variables)
    steps_fn = Steps(model, optimizer, tf.distribute.get_strategy(), xla, loss_scale=False)  # none for bf16
    seconds = time_steps(steps_fn.train, ids, targets, steps)
    tf_keras.mixed_precision.set_global_policy("float32")
    return seconds


def keras_hub_worker(batch_file: str, size: str, steps: int, dtype: str) -> None:
    """In a subprocess (Keras 3): seconds per step of KerasHub's GPT2CausalLM with XLA, printed as JSON."""
    import keras
    import keras_hub
    import numpy as np

    keras.mixed_precision.set_global_policy(dtype)
    data = np.load(batch_file)
    c = SIZES[size]
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50257,
        num_layers=c["n_layer"],
        num_heads=c["n_head"],
        hidden_dim=c["n_embd"],
        intermediate_dim=4 * c["n_embd"],
        max_sequence_length=c["n_positions"],
    )
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    sys.path.insert(0, str(ROOT))
    from tasks.budget import time_steps

    lm.compile(
        optimizer=keras.optimizers.AdamW(5e-5, weight_decay=0.01, global_clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )

    def step(ids, targets):  # the same next-token loss on the same positions as authorbot's
        x = {"token_ids": ids, "padding_mask": np.ones_like(ids, dtype=bool)}
        lm.train_on_batch(x, np.roll(ids, -1, axis=1), sample_weight=np.roll(targets, -1, axis=1))

    print(json.dumps({"seconds": time_steps(step, data["ids"], data["targets"], steps)}))


def measure_keras_hub(size: str, ids, targets, steps: int, dtype: str) -> float | None:
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        batch_file = f"{tmp}/batches.npz"
        np.savez(batch_file, ids=ids[: steps + 1], targets=targets[: steps + 1])
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
        args = [sys.executable, __file__, "--keras-hub-worker", batch_file, size, str(steps), dtype]
        done = subprocess.run(args, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        print(f"  KerasHub {size}: failed ({(done.stderr.strip().splitlines() or ['?'])[-1]})", flush=True)
        return None
    return json.loads(lines[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,124M")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--no-keras-hub", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import tasks  # noqa: F401, I001 (TensorFlow settings before transformers)
    from tasks.train import matmul_flops, training_flops_per_token
    from transformers import GPT2Config

    ids, targets, rows = real_batches(args.batch_size, args.seq_len)
    useful = rows.lengths.sum() / rows.ids.size
    baseline = max(matmul_flops(), matmul_flops())  # the quieter of two
    print(f"float32 matmul (2048 x 2048): {baseline / 1e9:.0f} GFLOP/s; useful-token share {useful:.3f}")
    print(f"batch {args.batch_size} x {args.seq_len} tokens, {args.steps} timed steps each\n")
    print(f"{'model':6} {'engine':24} {'tok/s':>8} {'GFLOP/s':>8} {'x matmul':>8}")
    for size in args.sizes.split(","):
        flops_per_token = training_flops_per_token(GPT2Config(vocab_size=50257, **SIZES[size]), args.seq_len)
        runs = {
            label: measure_authorbot(size, xla, dtype, ids, targets, args.steps)
            for label, (xla, dtype) in ENGINES.items()
        }
        if not args.no_keras_hub:
            runs["KerasHub fp32 XLA"] = measure_keras_hub(size, ids, targets, args.steps, "float32")
            runs["KerasHub bf16 XLA"] = measure_keras_hub(size, ids, targets, args.steps, "mixed_bfloat16")
        for label, seconds in runs.items():
            if seconds is None:
                continue
            tokens = args.batch_size * args.seq_len * useful / seconds
            flops = tokens * flops_per_token
            print(f"{size:6} {label:24} {tokens:8.0f} {flops / 1e9:8.0f} {flops / baseline:8.2f}", flush=True)
        ours, hub = runs["authorbot fp32"], runs.get("KerasHub fp32 XLA")
        if hub:
            print(f"{size:6} KerasHub fp32 XLA / authorbot fp32: {ours / hub:.2f}x")
        print()
    print(f"float32 matmul again: {matmul_flops() / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--keras-hub-worker":
        keras_hub_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        main()
