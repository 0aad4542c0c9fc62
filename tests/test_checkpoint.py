"""holysse.Checkpoint: stream.checkpoint() and client.stream(resume_from=...),
against the fake server: another client continues the answer, by cursor,
prefill or replay, yielding only what comes after the checkpoint."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import holysse
from holysse.testing import FakeServer

from .conftest import CHAT, make_client

RESPONSES = {"model": "fake-1", "input": "Tell me about streams.", "seed": 3, "background": True}


def read_until(stream: holysse.Stream, chars: int) -> tuple[str, holysse.Checkpoint]:
    """Read ``stream`` until ``chars`` characters arrived; its checkpoint
    then, through JSON (as another process would get it)."""
    received = ""
    for event in stream:
        received += event.text
        if len(received) >= chars:
            break
    checkpoint = holysse.Checkpoint.from_dict(json.loads(json.dumps(stream.checkpoint().to_dict())))
    stream.close()
    return received, checkpoint


def continue_from(server: FakeServer, checkpoint: holysse.Checkpoint, **kwargs: Any) -> tuple[str, list[Any], holysse.Stream]:
    stream = make_client(server, **kwargs).stream(resume_from=checkpoint)
    events = list(stream)
    return "".join(e.text for e in events), events, stream


@pytest.mark.parametrize("ids", [True, False], ids=["cursor", "replay"])
def test_another_client_continues_the_answer_from_a_checkpoint(ids: bool) -> None:
    with FakeServer(answer_chars=600, ids=ids) as server:
        expected = server.expected_text(CHAT)
        before, checkpoint = read_until(make_client(server).stream(**CHAT), 200)
        assert checkpoint.text == before and (checkpoint.cursor is not None) == ids
        after, events, stream = continue_from(server, checkpoint)
        assert isinstance(events[0], holysse.Resumed)
        assert events[0].strategy == ("cursor" if ids else "replay")
        assert before + after == stream.text == expected
        assert not any(isinstance(e, holysse.Reset) for e in events)


def test_prefill_continues_a_checkpoint_without_ids() -> None:
    with FakeServer(answer_chars=600, ids=False) as server:
        before, checkpoint = read_until(make_client(server, provider="vllm").stream(**CHAT), 150)
        assert checkpoint.provider["name"] == "vllm"
        after, events, stream = continue_from(server, checkpoint)
        assert events[0].strategy == "prefill"
        assert stream.text == before + after and stream.text.startswith(before) and len(after) > 0
        assert server.requests[-1].body["messages"][-1] == {"role": "assistant", "content": before}


def test_responses_checkpoint_resumes_by_get_with_tool_numbering() -> None:
    with FakeServer(answer_chars=400) as server:
        client = make_client(server, dialect="openai-responses")
        expected = server.expected_text(RESPONSES, dialect="openai-responses")
        before, checkpoint = read_until(client.stream(**RESPONSES), 100)
        assert isinstance(checkpoint.cursor, dict) and checkpoint.cursor["response_id"]
        after, events, stream = continue_from(server, checkpoint, dialect="openai-responses")
        assert events[0].strategy == "cursor" and server.requests[-1].method == "GET"
        assert before + after == stream.text == expected


def test_checkpoint_callbacks_and_finished_answers() -> None:
    with FakeServer(answer_chars=300) as server:
        stream = make_client(server).stream(**CHAT)
        final = stream.final()
        checkpoint = stream.checkpoint()
        assert checkpoint.finish_reason == final.finish_reason and checkpoint.text == final.text
        seen: list[str] = []
        requests = len(server.requests)
        again = make_client(server).stream(resume_from=checkpoint, on_text=seen.append)
        assert [e for e in again if e.text] == [] and seen == [] and again.text == final.text
        assert len(server.requests) == requests  # a finished answer sends nothing


def test_checkpoint_is_thread_safe_and_small() -> None:
    with FakeServer(answer_chars=2000, token_delay=0.0005) as server:
        stream = make_client(server).stream(**CHAT)
        taken: list[holysse.Checkpoint] = []
        stop = threading.Event()

        def take() -> None:  # about every 0.2 ms: a busy loop would only starve the reader of the GIL
            while not stop.wait(0.0002):
                taken.append(stream.checkpoint())

        taker = threading.Thread(target=take)
        taker.start()
        try:
            text = stream.final().text
        finally:
            stop.set()
            taker.join(5)
        assert taken and all(text.startswith(c.text) for c in taken)
        assert all(int(c.position["text"]) <= len(c.text) for c in taken)
        assert "hs_" not in json.dumps(taken[-1].to_dict())  # the key never goes into a checkpoint
        assert "chars=" in repr(taken[-1]) and text[:20] not in repr(taken[-1])


def test_bad_checkpoints_and_arguments_are_usage_errors(server: FakeServer) -> None:
    with pytest.raises(holysse.UsageError, match="checkpoint"):
        holysse.Checkpoint.from_dict({"version": 1})
    with pytest.raises(holysse.UsageError, match="version"):
        holysse.Checkpoint.from_dict({"version": 99})
    checkpoint = make_client(server).stream(**CHAT).checkpoint()
    with pytest.raises(holysse.UsageError, match="remove model"):
        make_client(server).stream(resume_from=checkpoint, model="x")
    with pytest.raises(holysse.UsageError, match="dialect"):
        make_client(server).stream(resume_from=checkpoint, dialect="anthropic")
    with pytest.raises(holysse.UsageError, match="Checkpoint"):
        make_client(server).stream(resume_from={"text": ""})  # type: ignore[arg-type]
