"""`authorbot serve` as its users meet it: a live server on loopback, the official `openai` client,
raw HTTP for what a client library would not send, and many clients at once."""

import json
import os
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from conftest import API_KEY, ENDLESS, ORIGIN, ROOT, TOKENIZER

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)


def ask(text: str) -> list[dict]:
    return [{"role": "system", "content": "You are Elizabeth."}, {"role": "user", "content": text}]


def test_health_is_503_while_loading_then_the_model_is_listed(server, client):
    assert 503 in server.statuses and server.statuses[-1] == 200
    assert [m.id for m in client.models.list().data] == ["austen"]  # DIR/model is served as DIR's name
    assert "ready; open http://127.0.0.1:" in server.log()


def test_a_plain_and_a_streamed_completion_through_the_openai_client(client):
    messages = ask("Good morning, Mr. Darcy. How do you do?")
    plain = client.chat.completions.create(model="austen", messages=messages, max_tokens=24, seed=5)
    text = plain.choices[0].message.content
    assert plain.object == "chat.completion" and plain.choices[0].message.role == "assistant"
    assert text.strip() and "<|endoftext|>" not in text and plain.choices[0].finish_reason in ("stop", "length")
    assert 0 < plain.usage.completion_tokens <= 24 and plain.usage.total_tokens > plain.usage.completion_tokens

    chunks = list(client.chat.completions.create(model="austen", messages=messages, max_tokens=24, seed=5, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text  # same seed, same reply
    assert chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason
    assert len([c for c in chunks if c.choices[0].delta.content]) > 1  # it came in pieces

    long = client.chat.completions.create(model="austen", messages=messages, max_tokens=7, logit_bias=ENDLESS)
    assert long.choices[0].finish_reason == "length" and long.usage.completion_tokens == 7


def test_n_replies_to_one_request_plain_and_streamed(client):
    common = dict(model="austen", messages=ask("Shall we dance?"), max_tokens=12, seed=3, logit_bias=ENDLESS)
    one = client.chat.completions.create(**common)
    three = client.chat.completions.create(**common, n=3)
    texts = [c.message.content for c in three.choices]
    assert [c.index for c in three.choices] == [0, 1, 2] and texts[0] == one.choices[0].message.content
    assert len(set(texts)) == 3  # each reply its own draw
    assert three.usage.prompt_tokens == one.usage.prompt_tokens and three.usage.completion_tokens == 3 * 12

    chunks = list(client.chat.completions.create(**common, n=3, stream=True, stream_options={"include_usage": True}))
    streamed = ["", "", ""]
    for c in chunks[:-1]:
        streamed[c.choices[0].index] += c.choices[0].delta.content or ""
    assert streamed == texts  # the same seed, the same three replies
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3 * 12


def test_messages_speak_under_their_names_and_the_bot_as_its_last_assistants(client):
    def prompt_tokens(messages: list[dict]) -> int:
        reply = client.chat.completions.create(model="austen", messages=messages, max_tokens=2)
        return reply.usage.prompt_tokens

    plain = [{"role": "assistant", "content": "Well?"}, {"role": "user", "content": "Nothing."}]
    named = [{**plain[0], "name": "Mr. Bennet"}, {**plain[1], "name": "Mrs. Bennet"}]
    # "Mr. Bennet:" before the bot's old turn and before its reply, "Mrs. Bennet:" before the user's
    assert prompt_tokens(named) == prompt_tokens(plain) + 3 * 5  # each name is 5 tokens

    chunks = list(client.chat.completions.create(model="austen", messages=named, max_tokens=4, stream=True))
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_history_longer_than_the_context_is_trimmed_not_refused(client):
    turns = [
        {"role": "user" if i % 2 else "assistant", "content": f"This is turn {i} of a long talk."} for i in range(99)
    ]
    reply = client.chat.completions.create(model="austen", messages=turns, max_tokens=10)
    assert reply.choices[0].message.content and reply.usage.prompt_tokens <= 256 - 10


def test_a_stop_string_ends_the_reply_and_is_never_streamed_in_part(client):
    common = dict(
        model="austen", messages=ask("Tell me about Netherfield."), max_tokens=30, temperature=0, logit_bias=ENDLESS
    )
    full = client.chat.completions.create(**common).choices[0].message.content
    stop = full[len(full) // 2 : len(full) // 2 + 4]
    assert len(full) > 20 and full.index(stop) > 0
    cut = client.chat.completions.create(**common, stop=[stop])
    assert cut.choices[0].message.content == full[: full.index(stop)] and cut.choices[0].finish_reason == "stop"
    pieces = [
        c.choices[0].delta.content or "" for c in client.chat.completions.create(**common, stop=stop, stream=True)
    ]
    assert "".join(pieces) == full[: full.index(stop)]


def test_bad_requests_get_openai_errors_and_no_traceback(server, client):
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="austen", messages=ask("Hello"), max_tokens=-1)
    assert bad.value.status_code == 400 and bad.value.body["param"] == "max_tokens"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=ask("Hello"))
    url = f"{server.url}/v1/chat/completions"
    cases = [
        (b"{not json", 400, None),
        (json.dumps({"model": "austen"}).encode(), 400, "messages"),
        (json.dumps({"messages": []}).encode(), 400, "messages"),
        (json.dumps({"messages": "Hello"}).encode(), 400, "messages"),
        (json.dumps({"messages": [{"role": "user", "content": 42}]}).encode(), 400, "messages.0.content"),
        (json.dumps({"messages": [{"role": "narrator", "content": "Hi"}]}).encode(), 400, "messages.0.role"),
        (json.dumps({"messages": ask("Hi"), "max_tokens": "many"}).encode(), 400, "max_tokens"),
        (json.dumps({"messages": ask("Hi"), "max_tokens": 10**9}).encode(), 400, "max_tokens"),
        (json.dumps({"messages": ask("Hi"), "temperature": -1}).encode(), 400, "temperature"),
        (json.dumps({"messages": ask("Hi"), "n": 9}).encode(), 400, "n"),
        (json.dumps({"messages": ask("x" * 2_000_000)}).encode(), 413, None),
    ]
    for body, status, param in cases:
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"} | AUTH)
        error = answer.json()["error"]
        assert (answer.status_code, error["param"]) == (status, param), body[:80]
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert "Traceback" not in server.log() and " 500 " not in server.log()


def stream_one(
    url: str, results: list, index: int, max_tokens: int, started: threading.Event | None = None, **settings
) -> None:
    """One streaming client: records (status, finish reason, [DONE] seen, text). settings: more of the body."""
    body = {"messages": ask(f"Question number {index}?"), "stream": True, "max_tokens": max_tokens}
    body |= {"logit_bias": ENDLESS} | settings
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=120) as response:
        if started:
            started.set()
        if response.status_code != 200:
            results[index] = (response.status_code, response.headers.get("retry-after"), False, "")
            return
        reason, done, text = None, False, ""
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                choice = json.loads(line[6:])["choices"][0]
                text += choice["delta"].get("content") or ""
                reason = choice["finish_reason"] or reason
        results[index] = (200, reason, done, text)


