"""Fine-tuning and chat on real TensorFlow: scratch:tiny, the shared GPT-2 tokenizer, pairs from the shared corpus."""

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TOKENIZER

from tasks.chat import Bot, converse
from tasks.config import ChatConfig, TrainConfig, read_prompts
from tasks.errors import ConfigError, ModelNotFound
from tasks.examples import (
    LAYOUT_FILE,
    MIN_CONTEXT,
    Conversation,
    Layout,
    Turn,
    batches,
    conversations_from_pairs,
    encode_conversations,
    encode_turns,
    epoch_rows,
    pack_rows,
)
from tasks.model import load_model, load_tokenizer
from tasks.train import train_model


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(TOKENIZER)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    """A run folder after two epochs of scratch:tiny on 300 pairs."""
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        model="scratch:tiny", tokenizer=TOKENIZER, epochs=2, max_pairs=300, checkpoint_every=10, prose_epochs=0
    )
    assert train_model(dataset, cfg, out) == out / "model"
    return out


def test_openai_tokenizer_files_give_gpt2_ids(tokenizer, tmp_path):
    assert tokenizer.encode("Hello, Mr. Darcy!") == [15496, 11, 1770, 13, 7491, 948, 0]
    assert tokenizer.eos_token_id == 50256 and len(tokenizer) == 50257
    tokenizer.save_pretrained(tmp_path)  # and the HF layout it saves reads back the same
    assert load_tokenizer(str(tmp_path)).encode("Hello, Mr. Darcy!") == [15496, 11, 1770, 13, 7491, 948, 0]


EXCHANGES = Layout(history=False, names=False)


def exchange(prompt: str, response: str, speakers=("", "")) -> Conversation:
    return Conversation(1342, 0, [Turn(speakers[0], prompt), Turn(speakers[1], response)])


def test_a_masked_prompt_leaves_the_loss_on_the_response_and_its_end_token(tokenizer):
    eot = tokenizer.eos_token_id
    (ex,), dropped = encode_conversations(
        [exchange("How do you do?", "Very well, I thank you.")], tokenizer, 64, EXCHANGES, mask_prompt=True
    )
    prompt, response = tokenizer.encode("How do you do?"), tokenizer.encode("Very well, I thank you.")
    assert dropped == 0 and ex.ids == prompt + [eot] + response + [eot]
    assert ex.targets == [0.0] * (len(prompt) + 1) + [1.0] * (len(response) + 1)
    rows = pack_rows([ex], 64, pad_id=eot)  # padding is the same id as the end of turn ...
    assert rows.ids[0, len(ex.ids) - 1] == rows.ids[0, -1] == eot
    assert (
        rows.targets[0, len(ex.ids) - 1] == 1.0 and rows.targets[0, len(ex.ids) :].sum() == 0
    )  # ... yet only one counts
    (unmasked,), _ = encode_conversations([exchange("How do you do?", "Very well.")], tokenizer, 64, EXCHANGES)
    assert all(t == 1.0 for t in unmasked.targets)  # the default: the prompt is learned from too


def test_long_prompts_keep_their_end_and_overlong_responses_are_left_out(tokenizer):
    long_prompt = " ".join(f"word{i}" for i in range(200))
    talks = [exchange(long_prompt, "Yes."), exchange("Hi.", "no " * 100)]
    examples, dropped = encode_conversations(talks, tokenizer, 32, EXCHANGES)
    assert dropped == 1 and len(examples) == 1 and len(examples[0].ids) <= 32
    assert tokenizer.decode(examples[0].ids).startswith(" word") and "word199" in tokenizer.decode(examples[0].ids)


def test_pairs_chain_into_conversations_and_a_speaker_going_on_is_one_turn():
    rows = pd.DataFrame(
        {
            "book_id": [1, 1, 1, 1, 1],
            "conversation_id": [0, 0, 0, 0, 1],
            "prompt_index": [0, 1, 3, 6, 9],  # 2 -> 3: one speaker going on; 4 -> 6: a pair dropped
            "prompt": ["a", "b", "c2", "x", "p"],
            "response": ["b", "c1", "d", "y", "q"],
            "prompt_speaker": ["Ann", "", "Ann", "", ""],
            "response_speaker": ["", "Ann", "Bob", "", ""],
        }
    )
    conversations = conversations_from_pairs(rows)
    assert [[t.text for t in c.turns] for c in conversations] == [["a", "b", "c1 c2", "d"], ["x", "y"], ["p", "q"]]
    assert [t.speaker for t in conversations[0].turns] == ["Ann", "", "Ann", "Bob"]


