"""The pieces behind the commands, in-process: key masking, durations, fault
options, the network probe (on 127.0.0.1), Client.models(), the SVG charts."""

from __future__ import annotations

import argparse
import socket
import threading
import xml.etree.ElementTree as ET
from typing import Iterator

import pytest

import holysse
from holysse.commands.chat import event_json
from holysse.commands.check import diagnose, key_step
from holysse.commands.common import mask_key, parse_duration, request_body
from holysse.commands.fake import RandomFaults, parse_faults
from holysse.commands.netprobe import probe
from holysse.commands.report import histogram_svg, timeline_svg
from holysse.monitor import StreamSample
from holysse.testing import FakeServer

from .conftest import CHAT

KEY = "hs_" + "q" * 28 + "1234"


def test_mask_key_shows_at_most_the_ends() -> None:
    assert mask_key(KEY) == "hs_qqqq…1234"
    assert mask_key("sk-" + "x" * 30 + "9876") == "sk-x…9876"
    assert mask_key("hs_short") == "hs_… (8 characters)"
    assert mask_key(None) == "(none)"


@pytest.mark.parametrize("key, ok", [
    (KEY, True),
    ("hs_" + "a1" * 16, True),
    ("hs_" + "a" * 31, False),           # too short
    ("hs_" + "a" * 31 + "-", False),     # not a letter or digit
    ("sk-" + "a" * 40, False),           # another provider's key
])
def test_key_step_checks_the_holysheep_shape(key: str, ok: bool) -> None:
    step = key_step("https://api.holysheep.ai/v1", key)
    assert step.ok is ok
    assert key not in step.detail and mask_key(key) in step.detail


def test_key_step_without_a_key() -> None:
    assert key_step("https://api.holysheep.ai/v1", None).ok is False
    assert key_step("http://localhost:8000/v1", None).ok is None  # local servers may need none
    assert key_step("http://localhost:8000/v1", "anything").ok is True


def test_parse_duration() -> None:
    assert parse_duration("50ms") == pytest.approx(0.05)
    assert parse_duration("1.5s") == 1.5 and parse_duration("2m") == 120 and parse_duration(".25") == 0.25
    for bad in ("fast", "-5ms", "5 h", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="50ms"):
            parse_duration(bad)


def test_parse_faults() -> None:
    assert parse_faults("fin, RST,429") == ("fin", "rst", "429")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown fault 'cut'"):
        parse_faults("fin,cut")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_faults("200")


def test_random_faults_hit_at_the_given_rate_inside_the_answer(server: FakeServer) -> None:
    seen: list[str] = []
    plan = RandomFaults(server, ("fin", "malformed", "503"), 0.5, seed=3,
                        on_request=lambda request, fault: seen.append(fault.kind if fault else "-"))
    request = holysse.testing.RecordedRequest("POST", "/v1/chat/completions", {}, {}, CHAT, b"", 0)
    ends = server.event_offsets(CHAT)
    faults = [plan(request) for _ in range(400)]
    hits = [fault for fault in faults if fault is not None]
    assert 150 < len(hits) < 250 and len(seen) == 400
    assert {fault.kind for fault in hits} == {"fin", "malformed_json", "status"}
    assert all(ends[0] <= f.at <= ends[-1] for f in hits if f.kind == "fin")
    assert all(0 <= f.at_event < len(ends) for f in hits if f.kind == "malformed_json")
    assert RandomFaults(server, (), 1.0)(request) is None


def test_request_body_per_dialect() -> None:
    history = [{"role": "user", "content": "Hi"}]
    chat = request_body("openai-chat", "m", history, system="Be brief.", max_tokens=5, temperature=0)
    assert chat == {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, *history],
                    "max_tokens": 5, "temperature": 0}
    assert request_body("anthropic", "m", history, system="S") == {
        "model": "m", "messages": history, "max_tokens": 4096, "system": "S"}
    assert request_body("openai-responses", "m", history, system="S", max_tokens=9) == {
        "model": "m", "input": history, "instructions": "S", "max_output_tokens": 9}


def test_event_json_names_and_fields() -> None:
    assert event_json(holysse.TextDelta("hé")) == {"type": "text_delta", "text": "hé"}
    assert event_json(holysse.Reconnecting(2, 0.5, "cut")) == {
        "type": "reconnecting", "attempt": 2, "delay": 0.5, "reason": "cut"}
    assert event_json(holysse.ToolCallDelta(0, "id", "f", "{"))["type"] == "tool_call_delta"


# -- the probe, on 127.0.0.1 ----------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield listener.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_probe_times_each_step_of_a_plain_http_server(server: FakeServer) -> None:
    steps = probe(server.url, 5.0)
    assert [(s.name, s.ok) for s in steps] == [("dns", True), ("connect", True), ("tls", None), ("first byte", True)]
    assert all(s.seconds is not None and s.seconds >= 0 for s in steps if s.ok)
    assert steps[-1].detail == "HTTP 200 OK to GET /v1/models (sent without the key)"
    assert server.requests[-1].header("Authorization") is None


def test_probe_diagnoses_a_silent_server(silent_port: int) -> None:
    last = probe(f"http://127.0.0.1:{silent_port}/v1", 0.3)[-1]
    assert (last.name, last.ok) == ("first byte", False)
    assert "accepted the connection but sent nothing within 0.3s" in last.detail and "try again" in last.advice


def test_probe_diagnoses_tls_to_a_plain_http_port(server: FakeServer) -> None:
    last = probe(server.url.replace("http://", "https://"), 5.0)[-1]
    assert (last.name, last.ok) == ("tls", False)
    assert "TLS handshake with 127.0.0.1 failed" in last.detail and "http://" in last.advice


