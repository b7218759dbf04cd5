"""GPT-2 models and tokenizers from the hub, a local directory, or scratch, for training and chat.

Imported only by the commands that train or chat: TensorFlow takes seconds to import.
"""

import logging
import os
from pathlib import Path

import requests
import tensorflow as tf
from transformers import GPT2Config, GPT2TokenizerFast, TFGPT2LMHeadModel

from tasks.config import MODEL_FIX as FIX
from tasks.config import check_model_dir, scratch_shape
from tasks.errors import ConfigError, ModelNotFound

log = logging.getLogger(__name__)


def is_local(spec: str) -> bool:
    """True when a model or tokenizer spec names a path rather than a hub repository."""
    return Path(spec).exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1


def _from_hub(cls: type, name: str, what: str):
    """from_pretrained(name), from the local hub cache when there, else from the hub if it answers."""
    try:
        return cls.from_pretrained(name, local_files_only=True)
    except (OSError, TypeError, ValueError):  # not cached (the tokenizer says so with a TypeError)
        pass
    hub = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:  # without this, an unreachable hub means minutes of retries before the same failure
        requests.head(hub, timeout=10)
    except requests.RequestException as exc:
        raise ModelNotFound(
            f"{what} {name!r}: not in the local Hugging Face cache and {hub} cannot be reached "
            f"({type(exc).__name__}); {FIX}"
        ) from None
    try:
        return cls.from_pretrained(name)
    except (OSError, TypeError, ValueError) as exc:
        raise ModelNotFound(f"{what} {name!r}: {str(exc).splitlines()[0]}; {FIX}") from None


def load_tokenizer(spec: str) -> GPT2TokenizerFast:
    """A GPT-2 tokenizer from a hub name or a directory (HF files or OpenAI's encoder.json + vocab.bpe)."""
    path = Path(spec).expanduser()
    if (path / "encoder.json").is_file() and (path / "vocab.bpe").is_file():
        tokenizer = GPT2TokenizerFast(vocab_file=str(path / "encoder.json"), merges_file=str(path / "vocab.bpe"))
    elif is_local(spec):
        if not path.is_dir():
            raise ModelNotFound(f"{spec}: no such tokenizer directory")
        try:
            tokenizer = GPT2TokenizerFast.from_pretrained(str(path))
        except (OSError, ValueError, TypeError) as exc:
            raise ModelNotFound(
                f"--tokenizer {spec}: not a GPT-2 tokenizer directory ({str(exc).splitlines()[0][:200]}); "
                "it needs vocab.json and merges.txt, tokenizer.json, or encoder.json and vocab.bpe"
            ) from None
    else:
        tokenizer = _from_hub(GPT2TokenizerFast, spec, "tokenizer")
    if tokenizer.eos_token_id is None:
        raise ModelNotFound(f"--tokenizer {spec}: has no <|endoftext|> token, so it is not GPT-2's")
    tokenizer.pad_token = tokenizer.eos_token  # GPT-2 has no pad token; padding is masked by position
    return tokenizer


def load_model(spec: str, tokenizer: GPT2TokenizerFast, seed: int = 0) -> TFGPT2LMHeadModel:
    """A TF GPT-2 language model: scratch:tiny|small, a save_pretrained directory, or a hub name."""
    if spec.startswith("scratch:"):
        shape = scratch_shape(spec)
        tf.keras.utils.set_random_seed(seed)
        eot = tokenizer.eos_token_id
        config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=eot, eos_token_id=eot, **shape)
        model = TFGPT2LMHeadModel(config)
    elif is_local(spec):
        path = Path(spec).expanduser()
        check_model_dir(path)
        model = TFGPT2LMHeadModel.from_pretrained(str(path))
    else:
        model = _from_hub(TFGPT2LMHeadModel, spec, "model")
    if model.config.vocab_size < len(tokenizer):
        raise ConfigError(
            f"--tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}; "
            "use the tokenizer the model was trained with"
        )
    model(tf.constant([[tokenizer.eos_token_id]]))  # create the weights now, so checkpoints can restore into them
    return model


def parameter_count(model: TFGPT2LMHeadModel) -> int:
    """Trainable parameters (the LM head shares the token embedding)."""
    return int(sum(v.shape.num_elements() for v in model.trainable_variables))
