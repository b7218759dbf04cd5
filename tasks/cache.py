"""Caching for tasks that write Parquet: the file holds the data, Prefect's cache is the index to it.

A task's cache key is its real inputs plus the source of its module and of the schemas, so a
changed extractor re-runs extraction (and, through the new file's hash, what follows) but
never the downloads. A cache hit whose file is gone or changed is rebuilt, not trusted.
"""

import fcntl
import inspect
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Task
from prefect.cache_policies import INPUTS, CachePolicy
from prefect.utilities.hashing import hash_objects

from tasks import tables

log = logging.getLogger(__name__)


@dataclass
class ModuleSource(CachePolicy):
    """Key on the source files of the task's own module, of tables.py, and of any modules named."""

    modules: tuple[str, ...] = ()  # e.g. ("tasks.model",) for code the task's module calls into

    def compute_key(self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any) -> str | None:
        if task_ctx is None:
            return None
        named = [inspect.getsourcefile(sys.modules[m]) for m in self.modules]
        files = sorted({inspect.getsourcefile(task_ctx.task.fn), tables.__file__, *named})
        return hash_objects([Path(f).read_bytes() for f in files], raise_on_failure=True)


PARQUET_INPUTS = INPUTS + ModuleSource()


def run_intact(task: Task, **kwargs: Any) -> Any:
    """Run a task that returns a StoredFile, a dataclass holding some (tables.BookDialogue) or None;
    rebuild once if a cached file is not intact."""
    stored = task(**kwargs)
    held = [stored] if isinstance(stored, tables.StoredFile) else vars(stored).values() if stored else []
    broken = [f.path for f in held if isinstance(f, tables.StoredFile) and not f.intact()]
    if not broken:
        return stored
    log.warning("%s: cached file is missing or changed; rebuilding it", broken[0])
    return task.with_options(refresh_cache=True)(**kwargs)


@contextmanager
def dataset_lock(data_dir: Path, name: str) -> Iterator[None]:
    """Hold data_dir/.locks/<name>.lock while a run writes a dataset's files: a second run of the
    same author (CLI or deployment) waits here instead of writing the same files at once. The
    operating system drops the lock when its holder dies, even by kill -9."""
    path = Path(data_dir) / ".locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another run of %s is writing its files (%s): waiting for it to finish", name, path)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
