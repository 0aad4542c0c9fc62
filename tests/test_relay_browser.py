"""The Flask example in real Chromium (Playwright, system /usr/bin/chromium,
headless): the answer on the page survives a network cut and a reload, and
a diverged upstream replay (Reset) and stop() are handled by holysse.js."""

from __future__ import annotations

import contextlib
import importlib.util
from types import ModuleType
from typing import Any, Iterator

import pytest

import holysse
from holysse.relay import MemoryStore, Relay
from holysse.testing import FakeServer, Fault

from .relay_support import EXAMPLES, CutProxy, chromium, established, serve_wsgi, wait_until

pytestmark = pytest.mark.browser

ANSWER = "document.getElementById('answer')"
STATUS = "document.getElementById('status').dataset.status"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def example() -> ModuleType:
    pytest.importorskip("flask", reason="flask is not installed (pip install 'holysse[flask]')")
    spec = importlib.util.spec_from_file_location("holysse_example_flask_app", EXAMPLES / "flask_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Chat:
    """The example app behind a cuttable proxy, and a page showing it."""

    def __init__(self, page: Any, proxy: CutProxy, fake: FakeServer, relay: Relay) -> None:
        self.page, self.proxy, self.fake, self.relay = page, proxy, fake, relay

    def ask(self) -> None:
        self.page.goto(f"http://127.0.0.1:{self.proxy.port}/")
        self.page.click("#send")

    def wait_for_text(self, chars: int) -> None:
        self.page.wait_for_function(f"{ANSWER} && {ANSWER}.textContent.length >= {chars}", timeout=TIMEOUT_MS)

    def wait_for_status(self, status: str) -> None:
        self.page.wait_for_function(f"{STATUS} === '{status}'", timeout=TIMEOUT_MS)

    @property
    def text(self) -> str:
        return str(self.page.text_content("#answer"))

    @property
    def statuses(self) -> list[str]:
        return str(self.page.evaluate("document.body.dataset.seen || ''")).split()


@contextlib.contextmanager
def chat(browser: Any, example: ModuleType, *, fake: FakeServer, resume: str = "auto",
         max_streams_per_owner: int = 4, **defaults: Any) -> Iterator[Chat]:
    client = holysse.Client(api_key="hs_" + "k" * 32, base_url=fake.url, timeout=(2, 2), resume=resume,
                            retry=holysse.RetryPolicy(backoff_initial=0.01, backoff_max=0.02))
    relay = Relay(client, MemoryStore(), poll=0.1, retry_ms=200, max_streams_per_owner=max_streams_per_owner)
    app = example.create_app(relay, **(defaults or {"model": "fake-1", "seed": 5}))
    context = browser.new_context()
    try:
        with serve_wsgi(app) as base, CutProxy(int(base.rsplit(":", 1)[1])) as proxy:
            yield Chat(context.new_page(), proxy, fake, relay)
    finally:
        context.close()
        relay.close()
        client.close()


def test_a_network_cut_mid_answer_reconnects_by_itself_without_gap_or_duplicate(browser: Any,
                                                                                 example: ModuleType) -> None:
    with FakeServer(answer_chars=1500, token_delay=0.004) as fake, chat(browser, example, fake=fake) as page:
        page.ask()
        page.wait_for_text(150)
        assert page.proxy.cut() >= 1  # the browser's connection dies mid-answer
        shown_at_cut = len(page.text)
        page.wait_for_status("done")
        assert shown_at_cut < len(fake.answers[-1])
        assert page.text == fake.answers[-1]
        assert "reconnecting" in page.statuses
        assert len(fake.requests) == 1  # the upstream was never asked twice


def test_a_reload_mid_answer_shows_the_whole_answer_once(browser: Any, example: ModuleType) -> None:
    with FakeServer(answer_chars=1500, token_delay=0.004) as fake, chat(browser, example, fake=fake) as page:
        page.ask()
        page.wait_for_text(150)
        page.page.evaluate("window.beforeReload = true")
        page.page.reload()
        assert page.page.evaluate("window.beforeReload === undefined")  # a new page...
        page.wait_for_status("done")  # ...that resumed the stream
        assert page.text == fake.answers[-1]
        assert page.page.locator(".user").count() == 1 and page.page.locator(".assistant").count() == 1
        assert len(fake.requests) == 1


def test_a_reset_from_a_diverged_upstream_replay_replaces_the_text(browser: Any, example: ModuleType) -> None:
    with FakeServer(answer_chars=600, ids=False, resume=False, token_delay=0.001) as fake:
        fake.set_faults([Fault.fin(3000)])  # the upstream is cut; the replay (no seed) says something else
        with chat(browser, example, fake=fake, resume="replay", model="fake-1", temperature=1.0) as page:
            page.ask()
            page.wait_for_status("done")
            assert len(fake.answers) == 2 and fake.answers[0] != fake.answers[1]
            assert page.text == fake.answers[-1]


def test_another_session_is_refused_and_stop_cancels_the_upstream(browser: Any, example: ModuleType) -> None:
    with FakeServer(answer_chars=20_000, token_delay=0.01) as fake, chat(browser, example, fake=fake) as page:
        page.ask()
        page.wait_for_text(30)
        stream_id = page.page.evaluate("JSON.parse(sessionStorage.getItem('holysse:stream')).id")
        other = browser.new_context()  # another browser: other cookies, so another session
        try:
            intruder = other.new_page()
            intruder.goto(f"http://127.0.0.1:{page.proxy.port}/")
            intruder.evaluate("id => { window.s = HolySSE.follow(id, {base: 'holysse', remember: false}); }", stream_id)
            intruder.wait_for_function("window.s.status === 'error'", timeout=TIMEOUT_MS)
            assert intruder.evaluate("window.s.error.error") == "StreamForbidden"
            assert intruder.evaluate("window.s.text") == ""
        finally:
            other.close()
        page.page.click("#stop")
        page.wait_for_status("done")
        wait_until(lambda: established(fake.port) == 0, 5, "the upstream socket to close")
        assert len(page.text) < len(fake.answers[-1])


def test_a_session_past_its_stream_limit_sees_429_with_retry_after(browser: Any, example: ModuleType) -> None:
    with FakeServer(answer_chars=20_000, token_delay=0.01) as fake:
        with chat(browser, example, fake=fake, max_streams_per_owner=1) as page:
            page.ask()
            page.wait_for_text(30)  # one answer is being generated for this session
            page.page.evaluate("""() => { window.second = HolySSE.start({base: 'holysse', remember: false,
                body: {messages: [{role: 'user', content: 'and another'}]}}); }""")
            page.page.wait_for_function("window.second.status === 'error'", timeout=TIMEOUT_MS)
            error = page.page.evaluate("window.second.error")
            assert error["status"] == 429 and error["error"] == "TooManyStreams" and error["retryAfter"] == 5
            assert "limit is 1" in error["message"]
            page.page.click("#stop")
            page.wait_for_status("done")
            assert len(fake.requests) == 1  # the refused start never reached the upstream