def test_a_conversation_is_one_example_each_turn_a_target_once_with_its_speakers_name(dataset, tokenizer):
    eot = tokenizer.eos_token_id
    talk = Conversation(1342, 0, [Turn("Mr. Bennet", "Well?"), Turn("", "Nothing."), Turn("Mr. Bennet", "Good.")])
    (ex,), _ = encode_conversations([talk], tokenizer, 64, Layout())
    assert (
        tokenizer.decode(ex.ids) == "Mr. Bennet: Well?<|endoftext|>Nothing.<|endoftext|>Mr. Bennet: Good.<|endoftext|>"
    )
    predicted = tokenizer.decode([i for i, t in zip(ex.ids, ex.targets) if t])
    assert predicted == " Well?<|endoftext|>Nothing.<|endoftext|> Good.<|endoftext|>"  # the names are context
    (masked,), _ = encode_conversations([talk], tokenizer, 64, Layout(), mask_prompt=True)
    assert (
        tokenizer.decode([i for i, t in zip(masked.ids, masked.targets) if t])
        == "Nothing.<|endoftext|> Good.<|endoftext|>"
    )
    assert ex.ids.count(eot) == 3

    # On a whole book: every response is a target once, in fewer tokens than one exchange per example.
    conversations = conversations_from_pairs(pd.read_parquet(dataset))
    whole, _ = encode_conversations(conversations, tokenizer, 256, Layout(), mask_prompt=True)
    single, _ = encode_conversations(conversations, tokenizer, 256, EXCHANGES, mask_prompt=True)
    assert sum(sum(e.targets) for e in whole) == pytest.approx(sum(sum(e.targets) for e in single), rel=0.02)
    # ... and, by default, every turn once: the conversations' opening lines too
    every, _ = encode_conversations(conversations, tokenizer, 256, Layout())
    openings = [encode_turns(c.turns[:1], tokenizer, names=True)[0] for c in conversations]
    fitting = [len(body) for name, body in openings if len(name) + len(body) + MIN_CONTEXT <= 256]
    assert sum(sum(e.targets) for e in every) - sum(sum(e.targets) for e in whole) == sum(fitting)
    assert sum(len(e.ids) for e in whole) < 0.9 * sum(len(e.ids) for e in single)
    assert all(len(e.ids) <= 256 for e in whole)
    # A long conversation goes on in further examples that start with the end of the one before.
    longest = max(conversations, key=lambda c: len(c.turns))
    parts, _ = encode_conversations([longest], tokenizer, 256, Layout())
    assert len(parts) > 1 and parts[1].targets[0] == 0.0
    first_text = tokenizer.decode(parts[0].ids)
    assert tokenizer.decode(parts[1].ids[:20]) in first_text


def test_a_characters_bot_learns_only_their_turns(tokenizer):
    talk = Conversation(1, 0, [Turn("Jane", "Hello."), Turn("Lizzy", "Hi."), Turn("Jane", "Bye."), Turn("", "Go.")])
    (ex,), _ = encode_conversations([talk], tokenizer, 64, Layout(character="Jane"))
    assert tokenizer.decode([i for i, t in zip(ex.ids, ex.targets) if t]) == " Hello.<|endoftext|> Bye.<|endoftext|>"
    assert encode_conversations([talk], tokenizer, 64, Layout(character="Mary")) == ([], 0)


def test_packing_fills_rows_with_whole_examples_in_a_seeded_order(dataset, tokenizer):
    conversations = conversations_from_pairs(pd.read_parquet(dataset))
    # masked prompts: no example starts with a target, which a row's first token could not be
    examples, _ = encode_conversations(conversations, tokenizer, 256, EXCHANGES, mask_prompt=True)
    rows = epoch_rows(examples, 1, 0, 256, tokenizer.eos_token_id)
    assert rows.lengths.sum() == sum(len(e.ids) for e in examples)  # nothing cut or lost
    assert rows.lengths.sum() / rows.ids.size > 0.95
    assert rows.targets.sum() == sum(sum(e.targets) for e in examples)  # no target lost at a row start
    assert np.array_equal(rows.ids, epoch_rows(examples, 1, 0, 256, tokenizer.eos_token_id).ids)
    assert not np.array_equal(rows.ids, epoch_rows(examples, 2, 0, 256, tokenizer.eos_token_id).ids)
    shapes = {(ids.shape, targets.shape) for ids, targets, _ in batches(rows, 7, tokenizer.eos_token_id)}
    assert shapes == {((7, 256), (7, 256))}  # the short last batch is filled out with empty rows


