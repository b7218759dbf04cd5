"""Fault matrix, disk rows: writes that fail half-way leave the previous good files as they were.

A full disk is made real with RLIMIT_FSIZE in a child process: every write past the limit fails
(EFBIG, where a full disk gives ENOSPC), through the same code paths."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import SHARED

from tasks.tables import PAIRS, file_sha256, read_table, write_table

ROOT = Path(__file__).resolve().parents[2]
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2)
from tasks.errors import AuthorbotError
try:
    exec(sys.stdin.read())
except AuthorbotError as exc:
    print(exc)
    sys.exit(1)
"""


def with_full_disk(code: str, limit: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", LIMITED, str(limit)], input=code, capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def pairs(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "book_id": [1] * n,
            "conversation_id": range(n),
            "prompt_index": range(n),
            "prompt": [f"Is it true, {i}? " * 20 for i in range(n)],
            "response": ["It is. " * 30] * n,
            "prompt_speaker": [""] * n,
            "response_speaker": [""] * n,
        }
    )


def test_a_table_or_json_export_that_cannot_be_written_leaves_the_old_one(tmp_path):
    table, exported = tmp_path / "03_pairs/1.parquet", tmp_path / "out/report.md"
    good = write_table(pairs(10), table, PAIRS)
    exported.parent.mkdir()
    exported.write_text("the report of the last good run")
    code = f"""
import os
import pandas as pd
from pathlib import Path
from tasks.tables import PAIRS, write_table, write_atomically
frame = pd.concat([pd.read_parquet({str(table)!r})] * 500, ignore_index=True)
frame["response"] = [os.urandom(200).hex() for _ in range(len(frame))]  # 2 MB that does not compress
try:
    write_table(frame, Path({str(table)!r}), PAIRS)
except AuthorbotError as exc:
    print(exc)
write_atomically(Path({str(exported)!r}), lambda tmp: tmp.write_text("x" * 200_000))
"""
    done = with_full_disk(code, limit=100_000)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith(f"{table}: could not write it (") and "File too large" in first
    assert first.endswith(
        "; free some disk space or choose another folder (the previous version, if any, is unchanged)"
    )
    assert second.startswith(f"{exported}: could not write it") and second.endswith("is unchanged)")
    assert good.intact() and len(read_table(table, PAIRS)) == 10
    assert exported.read_text() == "the report of the last good run"
    assert sorted(p.name for p in table.parent.iterdir()) == ["1.parquet"]  # no temporary file left


def test_a_model_that_cannot_be_saved_leaves_the_last_saved_one(tmp_path):
    code = f"""
from pathlib import Path
from tasks.model import load_model, load_tokenizer
from tasks.runs import save_model_dir
tokenizer = load_tokenizer({str(SHARED / "gpt2-tokenizer")!r})
save_model_dir(load_model("scratch:tiny", tokenizer), tokenizer, Path({str(tmp_path / "model")!r}))
"""
    assert with_full_disk(code, limit=1 << 30).returncode == 0
    weights = tmp_path / "model/tf_model.h5"
    saved = file_sha256(weights)
    done = with_full_disk(code.replace("scratch:tiny", "scratch:small"), limit=20_000_000)  # small: 64 MB
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.strip().startswith(f"{tmp_path / 'model'}: could not write it")
    assert file_sha256(weights) == saved and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
