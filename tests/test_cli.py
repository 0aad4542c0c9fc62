"""Every command as a subprocess (``python -m holysse ...``) against servers on
127.0.0.1 started here: a FakeServer, a closed port, a server answering 401,
one answering an HTML page. Checks stdout, stderr and exit codes."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import holysse
from holysse.testing import FakeServer, Fault

KEY = "hs_" + "Ab12" * 9
WRONG_KEY = "hs_" + "Zz98" * 9
PROMPT = "Tell me about streams."
SVG = "{http://www.w3.org/2000/svg}"


def cli_env(**extra: str) -> dict[str, str]:
    """The environment without keys, base URLs or proxies of the machine."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("HOLYSHEEP_") and not k.lower().endswith("_proxy")}
    env.update({"NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}, **extra)
    return env


def run(*args: str, key: str | None = None, stdin: str | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = cli_env(HOLYSHEEP_API_KEY=key) if key else cli_env()
    return subprocess.run([sys.executable, "-m", "holysse", *args], input=stdin, capture_output=True, text=True,
                          encoding="utf-8", env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL if stdin is None else None)


def chat_body(*messages: dict[str, str]) -> dict[str, Any]:
    return {"model": "fake-1", "messages": list(messages) or [{"role": "user", "content": PROMPT}]}


@pytest.fixture
def keyed() -> Iterator[FakeServer]:
    with FakeServer(answer_chars=500, api_key=KEY) as srv:
        yield srv


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class _HTMLHandler(http.server.BaseHTTPRequestHandler):
    page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Portal</body></html>"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HTMLHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join(5)


def failing_url(target: str, request: pytest.FixtureRequest) -> str:
    """A base URL that fails: a closed port, a server answering 401 (to the
    wrong key), or one answering an HTML page."""
    if target == "closed":
        return str(request.getfixturevalue("closed_port"))
    if target == "401":
        return str(request.getfixturevalue("keyed").url)
    return str(request.getfixturevalue("html_server"))


# -- chat -------------------------------------------------------------------------


def test_chat_prints_exactly_the_answer_on_stdout_across_a_cut(keyed: FakeServer) -> None:
    keyed.set_faults([Fault.rst(keyed.event_offsets(chat_body())[40] + 7)])
    result = run("chat", PROMPT, "--model", "fake-1", "--base-url", keyed.url, key=KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout == keyed.expected_text(chat_body()) + "\n"
    assert "resumed by cursor" in result.stderr
    assert re.search(r"\d+ tokens · TTFT [\d.]+ ms", result.stderr)
    assert KEY not in result.stdout + result.stderr


def test_chat_json_reads_the_prompt_from_stdin(keyed: FakeServer) -> None:
    result = run("chat", "--json", "--model", "fake-1", "--base-url", keyed.url, "--max-tokens", "12",
                 key=KEY, stdin=PROMPT)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds.count("text_delta") == 12 and kinds[-3:] == ["finished", "usage", "metrics"]
    body = {**chat_body(), "max_tokens": 12}
    assert "".join(line["text"] for line in lines if line["type"] == "text_delta") == keyed.expected_text(body)
    assert lines[-3]["reason"] == "length" and lines[-1]["text_events"] == 12 and lines[-1]["error"] is None
    assert keyed.requests[0].body["messages"] == [{"role": "user", "content": PROMPT}]


@pytest.mark.parametrize("target", ["closed", "401", "html"])
def test_chat_failures_are_one_clear_line(target: str, request: pytest.FixtureRequest) -> None:
    url = failing_url(target, request)
    result = run("chat", PROMPT, "--base-url", url, "--retries", "0", key=WRONG_KEY)
    assert result.returncode == 1
    assert result.stdout == ""
    message = result.stderr.strip().splitlines()[-1]
    expected = {"closed": "Could not connect", "401": "HOLYSHEEP_API_KEY", "html": "not text/event-stream"}[target]
    assert message.startswith("holysse: ") and expected in message, result.stderr
    assert WRONG_KEY not in result.stderr


class _Reader:
    """Collects a pipe's bytes in a thread; waits are bounded and event-driven."""

    def __init__(self, pipe: Any) -> None:
        self.data = b""
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: Any) -> None:
        while chunk := os.read(pipe.fileno(), 4096):
            with self._changed:
                self.data += chunk
                self._changed.notify_all()

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = 15) -> bytes:
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self.data), timeout), self.data
            return self.data

    def join(self) -> None:
        self._thread.join(10)


