"""Every setting with its default, in one place. CLI flags and flow parameters override these."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from tasks.errors import ConfigError, ModelNotFound
from tasks.tables import safe_name

GUTENBERG = "https://www.gutenberg.org"
MODEL_FIX = "give a local directory (save_pretrained output) or --model scratch:tiny with --tokenizer DIR"
TRAINED_FIX = "give the model folder a run wrote (OUT/model) or any save_pretrained GPT-2 folder"  # chat, eval, serve
# Freshly initialised GPT-2s (--model scratch:NAME) for offline use and tests; vocabulary: the tokenizer's.
SCRATCH = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, n_positions=256),  # ~3.3M parameters, mostly embeddings
    "small": dict(n_layer=4, n_head=4, n_embd=256, n_positions=512),  # ~16M parameters
}

EXAMPLES = ("conversations", "exchanges")  # training example layouts (tasks/examples.py)
CPU_TIME_BUDGET = 45.0  # minutes of training on a CPU unless --time-budget says otherwise: a bot within the hour

# Test prompts in the register of the novels authorbot learns from; --prompts FILE replaces them.
PROMPTS = (
    "Good morning! How do you do?",
    "What do you think of our new neighbours?",
    "Will you walk with me in the garden?",
    "I have had a letter from my sister.",
    "Why did you not tell me sooner?",
    "Do you believe he will come to the ball?",
    "You must tell me everything.",
    "What is your opinion of marriage?",
)


@dataclass(frozen=True)
class CorpusConfig:
    author: str = ""  # an author's name as people type it ("Jane Austen", "austen")
    book: tuple[int, ...] = ()  # Gutenberg ids, instead of or besides the author's books
    mirror: str = GUTENBERG  # http(s) base URL or a local directory in Gutenberg's layout
    language: str = "en"  # catalog language code; books in others are skipped
    max_books: int = 0  # the first N of the books that the mirror has (0: all)
    data_dir: Path = Path("data")  # caches and intermediate Parquet files
    out: Path | None = None  # where pairs.json and the report go (default: data/05_datasets/<name>)
    catalog_max_age_days: float = 7.0  # refetch the catalog when older
    request_delay: float = 2.0  # seconds between requests to a remote host (0 for loopback, dirs)
    http_retries: int = 4  # retries per request on connection errors, 429 and 5xx
    http_backoff: float = 1.0  # exponential backoff base in seconds (1, 2, 4, ...)
    http_timeout: float = 30.0  # connect and read timeout per request, seconds
    max_gap: int = 600  # characters of narration that end a conversation
    val_fraction: float = 0.1  # share of conversations held out for validation
    val_books: tuple[int, ...] = ()  # hold out these whole books for validation instead
    min_pairs: int = 50  # fewer pairs than this is too small to train on
    seed: int = 0  # train/validation split

    def __post_init__(self) -> None:
        if not self.author.strip() and not self.book:
            raise ConfigError("no books asked for: give --author NAME or --book ID")
        if any(b <= 0 for b in self.book):
            raise ConfigError(f"--book {min(self.book)}: Gutenberg ids are positive integers")
        _at_least(self.max_books, 0, "--max-books")
        _at_least(self.request_delay, 0, "--request-delay")
        _at_least(self.http_retries, 0, "--http-retries")
        _at_least(self.http_backoff, 0, "--http-backoff")
        _at_least(self.http_timeout, 0.1, "--http-timeout")
        _at_least(self.max_gap, 0, "--max-gap")
        _at_least(self.catalog_max_age_days, 0, "--catalog-max-age-days")
        _at_least(self.min_pairs, 1, "--min-pairs")
        if self.val_books and not set(self.val_books) < set(self.book) and not self.author.strip():
            raise ConfigError(
                f"--val-books {' '.join(map(str, self.val_books))}: give them with --book as well, "
                "and at least one more book to train on"
            )
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"--val-fraction {self.val_fraction!r}: must be in [0, 1)")
        if not (self.mirror.startswith(("http://", "https://")) or Path(self.mirror).is_dir()):
            raise ConfigError(
                f"--mirror {self.mirror!r}: not an http(s) URL nor an existing directory; "
                "give a URL like https://www.gutenberg.org or a mirror folder"
            )

    @property
    def name(self) -> str:
        """A short, file-safe name for this dataset: the author, else the book ids."""
        return dataset_name(self.author, self.book)


def dataset_name(author: str, book: Iterable[int]) -> str:
    """'jane-austen', or 'books-158-1342' when only ids are given."""
    return safe_name(author or "books-" + "-".join(map(str, sorted(book))))


def _at_least(value: float, low: float, flag: str) -> None:
    if value < low:
        raise ConfigError(f"{flag} {value!r}: must be at least {low}")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "gpt2"  # hub name, a save_pretrained directory, or scratch:tiny / scratch:small
    tokenizer: str = ""  # hub name or directory; "" means the model's own ("gpt2" for scratch models)
    epochs: int = 3  # passes over the training pairs (early stopping may end sooner)
    batch_size: int = 8  # packed rows per step
    max_length: int = 256  # tokens per packed row, at most the model's context
    learning_rate: float = 0.0  # 0 means 5e-5 to fine-tune, 1e-3 for a scratch model
    max_pairs: int = 0  # train on a random sample of this many pairs (0: all)
    mask_prompt: bool = False  # no loss on an example's first turn (a conversation's opening, an exchange's prompt);
    # off, every line of the author's is learned from (benchmarks/bot_quality.py: lower held-out perplexity)
    examples: str = "conversations"  # whole conversations with speakers' names, or "exchanges": one pair each
    character: str = ""  # train a bot that is this character: their conversations, loss on their turns
    prose_epochs: int | None = None  # passes over the books' whole text before the dialogue epochs; None: 1 for
    # a scratch model (benchmarks/bot_quality.py: -41% held-out perplexity), 0 to fine-tune one that reads English
    patience: int = 2  # epochs without a better validation loss before stopping
    checkpoint_every: int = 200  # steps between checkpoints; there is one at every epoch's end too
    time_budget: float | None = None  # minutes the training may take, fewer pairs if need be; 0: no limit;
    # None: 45 on a CPU, no limit on a GPU
    xla: bool | None = None  # compile the training step with XLA; None: on a GPU only
    mixed_precision: bool | None = None  # float16 (GPU) or bfloat16 (CPU) compute, float32 weights; None: where fast
    seed: int = 0  # sampling, shuffling and scratch initialisation

    def __post_init__(self) -> None:
        _at_least(self.epochs, 1, "--epochs")
        _at_least(self.batch_size, 1, "--batch-size")
        _at_least(self.max_length, 8, "--max-length")
        _at_least(self.learning_rate, 0, "--learning-rate")
        _at_least(self.max_pairs, 0, "--max-pairs")
        _at_least(self.patience, 1, "--patience")
        _at_least(self.checkpoint_every, 1, "--checkpoint-every")
        if self.prose_epochs is None:  # resolved here, so a run's fingerprint and saved config hold the number
            object.__setattr__(self, "prose_epochs", 1 if self.model.startswith("scratch:") else 0)
        _at_least(self.prose_epochs, 0, "--prose-epochs")
        if self.examples not in EXAMPLES:
            raise ConfigError(f"--examples {self.examples!r}: choose {' or '.join(EXAMPLES)}")
        if self.time_budget is not None:
            _at_least(self.time_budget, 0, "--time-budget")
        if not self.model.strip():
            raise ConfigError("--model is empty; give a hub name like gpt2, a model directory, or scratch:tiny")
        if self.model.startswith("scratch:"):
            scratch_shape(self.model)

    def minutes_allowed(self, gpu: bool) -> float:
        """The time budget in minutes, 0 for none."""
        return self.time_budget if self.time_budget is not None else (0.0 if gpu else CPU_TIME_BUDGET)

    @property
    def tokenizer_spec(self) -> str:
        """The tokenizer to load: the one asked for, else the model's."""
        return self.tokenizer or ("gpt2" if self.model.startswith("scratch:") else self.model)

    @property
    def lr(self) -> float:
        """The learning rate to use."""
        return self.learning_rate or (1e-3 if self.model.startswith("scratch:") else 5e-5)


