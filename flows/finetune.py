"""The training flow: an author's name in, a bot to talk to out.

build the dataset (the corpus flow's steps, cached) -> fine-tune GPT-2 -> measure it on the
validation pairs -> replies to test prompts. A run killed during training and started again with
the same parameters skips the cached dataset steps and resumes training from its last
checkpoint; a finished training, its evaluation and its transcript are cached too.
"""

import base64
import json
import logging
from pathlib import Path

from prefect import flow, tags
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from flows.corpus import build_dataset
from tasks.cache import dataset_lock, run_intact
from tasks.chat import transcript_task
from tasks.config import (
    ChatConfig,
    CorpusConfig,
    EvalConfig,
    TrainConfig,
    config_from,
    dataset_name,
    read_prompts,
)
from tasks.evaluate import eval_markdown, evaluate_bot_task, write_eval
from tasks.runs import spec_fingerprint
from tasks.tables import stored_file, write_atomically
from tasks.train import train_model_task

log = logging.getLogger(__name__)
C, T, S, E = CorpusConfig, TrainConfig, ChatConfig, EvalConfig  # the defaults below are theirs, so flow and CLI agree


def _run_name() -> str:
    return "finetune-" + dataset_name(flow_run.parameters.get("author", ""), flow_run.parameters.get("book", []))


@flow(name="finetune", flow_run_name=_run_name)
def finetune(
    author: str = C.author,
    book: list[int] = [],  # noqa: B006 (Prefect shows a list field; never mutated)
    mirror: str = C.mirror,
    language: str = C.language,
    max_books: int = C.max_books,
    data_dir: Path = C.data_dir,
    out: Path | None = C.out,
    catalog_max_age_days: float = C.catalog_max_age_days,
    request_delay: float = C.request_delay,
    http_retries: int = C.http_retries,
    http_backoff: float = C.http_backoff,
    http_timeout: float = C.http_timeout,
    max_gap: int = C.max_gap,
    val_fraction: float = C.val_fraction,
    val_books: list[int] = [],  # noqa: B006
    min_pairs: int = C.min_pairs,
    model: str = T.model,
    tokenizer: str = T.tokenizer,
    epochs: int = T.epochs,
    batch_size: int = T.batch_size,
    max_length: int = T.max_length,
    learning_rate: float = T.learning_rate,
    max_pairs: int = T.max_pairs,
    mask_prompt: bool = T.mask_prompt,
    examples: str = T.examples,
    character: str = T.character,
    prose_epochs: int | None = T.prose_epochs,
    patience: int = T.patience,
    checkpoint_every: int = T.checkpoint_every,
    time_budget: float | None = T.time_budget,
    xla: bool | None = T.xla,
    mixed_precision: bool | None = T.mixed_precision,
    prompts: Path | None = None,
    as_character: str = "",
    you: str = "",
    temperature: float = S.temperature,
    top_k: int = S.top_k,
    top_p: float = S.top_p,
    repetition_penalty: float = S.repetition_penalty,
    no_repeat_ngram: int = S.no_repeat_ngram,
    max_new_tokens: int = S.max_new_tokens,
    wrap_up: int = S.wrap_up,
    max_responses: int = E.max_responses,
    ranked: int = E.ranked,
    candidates: int = E.candidates,
    samples: int = E.samples,
    seed: int = C.seed,
) -> Path:
    """Build an author's dialogue dataset, fine-tune GPT-2 on it, and write the bot's replies to test prompts."""
    params = dict(locals())
    data_dir = Path(data_dir).resolve()
    out_dir = Path(out).resolve() if out else data_dir / dataset_name(author, book)
    corpus = config_from(
        CorpusConfig, params, book=tuple(book), val_books=tuple(val_books), data_dir=data_dir, out=out_dir
    )
    train = config_from(TrainConfig, params)
    sampling = config_from(ChatConfig, params)
    evaluation = config_from(EvalConfig, params)

    with dataset_lock(data_dir, corpus.name), tags(corpus.name):
        return make_bot(corpus, train, sampling, evaluation, prompts, as_character, you)


def make_bot(
    corpus: CorpusConfig,
    train: TrainConfig,
    sampling: ChatConfig,
    evaluation: EvalConfig,
    prompts: Path | None,
    as_character: str = "",
    you: str = "",
) -> Path:
    """The flow's body: the six steps, for callers that already hold the configs."""
    out_dir = Path(corpus.out)
    questions = tuple(read_prompts(prompts))  # a missing or empty file fails here, before any work

    # 1-4. The dataset, exported to out_dir for a person to check (cached: nothing is refetched).
    dataset = build_dataset(corpus)

    # 5. Fine-tune, resuming from out_dir/checkpoints if a run was interrupted.
    sources = (spec_fingerprint(train.model), spec_fingerprint(train.tokenizer_spec))
    books = tuple(stored_file(corpus.data_dir / "01_raw" / f"{b['book_id']}.parquet") for b in dataset.report.per_book)
    weights = run_intact(
        train_model_task,
        dataset=dataset.table,
        cfg=train,
        sources=sources,
        out_dir=out_dir,
        books=books if train.prose_epochs else (),  # the cache key holds the books only when they are read
    )
    model_dir = out_dir / "model"
    metrics = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text("utf-8").splitlines()]
    create_table_artifact(key="training-metrics", table=metrics, description=f"{corpus.name}: one row per epoch")
    png = base64.b64encode((out_dir / "loss.png").read_bytes()).decode()
    create_markdown_artifact(
        key="loss-curve",
        markdown=f"# Loss by epoch: {corpus.name}\n\n![loss by epoch](data:image/png;base64,{png})\n\n"
        f"Best validation loss {min(m['val_loss'] for m in metrics):.3f} "
        f"(perplexity {min(m['val_perplexity'] for m in metrics):.1f}); the image is `{out_dir}/loss.png`.",
    )

    # 6. Measure it on the validation pairs, then talk to it: replies to the test prompts (both cached).
    result = evaluate_bot_task(weights, dataset.table, evaluation, sampling)
    write_eval(result, out_dir / "eval.json")
    create_markdown_artifact(key="evaluation", markdown=eval_markdown(result))
    transcript = transcript_task(weights, sampling, questions, as_character, you)
    write_atomically(out_dir / "transcript.md", lambda tmp: tmp.write_text(transcript, "utf-8"))
    log.info(
        "evaluation in %s, replies to %d test prompts in %s",
        out_dir / "eval.json",
        len(questions),
        out_dir / "transcript.md",
    )
    serve = f"authorbot serve {model_dir}"
    create_markdown_artifact(
        key="transcript", markdown=f"{transcript}\nTalk to it in a browser or over the OpenAI API: `{serve}`\n"
    )
    log.info("bot ready: authorbot chat %s (or %s)", model_dir, serve)
    return model_dir