class _Process:
    """``python -m holysse ARGS`` with pipes read by :class:`_Reader`\\ s;
    on exit the process is ended (killed if still running) and every pipe
    closed."""

    def __init__(self, *args: str, key: str | None = None) -> None:
        env = cli_env(HOLYSHEEP_API_KEY=key) if key else cli_env()
        self.proc = subprocess.Popen([sys.executable, "-m", "holysse", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.out, self.err = _Reader(self.proc.stdout), _Reader(self.proc.stderr)

    def __enter__(self) -> tuple[subprocess.Popen[bytes], _Reader, _Reader]:
        return self.proc, self.out, self.err

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.out.join()
        self.err.join()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def test_interactive_chat_ctrl_c_stops_the_answer_and_ctrl_d_exits(keyed: FakeServer) -> None:
    # The first answer stalls halfway (until the client closes); the second is whole.
    keyed.set_faults([Fault.stall(keyed.event_offsets(chat_body())[30] + 3), None])
    with _Process("chat", "-i", "--model", "fake-1", "--base-url", keyed.url, key=KEY) as (proc, out, err):
        assert proc.stdin is not None
        proc.stdin.write(f"{PROMPT}\n".encode())
        proc.stdin.flush()
        out.wait_for(lambda data: len(data) > 0)  # the answer is streaming
        proc.send_signal(signal.SIGINT)
        err.wait_for(lambda data: b"stopped after" in data)
        proc.stdin.write(b"And then?\n")
        proc.stdin.flush()
        err.wait_for(lambda data: b"finish: stop" in data)
        proc.stdin.close()  # Ctrl-D
        assert proc.wait(15) == 0
    first, second = keyed.requests[0].body, keyed.requests[1].body
    partial = second["messages"][1]["content"]
    assert second["messages"] == [first["messages"][0], {"role": "assistant", "content": partial},
                                  {"role": "user", "content": "And then?"}]
    assert partial and keyed.expected_text(first).startswith(partial) and partial != keyed.expected_text(first)
    assert out.data.decode() == f"{partial}\n{keyed.expected_text(second)}\n"


# -- check ----------------------------------------------------------------------


def test_check_passes_against_a_working_server(keyed: FakeServer) -> None:
    result = run("check", "--base-url", keyed.url, key=KEY)
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    for step in ("key", "dns", "connect", "first byte", "models", "stream"):
        assert any(line.startswith(f"✓ {step} ") for line in lines), (step, result.stdout)
    assert "hs_Ab12…Ab12 (from HOLYSHEEP_API_KEY)" in result.stdout and KEY not in result.stdout
    assert "3 listed: fake-1, fake-large, demo-model" in result.stdout
    assert lines[-1] == "ok: streaming works from here."
    # The probe sent no key; the client's /models and the test stream did.
    probes = [r for r in keyed.requests if r.header("User-Agent", "").endswith(" check")]
    assert len(probes) == 1 and probes[0].header("Authorization") is None
    assert [r.path for r in keyed.requests if r.header("Authorization") == f"Bearer {KEY}"] == [
        "/v1/models", "/v1/chat/completions"]


@pytest.mark.parametrize("target", ["closed", "401", "html"])
def test_check_diagnoses_each_failure_in_one_line(target: str, request: pytest.FixtureRequest) -> None:
    url = failing_url(target, request)
    result = run("check", "--base-url", url, "--timeout", "5s", key=WRONG_KEY)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    step, diagnosis, advice = {
        "closed": ("connect", "refused the connection", "is the server running"),
        "401": ("models", "401: the key was refused", "check HOLYSHEEP_API_KEY"),
        "html": ("models", "with an HTML page, not the API", "ends in /v1"),
    }[target]
    assert failed[0].startswith(f"✗ {step} ") and diagnosis in failed[0] and "→ " in failed[0], result.stdout
    assert advice in failed[0].split("→ ", 1)[1]
    assert result.stdout.splitlines()[-1].startswith("not ready: ")
    assert WRONG_KEY not in result.stdout + result.stderr


# -- bench ----------------------------------------------------------------------


class _Document(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.external += [v for k, v in attrs if k in ("src", "href") and v]


def test_bench_fake_writes_json_and_an_html_report_with_svg_charts(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = run("bench", "--fake", "-n", "12", "-c", "4", "--chars", "300", "--ttfb", "20ms",
                 "--faults", "fin,rst", "--fault-rate", "0.4", "--fault-seed", "1",
                 "--target-ttfb", "10ms", "--json", "--html", str(report))
    assert result.returncode == 1, result.stderr  # every TTFB (>= 20 ms) misses the 10 ms target
    assert "12/12 streams" in result.stderr
    [model] = json.loads(result.stdout)["models"]
    assert model["model"] == "fake-1" and model["streams"] == model["completed"] == 12
    assert model["reconnects"]["total"] >= 1 and model["errors"] == {}
    assert model["ttfb"]["min"] >= 0.02 and model["ttfb"]["p50"] <= model["ttfb"]["p99"] <= model["ttfb"]["max"]
    assert model["target_ttfb"] == {"seconds": 0.01, "streams_missed": 12, "over": ["min", "p50", "p90", "p99", "max"]}

    page = report.read_text(encoding="utf-8")
    document = _Document()
    document.feed(page)
    assert document.tags[:3] == ["html", "head", "meta"] and document.external == []
    svgs = [ET.fromstring(chunk) for chunk in re.findall(r"<svg\b.*?</svg>", page, re.S)]
    assert len(svgs) == document.tags.count("svg") == 3
    histograms = [svg for svg in svgs if svg.get("class") == "histogram"]
    timeline = next(svg for svg in svgs if svg.get("class") == "timeline")
    for histogram in histograms:
        bars = [rect for rect in histogram.iter(f"{SVG}rect") if "bar" in rect.get("class", "")]
        assert sum(int(bar.get("data-count", 0)) for bar in bars) == 12
        assert all(float(bar.get("height", 0)) > 0 for bar in bars)
    ttfb_bars = [r for r in histograms[0].iter(f"{SVG}rect") if "bar" in r.get("class", "")]
    assert all("miss" in bar.get("class", "") for bar in ttfb_bars)
    lanes = [path for path in timeline.iter(f"{SVG}path") if path.get("class") == "lane"]
    assert len(lanes) == 12
    for lane in lanes:
        assert lane.get("d", "").count("M") == int(lane.get("data-tokens", 0)) > 0


def test_bench_prints_a_table_per_model(server: FakeServer) -> None:
    result = run("bench", "--base-url", server.url, "-m", "fake-1", "-m", "fake-large", "-n", "4", "-c", "2")
    assert result.returncode == 0, result.stderr
    for model in ("fake-1", "fake-large"):
        assert re.search(rf"^{model} · 4 streams · concurrency 2 · [\d.]+ s wall · 4 ok, 0 failed$",
                         result.stdout, re.M)
    assert re.search(r"^\s+min\s+p50\s+p90\s+p99\s+max\s+stdev$", result.stdout, re.M)
    assert len(re.findall(r"^TTFT(\s+[\d.]+ ms){6}$", result.stdout, re.M)) == 2
    assert result.stdout.count("cost        unknown") == 2
    assert {r.body["model"] for r in server.requests} == {"fake-1", "fake-large"} and len(server.requests) == 8


# -- serve and demo -----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_until_a_signal_then_releases_the_port(sig: int) -> None:
    with _Process("serve", "--port", "0", "--chars", "200") as (proc, out, err):
        url = out.wait_for(lambda data: data.endswith(b"\n")).decode().strip()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        body = {**chat_body(), "seed": 5}
        with holysse.Client(api_key="any", base_url=url) as client:
            text = client.stream(**body).final().text
        with FakeServer(answer_chars=200) as reference:
            assert text == reference.expected_text(body)
        proc.send_signal(sig)
        assert proc.wait(15) == 0
    assert "POST /v1/chat/completions model=fake-1 → no fault" in err.data.decode()
    assert err.data.decode().rstrip().endswith("stopped; port released.")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