@dataclass(frozen=True)
class ChatConfig:
    temperature: float = 0.8  # below 1 is more predictable, above 1 more surprising; 0 always takes the likeliest
    top_k: int = 50  # sample from the k likeliest tokens (0: all)
    top_p: float = 0.95  # ... and from the smallest set holding this much probability
    repetition_penalty: float = 1.2  # above 1 discourages repeating tokens already in the context
    no_repeat_ngram: int = 3  # a reply never repeats one of its own n-grams of this many tokens (0: off)
    max_new_tokens: int = 60  # longest reply, in tokens
    wrap_up: int = 40  # from this many tokens on, a reply ends with its sentence, drawn to it (0: never; decode.py)
    seed: int = 0  # the same seed and history give the same replies

    def __post_init__(self) -> None:
        _at_least(self.temperature, 0, "--temperature")
        _at_least(self.top_k, 0, "--top-k")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p {self.top_p!r}: must be in (0, 1]")
        if self.repetition_penalty < 1:
            raise ConfigError(f"--repetition-penalty {self.repetition_penalty!r}: must be at least 1")
        _at_least(self.max_new_tokens, 1, "--max-new-tokens")
        _at_least(self.wrap_up, 0, "--wrap-up")
        if self.no_repeat_ngram == 1:
            raise ConfigError("--no-repeat-ngram 1: would forbid any token twice; use 2 or more, or 0 for off")
        _at_least(self.no_repeat_ngram, 0, "--no-repeat-ngram")