@pytest.mark.slow
def test_training_lowers_validation_loss_and_the_model_reloads(trained, tokenizer):
    import tensorflow as tf
    from transformers import TFGPT2LMHeadModel

    metrics = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert metrics[1]["val_loss"] < metrics[0]["val_loss"] < 10.9  # ln(50257) = 10.8 is a blind guess
    assert metrics[1]["val_perplexity"] == pytest.approx(np.exp(metrics[1]["val_loss"]))
    # conversations make long examples, which pack less tightly than single exchanges did (> 0.9)
    assert all(m["useful_token_share"] > 0.8 and m["tokens_per_sec"] > 0 for m in metrics)
    assert (trained / "loss.png").read_bytes().startswith(b"\x89PNG")

    # The saved model is the trained one: same logits as the weights in the last checkpoint.
    reloaded = TFGPT2LMHeadModel.from_pretrained(trained / "model")
    fresh = load_model("scratch:tiny", tokenizer, seed=1)
    tf.train.Checkpoint(model=fresh).restore(tf.train.latest_checkpoint(trained / "checkpoints")).expect_partial()
    ids = tf.constant([tokenizer.encode("I am very glad to see you, Mr. Bingley.")])
    assert np.allclose(reloaded(ids).logits.numpy(), fresh(ids).logits.numpy(), atol=1e-5)
    assert not np.allclose(load_model("scratch:tiny", tokenizer, seed=1)(ids).logits.numpy(), fresh(ids).logits.numpy())


@pytest.mark.slow
def test_more_epochs_continue_a_finished_run_and_other_settings_are_refused(trained, dataset):
    before = (trained / "metrics.jsonl").read_text().splitlines()
    cfg = TrainConfig(
        model="scratch:tiny", tokenizer=TOKENIZER, epochs=3, max_pairs=300, checkpoint_every=10, prose_epochs=0
    )
    train_model(dataset, cfg, trained)
    after = (trained / "metrics.jsonl").read_text().splitlines()
    assert after[:2] == before and json.loads(after[2])["epoch"] == 3
    with pytest.raises(ConfigError, match=r"holds a training with other settings \(learning_rate differ\)"):
        train_model(dataset, dataclasses.replace(cfg, learning_rate=0.01), trained)
    assert (trained / "metrics.jsonl").read_text().splitlines() == after  # nothing lost


@pytest.mark.slow
def test_chat_replies_one_line_per_input_line_and_forgets_on_reset(trained):
    import io

    bot = Bot(trained / "model", ChatConfig(max_new_tokens=12))
    out = io.StringIO()
    converse(bot, io.StringIO("Good morning.\n\nWhat news?\n/reset\nAnd you?\n/quit\nnever read\n"), out, False)
    lines = out.getvalue().split("\n")[:-1]
    assert len(lines) == 5 and lines[1] == "" and lines[3] == "(conversation forgotten)"
    assert bot.history[0].text == "And you?" and len(bot.history) == 2  # /reset dropped the first turns
    assert "<|endoftext|>" not in out.getvalue()
    again = Bot(trained / "model", ChatConfig(max_new_tokens=12))
    assert again.reply("Good morning.") == lines[0]  # same seed, same reply


def test_history_keeps_the_latest_turns_that_fit(trained):
    bot = Bot(trained / "model", ChatConfig(max_new_tokens=200))  # 256 positions: 56 tokens of history
    bot.history = [Turn("", f"Turn number {i} of a long conversation.") for i in range(40)]
    context = bot.tokenizer.decode(bot.context(bot.history, 200))
    assert context.endswith("Turn number 39 of a long conversation.<|endoftext|>")
    assert "Turn number 0 " not in context and len(bot.context(bot.history, 200)) <= 56


def test_the_chat_context_is_no_longer_than_the_training_rows(trained, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained / "model", model_dir)
    layout = json.loads((model_dir / LAYOUT_FILE).read_text())
    (model_dir / LAYOUT_FILE).write_text(json.dumps(layout | {"max_length": 64}))  # as if trained on rows of 64
    bot = Bot(model_dir, ChatConfig(max_new_tokens=12))
    history = [Turn("", f"Turn number {i} of a long conversation.") for i in range(40)]
    assert 40 < len(bot.context(history, 12)) <= 64 - 12  # positions past the rows were never trained
    assert len(bot.context(history, 200)) <= 256 - 200  # a reply longer than a row: the model's own limit


def test_bad_models_and_tokenizers_get_one_clear_error(tmp_path, tokenizer, monkeypatch):
    with pytest.raises(ConfigError, match="scratch:huge: unknown size; choose one of scratch:tiny, scratch:small"):
        load_model("scratch:huge", tokenizer)
    with pytest.raises(ModelNotFound, match="no such model directory"):
        load_model(str(tmp_path / "missing"), tokenizer)
    with pytest.raises(ModelNotFound, match="no config.json, so not a saved model"):
        Bot(tmp_path, ChatConfig())
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelNotFound, match="a 'bert' model, not GPT-2"):
        Bot(tmp_path, ChatConfig())
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there, like a hub out of reach
    with pytest.raises(ModelNotFound, match=r"'no-such-model': not in the local Hugging Face cache .* scratch:tiny"):
        load_tokenizer("no-such-model")
    with pytest.raises(ConfigError, match="no prompts in it"):
        (tmp_path / "empty.txt").write_text("\n\n")
        read_prompts(tmp_path / "empty.txt")


