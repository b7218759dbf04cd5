"""Time to first token and tokens per second: authorbot's streaming sampler against transformers' generate.

The baseline, measured in the same run, is what `authorbot chat` used before the sampler was
written: transformers' TF `generate`, XLA-compiled, the context left-padded to 64, 128 ... tokens,
sampling with top-k, top-p and a repetition penalty. It hands back a reply only when it is whole,
so its time to first token is the whole reply's. Random weights of each size (the real model's
FLOPs); the end of turn is banned on both sides so every reply is max-new-tokens long. Then the
same through HTTP: `authorbot serve` on loopback, streamed with the official openai client.

Run: python benchmarks/serve_latency.py [--sizes small,124M] [--new-tokens 64] [--repeats 3] [--no-http]
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT.parent / "shared" / "gpt2-tokenizer"
SIZES = {  # GPT2Config arguments
    "small": dict(n_layer=4, n_head=4, n_embd=256, n_positions=512),  # scratch:small
    "124M": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024),  # GPT-2 as released
}
SHORT = "Good morning, Miss Bennet. Shall we walk to Meryton today?"
LONG = " ".join(["It is a truth universally acknowledged, that a single man in possession of a good fortune"] * 20)


def save_random_model(size: str, folder: str) -> None:
    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel

    from tasks.model import load_tokenizer

    model = TFGPT2LMHeadModel(GPT2Config(vocab_size=50257, bos_token_id=50256, eos_token_id=50256, **SIZES[size]))
    model(tf.constant([[0]]))
    model.save_pretrained(folder)
    load_tokenizer(str(TOKENIZER)).save_pretrained(folder)


def baseline_generate(bot, context: list[int], new_tokens: int):
    """transformers' generate as the chat used it: one compiled call, the reply at its end."""
    import tensorflow as tf

    eot, c = bot.tokenizer.eos_token_id, bot.cfg
    width = max(64, 1 << (len(context) - 1).bit_length())
    pad = width - len(context)
    return bot.generate_fn(
        tf.constant([[eot] * pad + context]),
        attention_mask=tf.constant([[0] * pad + [1] * len(context)]),
        do_sample=True,
        temperature=c.temperature,
        top_k=c.top_k,
        top_p=c.top_p,
        repetition_penalty=c.repetition_penalty,
        max_new_tokens=new_tokens,
        suppress_tokens=[eot],
        eos_token_id=eot,
        pad_token_id=eot,
        seed=tf.constant([0, 0]),
    )


def timed(run, repeats: int) -> tuple[float, float]:
    """(median seconds to the first token, median seconds to the last) over repeats, after a warm-up run."""
    run()
    firsts, totals = [], []
    for _ in range(repeats):
        first, total = run()
        firsts.append(first)
        totals.append(total)
    return statistics.median(firsts), statistics.median(totals)


def measure_in_process(folder: str, new_tokens: int, repeats: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from tasks.chat import Bot
    from tasks.config import ChatConfig
    from tasks.examples import Turn

    bot = Bot(Path(folder), ChatConfig(max_new_tokens=new_tokens, no_repeat_ngram=0))
    bot.generate_fn = tf.function(bot.model.generate, jit_compile=True)
    eot = bot.tokenizer.eos_token_id
    results = {}
    for label, text in (("short", SHORT), ("long", LONG)):
        context = bot.context([Turn("", text)], new_tokens)

        def old(context=context) -> tuple[float, float]:
            start = time.perf_counter()
            baseline_generate(bot, context, new_tokens).numpy()
            seconds = time.perf_counter() - start
            return seconds, seconds

        def new(context=context) -> tuple[float, float]:
            start, first = time.perf_counter(), None
            count = 0
            for _ in bot.decoder.sample(context, bot.cfg, np.random.default_rng(0), {eot: -100.0}):
                first = first or time.perf_counter() - start
                count += 1
            assert count == new_tokens
            return first, time.perf_counter() - start

        results[label] = (len(context), timed(old, repeats), timed(new, repeats))
    return results


def measure_http(folder: str, new_tokens: int, repeats: int) -> tuple[float, float]:
    """Median time to the first streamed word and to the end, through `authorbot serve` and the openai client."""
    import httpx
    import openai

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "flows.cli", "serve", folder, "--port", str(port), "--no-repeat-ngram", "0"]
    server = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "authorbot serve did not start"
            time.sleep(0.5)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="-", max_retries=0)

        def run() -> tuple[float, float]:
            start, first = time.perf_counter(), None
            stream = client.chat.completions.create(
                messages=[{"role": "user", "content": SHORT}],
                model=Path(folder).name,
                max_tokens=new_tokens,
                logit_bias={"50256": -100},
                stream=True,
            )
            for chunk in stream:
                if chunk.choices[0].delta.content:
                    first = first or time.perf_counter() - start
            return first, time.perf_counter() - start

        return timed(run, repeats)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,124M")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import tasks  # noqa: F401 (TensorFlow settings before transformers)

    n = args.new_tokens
    print(f"{n} new tokens per reply, medians of {args.repeats} runs after a warm-up; first token / whole reply")
    print(f"{'model':6} {'context':>12} {'engine':28} {'first (s)':>10} {'reply (s)':>10} {'tok/s':>7}")
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory() as folder:
            save_random_model(size, folder)
            for label, (tokens, old, new) in measure_in_process(folder, n, args.repeats).items():
                context = f"{label} {tokens}"
                for engine, (first, total) in (("generate (XLA), before", old), ("authorbot sampler (XLA)", new)):
                    print(f"{size:6} {context:>12} {engine:28} {first:10.3f} {total:10.3f} {n / total:7.1f}")
                print(
                    f"{size:6} {context:>12} {'ratio, sampler / generate':28} {old[0] / new[0]:9.1f}x "
                    f"{old[1] / new[1]:9.2f}x",
                    flush=True,
                )
            if not args.no_http:
                first, total = measure_http(folder, n, args.repeats)
                print(f"{size:6} {'HTTP, short':>12} {'authorbot serve, streamed':28} {first:10.3f} {total:10.3f} "
                      f"{n / total:7.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
