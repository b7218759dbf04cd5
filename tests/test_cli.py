"""The `authorbot` command as a person runs it: output on stdout, one clear line on bad input."""

import json
import subprocess
import sys

from conftest import GUTENBERG


def authorbot(*args: str, home, server: dict | None = None) -> subprocess.CompletedProcess:
    env_home = {"PREFECT_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    if server:  # a running Prefect server instead of a temporary one
        env_home |= {"PREFECT_HOME": server["PREFECT_HOME"], "PREFECT_API_URL": server["PREFECT_API_URL"]}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env_home, timeout=300
    )


def test_extract_and_pairs_print_json_lines(tmp_path):
    book = GUTENBERG / "variants/1342_austen_pride-and-prejudice_2018-ascii.txt"
    extracted = authorbot("extract", str(book), home=tmp_path)
    utterances = [json.loads(line) for line in extracted.stdout.splitlines()]
    assert extracted.returncode == 0 and len(utterances) > 1000
    assert utterances[0]["text"] == "My dear Mr. Bennet, have you heard that Netherfield Park is let at last?"
    assert {"text", "start", "end", "speaker"} <= set(utterances[0])
    paired = authorbot("pairs", str(book), home=tmp_path)
    pairs = [json.loads(line) for line in paired.stdout.splitlines()]
    assert paired.returncode == 0 and len(pairs) > 1000 and {"prompt", "response"} <= set(pairs[0])


def test_bad_input_is_one_line_and_exit_1(tmp_path):
    cases = [
        (
            ["extract", str(tmp_path / "nope.txt")],
            f"authorbot: {tmp_path}/nope.txt: no such file; give the path of a plain-text book",
        ),
        (
            ["dataset", "--author", "Jane Austen", "--mirror", str(tmp_path / "nowhere")],
            f"authorbot: --mirror '{tmp_path}/nowhere': not an http(s) URL nor an existing directory; "
            "give a URL like https://www.gutenberg.org or a mirror folder",
        ),
        (["dataset"], "authorbot: no books asked for: give --author NAME or --book ID"),
        (["dataset", "--book", "11", "--max-books", "-1"], "authorbot: --max-books -1: must be at least 0"),
    ]
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 10)
    cases.append(
        (
            ["extract", str(binary)],
            f"authorbot: {binary}: binary data, not a plain-text book; check the book id or file",
        )
    )
    for args, message in cases:
        result = authorbot(*args, home=tmp_path)
        assert (result.returncode, result.stderr.strip().splitlines()[-1]) == (1, message), args
        assert "Traceback" not in result.stderr


def test_unknown_author_through_the_flow(tmp_path, prefect_server):
    result = authorbot(
        "dataset",
        "--author",
        "Jane Austin",
        "--mirror",
        str(GUTENBERG),
        "--data-dir",
        str(tmp_path / "data"),
        home=tmp_path,
        server=prefect_server,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("authorbot:")]
    assert errors == ["authorbot: author 'Jane Austin' is not in the catalog; closest: 'Jane Austen'"]