def test_a_reply_holding_a_unicode_line_break_streams_in_whole_lines(server):
    """U+2028 (bytes e2 80 a8, one GPT-2 token each) ends a line for httpx's line splitter, but not a
    server-sent event: the stream escapes it."""
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    from tasks.model import load_tokenizer

    tokenizer, alphabet = load_tokenizer(TOKENIZER), bytes_to_unicode()
    lead, middle, last = (tokenizer.convert_tokens_to_ids(alphabet[b]) for b in (0xE2, 0x80, 0xA8))
    word = tokenizer.encode("Yes")[0]
    # greedy: "Yes", then (its repetition penalised) the lead byte, then the only bytes that may follow
    # it, the second ("\x80" again is penalised below "\xa8" in the third place)
    results = [None]
    bias = {word: 100, lead: 90, middle: 80, last: 70}
    stream_one(server.url, results, 0, 4, temperature=0, repetition_penalty=1.2, logit_bias=bias)
    assert results[0][:3] == (200, "length", True) and "Yes\u2028" in results[0][3]


def test_sixteen_streaming_clients_all_finish_and_a_seventeenth_is_told_to_retry(server):
    results: list = [None] * 17
    started = [threading.Event() for _ in range(16)]
    threads = [threading.Thread(target=stream_one, args=(server.url, results, i, 120, started[i])) for i in range(16)]
    for t in threads:
        t.start()
    assert all(e.wait(60) for e in started)  # all 16 accepted: the queue (16) is full
    stream_one(server.url, results, 16, 5)
    for t in threads:
        t.join(180)
    assert results[16][:2] == (503, "2")
    assert all(r[:3] == (200, "length", True) and r[3].strip() for r in results[:16]), results


def test_a_client_that_leaves_mid_stream_frees_the_model(server, client):
    before = server.health()
    body = {"messages": ask("Tell me a long story."), "stream": True, "max_tokens": 200, "logit_bias": ENDLESS}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=AUTH, timeout=60) as response:
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]  # the role chunk and a few words, then hang up
    assert sum(line.startswith("data: ") for line in got) == 3
    deadline = time.monotonic() + 30
    while server.health()["cancelled"] == before["cancelled"]:
        assert time.monotonic() < deadline, "the abandoned reply was not stopped"
        time.sleep(0.1)
    assert server.health()["queue"] == 0
    reply = client.chat.completions.create(model="austen", messages=ask("Still there?"), max_tokens=5)
    assert reply.choices[0].message.content


def test_the_api_key_cors_and_the_network_warning(server, client):
    assert "the bot is now reachable from the network" in server.log()  # it listens on 0.0.0.0
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
    keyless = httpx.post(f"{server.url}/v1/chat/completions", json={"messages": ask("Hello")})
    assert keyless.status_code == 401 and keyless.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server.url}/health").status_code == 200  # the page and health need no key

    def preflight(origin: str) -> httpx.Response:
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        return httpx.options(f"{server.url}/v1/chat/completions", headers=headers)

    assert preflight(ORIGIN).headers.get("access-control-allow-origin") == ORIGIN
    assert "access-control-allow-origin" not in preflight("http://elsewhere.example").headers


def test_a_port_in_use_is_one_line(tiny_model, server):  # by default it listens on 127.0.0.1, taken too
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "serve", str(tiny_model), "--port", str(server.port)],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"authorbot: --host 127.0.0.1 --port {server.port}: cannot listen there (Address already in use); "
        "choose another --port"
    )
