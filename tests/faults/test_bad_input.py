"""Fault matrix, bad input: each case ends with one line naming the problem and the fix, a
non-zero exit, and no traceback; names from the command line never leave the data directory.
The runs that reach the flow talk to one real Prefect server (fast) instead of starting their own."""

import os
import subprocess
import sys

import pytest
from conftest import GUTENBERG

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def authorbot(env: dict, cwd, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=env | {"PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"},
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (d / "quiet.txt").write_text("It was a quiet day. Nobody spoke at all.\n\nThe end.\n")
    (d / "latin1.txt").write_bytes("«Bonjour», dit-il. «Oui, ça va», répondit-elle.\n".encode("latin-1"))
    mirror = d / "mirror/cache/epub"  # a book without dialogue, in a mirror of its own
    (mirror / "feeds").mkdir(parents=True)
    (mirror / "feeds/pg_catalog.csv").write_text(
        "Text#,Type,Issued,Title,Language,Authors,Subjects,LoCC,Bookshelves\n"
        '9001,Text,2020-01-01,Quiet Days,en,"Silent, Sam, 1900-1980",,,\n'
    )
    (mirror / "9001").mkdir()
    (mirror / "9001/pg9001.txt").write_text("QUIET DAYS\n\n" + "Nothing was said that day. " * 400)
    (d / "run/model").mkdir(parents=True)  # a run's --out folder, given where its model/ is meant
    (d / "run/model/config.json").write_text('{"model_type": "gpt2"}')
    return d


CASES = [  # (arguments, the line expected; {f} is the inputs folder)
    (["extract", "{f}/empty.txt"], "authorbot: {f}/empty.txt: empty file; give the path of a plain-text book"),
    (["extract", "{f}/binary.txt"], "authorbot: {f}/binary.txt: binary data, not a plain-text book; check the book id or file"),
    (["pairs", "{f}/quiet.txt"], "authorbot: {f}/quiet.txt: no dialogue found (no quoted speech, dash-opened lines or play headings); is it a novel?"),
    (["run", "--book", "1342", "--epochs", "-1"], "authorbot: --epochs -1: must be at least 1"),
    (["run", "--book", "1342", "--batch-size", "0"], "authorbot: --batch-size 0: must be at least 1"),
    (["run", "--book", "1342", "--max-pairs", "-5"], "authorbot: --max-pairs -5: must be at least 0"),
    (["run", "--book", "1342", "--learning-rate", "-0.1"], "authorbot: --learning-rate -0.1: must be at least 0"),
    (["run", "--book", "1342", "--prompts", "{f}/nope.txt"], "authorbot: --prompts {f}/nope.txt: no such file; give a text file with one prompt per line"),
    (["run", "--book", "1342", "--model", "scratch:huge", "--mirror", str(GUTENBERG), "--data-dir", "{f}/data"], "authorbot: --model scratch:huge: unknown size; choose one of scratch:tiny, scratch:small"),
    (["chat", "{f}", "--temperature", "-1"], "authorbot: --temperature -1.0: must be at least 0"),
    (["chat", "{f}", "--no-repeat-ngram", "1"], "authorbot: --no-repeat-ngram 1: would forbid any token twice; use 2 or more, or 0 for off"),
    (["serve", "{f}", "--port", "70000"], "authorbot: --port 70000: must be between 1 and 65535"),
    (["serve", "{f}/nowhere"], "authorbot: {f}/nowhere: no such model directory; give the model folder a run wrote (OUT/model) or any save_pretrained GPT-2 folder"),
    (["chat", "{f}/nowhere"], "authorbot: {f}/nowhere: no such model directory; give the model folder a run wrote (OUT/model) or any save_pretrained GPT-2 folder"),
    (["chat", "{f}"], "authorbot: {f}: no config.json, so not a saved model; give the model folder a run wrote (OUT/model) or any save_pretrained GPT-2 folder"),
    (["chat", "{f}/run"], "authorbot: {f}/run: a run's output folder, not its model; give {f}/run/model"),
    (["chat", "{f}/mirror", "--prompts", "{f}/nope.txt"], "authorbot: --prompts {f}/nope.txt: no such file; give a text file with one prompt per line"),
    (["dataset", "--book", "-3"], "authorbot: --book -3: Gutenberg ids are positive integers"),
    (["dataset", "--book", "99999999", "--mirror", str(GUTENBERG), "--data-dir", "{f}/data"], "authorbot: books-99999999: none of the 1 books could be had from " + str(GUTENBERG) + "; check the mirror or the book ids"),
    (["dataset", "--author", "Jane Austen", "--language", "fr", "--mirror", str(GUTENBERG), "--data-dir", "{f}/data"], None),
    (["dataset", "--author", "Sam Silent", "--mirror", "{f}/mirror", "--data-dir", "{f}/data"], "authorbot: sam-silent: no dialogue found in any of the 1 books"),
]  # fmt: skip


@pytest.mark.parametrize("args, expected", CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_bad_input_is_one_line_naming_problem_and_fix(args, expected, files, prefect_server):
    f = str(files)
    line = one_line_error(authorbot(prefect_server, files, *[a.replace("{f}", f) for a in args]))
    if expected is None:  # the wording comes from the catalog: check its gist
        assert line.startswith("authorbot: ") and "fr" in line and "Austen" in line
    else:
        assert line == expected.replace("{f}", f)


def test_a_text_in_latin1_is_read_not_refused(files, prefect_server):
    done = authorbot(prefect_server, files, "extract", str(files / "latin1.txt"))
    assert done.returncode == 0 and '"text": "Bonjour Oui, ça va"' in done.stdout


@pytest.mark.parametrize("author", ["../../escape", "/etc/passwd", "x" * 5000])
def test_names_never_leave_the_data_directory(author, tmp_path, prefect_server):
    data = tmp_path / "data"
    done = authorbot(
        prefect_server,
        tmp_path,
        "dataset",
        "--author",
        author,
        "--book",
        "1342",
        "--mirror",
        str(GUTENBERG),
        "--data-dir",
        str(data),
    )
    one_line_error(done)  # no such author in the catalog
    outside = [p for p in tmp_path.rglob("*") if not p.is_relative_to(data)]
    assert outside == [] and all(len(p.name) <= 80 for p in data.rglob("*"))
