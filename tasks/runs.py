"""A training run's folder: which settings its checkpoints belong to, metrics, the loss plot, models.

DIR/checkpoints/   TensorFlow checkpoints (weights, optimizer, progress), run.json, best/
DIR/metrics.jsonl  one line per finished epoch
DIR/loss.png       training and validation loss by epoch
DIR/model/         the best model, with its tokenizer (save_pretrained)
"""

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from tasks.config import TrainConfig
from tasks.errors import ConfigError
from tasks.tables import file_sha256, storage_error


def spec_fingerprint(spec: str) -> str:
    """The spec itself for hub names and scratch models; for a directory, a hash of its files."""
    path = Path(spec).expanduser()
    if not path.is_dir():
        return spec
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()} {file_sha256(file)}\n".encode())
    return f"{path.name}:{digest.hexdigest()[:16]}"


def run_fingerprint(dataset_sha: str, cfg: TrainConfig) -> dict:
    """What a checkpoint belongs to: the data, model and settings, but not the number of epochs
    or the stopping rule, so a finished run can be extended with more epochs."""
    settings = dataclasses.asdict(cfg)
    for knob in ("epochs", "patience", "checkpoint_every", "xla"):
        settings.pop(knob)
    settings.update(model=spec_fingerprint(cfg.model), tokenizer=spec_fingerprint(cfg.tokenizer_spec))
    return {"dataset_sha256": dataset_sha, **settings}


def claim_checkpoints(ckpt_dir: Path, fingerprint: dict) -> None:
    """Mark the checkpoint folder as this run's; refuse one that belongs to other settings."""
    run_file = ckpt_dir / "run.json"
    if run_file.is_file():
        theirs = json.loads(run_file.read_text("utf-8"))
        changed = sorted(k for k in fingerprint.keys() | theirs.keys() if fingerprint.get(k) != theirs.get(k))
        if changed:
            raise ConfigError(
                f"{ckpt_dir} holds a training with other settings ({', '.join(changed)} differ); "
                "give another --out, or delete that folder to start over"
            )
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(fingerprint, indent=1, default=str), "utf-8")


def read_metrics(path: Path, epochs_done: int) -> list[dict]:
    """The epochs the checkpoint covers; a line written just before a kill, for an epoch whose
    checkpoint never landed, is dropped (that epoch is trained again and logged once)."""
    if not path.is_file():
        return []
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    kept = [m for m in lines if m["epoch"] <= epochs_done]
    if len(kept) != len(lines):
        path.write_text("".join(json.dumps(m) + "\n" for m in kept), "utf-8")
    return kept


def plot_losses(history: list[dict], path: Path) -> None:
    """Training and validation loss by epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [m["epoch"] for m in history]
    ax.plot(epochs, [m["train_loss"] for m in history], "o-", label="train")
    ax.plot(epochs, [m["val_loss"] for m in history], "s-", label="validation")
    ax.set(xlabel="epoch", ylabel="loss per response token", title="authorbot fine-tuning")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_model_dir(model, tokenizer, path: Path) -> None:
    """save_pretrained (a model object, or the copy of a saved one) into a temporary folder, then
    swap it in: never a half-written model."""
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if isinstance(model, Path):
            shutil.copytree(model, tmp)
        else:
            model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    except (OSError, RuntimeError) as exc:  # a full disk (h5py says so with RuntimeError): the last model stays
        shutil.rmtree(tmp, ignore_errors=True)
        raise storage_error(path, exc) from None
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def append_metrics(path: Path, record: dict) -> None:
    """Append one epoch's line, on disk before returning."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())