def test_a_big_model_on_a_cpu_is_announced_with_an_estimate(caplog):
    import logging

    from transformers import GPT2Config, TFGPT2LMHeadModel

    from tasks.train import warn_if_slow

    caplog.set_level(logging.WARNING, logger="tasks.train")
    gpt2 = TFGPT2LMHeadModel(GPT2Config())  # GPT-2 124M's shape, random weights
    gpt2(np.zeros((1, 1), np.int32))
    warn_if_slow(gpt2, tokens=1_000_000, epochs=3, seq_len=256)
    assert "training a 124M-parameter model on a CPU, no GPU found: about " in caplog.text
    hours = float(caplog.text.split("about ")[1].split(" hours")[0])
    assert 0.5 < hours < 100  # 3M tokens x 0.76 GFLOP each, at half this machine's matmul rate


# Run in a child process: the two logical CPUs must be set before TensorFlow starts its devices.
MIRRORED = """
TOKENIZER = {tokenizer!r}
import tasks  # noqa
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tf_keras
from tasks.model import load_model, load_tokenizer
from tasks.train import Steps
from tasks.examples import Rows
tok = load_tokenizer(TOKENIZER)
rng = np.random.default_rng(0)
ids = rng.integers(0, 50257, (4, 32)).astype(np.int32); targets = np.ones((4, 32), np.float32); targets[:, :5] = 0

def run(strategy, policy="float32", loss_scale=False):
    tf_keras.mixed_precision.set_global_policy(policy)
    with strategy.scope():
        model = load_model("scratch:tiny", tok, seed=0)
        opt = tf_keras.optimizers.AdamW(1e-3)
        if loss_scale: opt = tf_keras.mixed_precision.LossScaleOptimizer(opt)
        opt.build(model.trainable_variables)
        steps = Steps(model, opt, strategy, xla=False, loss_scale=loss_scale)
    first = steps.train(ids, targets)
    second = steps.train(ids, targets)
    val = steps.evaluate(Rows(ids, targets, np.full(4, 32)), 4, tok.eos_token_id)
    tf_keras.mixed_precision.set_global_policy("float32")
    return first, second, val

one = run(tf.distribute.get_strategy())
two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
half = run(tf.distribute.get_strategy(), "mixed_float16", loss_scale=True)
assert np.allclose(one, two, rtol=1e-3), (one, two)
assert all(np.isfinite(half)) and abs(half[0] - one[0]) / one[0] < 0.01
"""


@pytest.mark.slow
def test_mirrored_and_float16_training_steps_agree_with_the_plain_one():
    """The GPU code paths, run on CPUs: MirroredStrategy over two devices, and float16 with loss scaling."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = MIRRORED.format(tokenizer=TOKENIZER)
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_rows_too_short_for_any_pair_are_one_clear_error(dataset, tmp_path):
    from tasks.errors import InvalidDataError

    with pytest.raises(InvalidDataError, match=r"no training or no validation pair fits in --max-length 8 tokens"):
        train_model(
            dataset, TrainConfig(model="scratch:tiny", tokenizer=TOKENIZER, max_length=8, prose_epochs=0), tmp_path
        )
    assert not (tmp_path / "checkpoints").exists()  # nothing started


@pytest.mark.slow
def test_a_small_time_budget_shrinks_the_run_and_it_ends_in_time(dataset, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="tasks")
    budget = 0.25  # minutes: far less than two epochs of every pair take scratch:small here
    cfg = TrainConfig(model="scratch:small", tokenizer=TOKENIZER, epochs=2, time_budget=budget, prose_epochs=0)
    train_model(dataset, cfg, tmp_path)
    said = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("time budget 0.25 min"))
    everything, used = (int(x) for x in re.search(r"of all (\d+) pairs .* training on (\d+) of them", said).groups())
    assert 0 < used < everything and "--time-budget 0 trains on every pair" in said
    trained_on = int(re.search(r"on (\d+) pairs as", caplog.text).group(1))  # and so it did, whole conversations
    assert 0.5 * used <= trained_on <= used
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    spent = sum(m["epoch_seconds"] for m in metrics)
    assert len(metrics) == 2 and spent <= budget * 60 * 1.25, spent
    assert metrics[0]["planned_seconds"] == pytest.approx(spent, rel=0.5)
    plan = json.loads((tmp_path / "checkpoints/plan.json").read_text())
    assert plan["pairs"] == used  # a resumed run keeps this plan instead of measuring again