@dataclass(frozen=True)
class EvalConfig:
    max_responses: int = 1000  # responses scored for perplexity (a seeded sample; 0: all)
    ranked: int = 200  # of them, ranked against other lines for Hits@1 and speaker identification (0: all)
    candidates: int = 10  # lines each true response is ranked among
    samples: int = 100  # replies sampled with the chat's settings, for their statistics
    seed: int = 0

    def __post_init__(self) -> None:
        _at_least(self.max_responses, 0, "--max-responses")
        _at_least(self.ranked, 0, "--ranked")
        _at_least(self.candidates, 2, "--candidates")
        _at_least(self.samples, 0, "--samples")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # only this machine; 0.0.0.0 makes the bot reachable from the network
    port: int = 8000
    api_key: str = ""  # when set, the API needs "Authorization: Bearer KEY" (or set $AUTHORBOT_API_KEY)
    cors: str = ""  # one origin whose pages may call the API (CORS off when empty)
    queue_size: int = 16  # replies being sampled or waiting (a request for n takes n); one more gets 503

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port {self.port}: must be between 1 and 65535")
        _at_least(self.queue_size, 1, "--queue-size")
        if self.cors and not self.cors.startswith(("http://", "https://")):
            raise ConfigError(f"--cors {self.cors!r}: give an origin like http://localhost:3000")


def config_from(cls: type, values: dict, **overrides):
    """A config dataclass from a dict holding (at least) its fields: flow parameters, CLI flags."""
    return cls(**{f.name: overrides.get(f.name, values[f.name]) for f in fields(cls)})


def scratch_shape(spec: str) -> dict:
    """The GPT2Config sizes of a scratch:NAME model; ConfigError for an unknown name."""
    size = spec.removeprefix("scratch:")
    if size not in SCRATCH:
        raise ConfigError(f"--model {spec}: unknown size; choose one of " + ", ".join(f"scratch:{s}" for s in SCRATCH))
    return SCRATCH[size]


def read_prompts(path: Path | None) -> list[str]:
    """The non-empty lines of a prompts file, or the built-in prompts."""
    if path is None:
        return list(PROMPTS)
    if not Path(path).is_file():
        raise ConfigError(f"--prompts {path}: no such file; give a text file with one prompt per line")
    try:
        prompts = [line.strip() for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"--prompts {path}: cannot read it ({exc}); give a UTF-8 text file, one prompt per line"
        ) from None
    if not prompts:
        raise ConfigError(f"--prompts {path}: no prompts in it; write one per line")
    return prompts


def check_model_dir(path: Path, fix: str = MODEL_FIX) -> None:
    """Raise ModelNotFound unless path holds a saved TF GPT-2 model; fix: what the message tells the user to do."""
    if not path.is_dir():
        raise ModelNotFound(f"{path}: no such model directory; {fix}")
    config = path / "config.json"
    if not config.is_file() and (path / "model" / "config.json").is_file():
        raise ModelNotFound(f"{path}: a run's output folder, not its model; give {path / 'model'}")
    if not config.is_file():
        raise ModelNotFound(f"{path}: no config.json, so not a saved model; {fix}")
    try:
        model_type = json.loads(config.read_text("utf-8")).get("model_type")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelNotFound(f"{path}/config.json: unreadable ({exc}); save the model again") from None
    if model_type != "gpt2":
        raise ModelNotFound(f"{path}: a {model_type!r} model, not GPT-2; authorbot trains and chats with GPT-2")
    if not (path / "tf_model.h5").is_file():
        raise ModelNotFound(f"{path}: no TensorFlow weights (tf_model.h5); save it with a TF model's save_pretrained")