def test_probe_diagnoses_a_dead_proxy() -> None:
    port = closed_port()
    steps = probe("https://api.example.invalid/v1", 2.0, proxy=f"http://user:secret@127.0.0.1:{port}")
    assert steps[0].name == "proxy" and f"127.0.0.1:{port}" in steps[0].detail and "secret" not in steps[0].detail
    assert (steps[-1].name, steps[-1].ok) == ("connect", False)
    assert "the proxy 127.0.0.1" in steps[-1].detail and "HTTPS_PROXY" in steps[-1].advice


def test_probe_does_not_time_a_socks_proxy() -> None:
    [step] = probe("https://api.example.invalid/v1", 1.0, proxy="socks5://127.0.0.1:1080")
    assert (step.name, step.ok) == ("proxy", None) and "not timed" in step.detail


def test_probe_through_a_proxy_that_refuses_the_tunnel() -> None:
    """A one-shot proxy answering CONNECT with 407; the probe reports it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        received: list[bytes] = []

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                received.append(conn.recv(4096))
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        steps = probe("https://api.example.invalid/v1", 2.0, proxy=f"http://127.0.0.1:{listener.getsockname()[1]}")
        thread.join(5)
    assert received[0].startswith(b"CONNECT api.example.invalid:443 HTTP/1.1\r\n")
    assert (steps[-1].name, steps[-1].ok) == ("tunnel", False)
    assert "wants credentials" in steps[-1].detail and "user:password@" in steps[-1].advice


# -- Client.models() --------------------------------------------------------------


def test_client_models_lists_ids_and_fails_clearly() -> None:
    with FakeServer(api_key=KEY) as srv:
        with holysse.Client(api_key=KEY, base_url=srv.url) as client:
            assert client.models() == ["fake-1", "fake-large", "demo-model"]
        assert srv.requests[-1].header("Authorization") == f"Bearer {KEY}"
        with holysse.Client(api_key=KEY[:-1] + "9", base_url=srv.url) as client:
            with pytest.raises(holysse.AuthenticationError) as info:
                client.models()
        assert info.value.status_code == 401 and KEY[:-1] not in str(info.value)
        assert diagnose(info.value) == ("401: the key was refused",
                                        "check HOLYSHEEP_API_KEY: it must be a valid key for this server")
        with holysse.Client(api_key=KEY, base_url=srv.url.replace("/v1", "/api")) as client:
            with pytest.raises(holysse.HTTPStatusError) as missing:
                client.models()
        assert missing.value.status_code == 404


@pytest.mark.parametrize("status, expected", [
    (403, ("403: the key may not do this", "check the key's permissions and the model name")),
    (404, ("404 Not Found", "the base URL usually ends in /v1; check it and the model name")),
    (429, ("429: rate limited", "wait a little and try again, or raise the key's rate limit")),
])
def test_check_diagnoses_error_statuses_of_a_real_stream(server: FakeServer, status: int,
                                                         expected: tuple[str, str]) -> None:
    server.set_faults([holysse.testing.Fault.status(status)])
    with holysse.Client(api_key=KEY, base_url=server.url, retry=False) as client:
        with pytest.raises(holysse.HolySSEError) as info:
            client.stream(**CHAT).final()
    assert diagnose(info.value) == expected


# -- the charts -------------------------------------------------------------------


def sample(started: float, ttfb: float, gaps: tuple[float, ...], error: str | None = None) -> StreamSample:
    return StreamSample(started, ttfb, ttfb + 0.001, ttfb + 0.001 + sum(gaps) + 0.001, gaps, len(gaps) + 1,
                        None, (), 0, 0, error, None)


def test_charts_are_valid_svg_with_their_data() -> None:
    samples = [sample(10.0 + i / 100, 0.005 * (i + 1), (0.001,) * (i + 2), "ReadTimeout" if i == 3 else None)
               for i in range(5)]
    histogram = ET.fromstring(histogram_svg([s.ttfb for s in samples if s.ttfb], "TTFB", target=0.012))
    bars = [r for r in histogram.iter("{http://www.w3.org/2000/svg}rect")]
    assert sum(int(bar.get("data-count", 0)) for bar in bars) == 5
    assert sum(1 for bar in bars if "miss" in bar.get("class", "")) == 3  # 15, 20 and 25 ms
    assert histogram.find("{http://www.w3.org/2000/svg}line[@class='target']") is not None
    never = StreamSample(10.2, None, None, 0.5, (), 0, None, (("retry", 2),), 0, 0, "ConnectError", None)
    timeline = ET.fromstring(timeline_svg([*samples, never], 10.0, target=0.012))
    lanes = [p for p in timeline.iter("{http://www.w3.org/2000/svg}path") if p.get("class") == "lane"]
    assert [lane.get("d", "").count("M") for lane in lanes] == [3, 4, 5, 6, 7, 0]
    assert len([line for line in timeline.iter("{http://www.w3.org/2000/svg}line")
                if line.get("class") == "span failed"]) == 2
    dots = [c.get("class") for c in timeline.iter("{http://www.w3.org/2000/svg}circle")]
    assert dots == ["ttfb", "ttfb", "ttfb miss", "ttfb miss", "ttfb miss"]
    for empty in (histogram_svg([], "TTFT"), timeline_svg([], 0.0)):
        assert "no data" in ET.fromstring(empty).findtext("{http://www.w3.org/2000/svg}title", "")


def test_notebook_display_needs_ipython_running() -> None:
    pytest.importorskip("IPython", reason="the notebook extra is not installed")
    from holysse.notebook import display

    with FakeServer(answer_chars=50) as srv, holysse.Client(api_key="k", base_url=srv.url) as client:
        stream = client.stream(**CHAT)
        with pytest.raises(holysse.UsageError, match="inside Jupyter or IPython"):
            display(stream)
        assert srv.requests == []  # nothing was read
