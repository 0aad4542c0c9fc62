"""``holysse demo`` as a user runs it: a subprocess, no key, no network."""

from __future__ import annotations

import os
import subprocess
import sys

from holysse.commands.demo import demo_body
from holysse.testing import FakeServer

MODES = ("auto", "cursor", "prefill", "replay", "none")


def run_demos() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every resume mode, run at the same time (each waits out a real 1 s Retry-After)."""
    env = {k: v for k, v in os.environ.items() if k != "HOLYSHEEP_API_KEY"}
    env.update(NO_COLOR="1", PYTHONIOENCODING="utf-8", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    procs = {
        mode: subprocess.Popen(
            [sys.executable, "-m", "holysse", "demo", "--resume", mode, "--token-delay", "0.001"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env,
        )
        for mode in MODES
    }
    results = {}
    for mode, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        results[mode] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


def expected_answer() -> str:
    return FakeServer(answer_chars=1800).expected_text(demo_body("openai-chat"))


def test_demo_in_every_resume_mode() -> None:
    """One test for all modes: the five demos run at once, in one place."""
    results = run_demos()
    expected = expected_answer()
    for mode in ("auto", "cursor", "prefill", "replay"):
        run = results[mode]
        assert run.returncode == 0, (mode, run.stderr)
        assert run.stdout == expected, mode  # the text printed live is the answer
        assert run.stdout.count("\n\n") >= 2  # several paragraphs
        assert run.stderr.count("↻ cut:") >= 4, (mode, run.stderr)  # a status line per reconnect
        assert "identical to the server's full answer (1800 characters): yes" in run.stderr, mode
        strategy = "cursor" if mode == "auto" else mode
        assert f"resumed by {strategy}" in run.stderr, (mode, run.stderr)
        # One line per reconnect attempt; the last attempt of each cut says how it resumed. With
        # stdout apart from stderr, the status lines come one after another, no blank line between.
        status = run.stderr.split("\n── summary")[0].splitlines()[1:]
        assert status and all(line.startswith("↻ cut:") for line in status), (mode, run.stderr)
        resumed = [line for line in status if line.endswith(f"→ resumed by {strategy}")
                   or f"→ resumed by {strategy}, " in line]
        assert len(resumed) == sum(1 for line in status if "(attempt 1)" in line) >= 3, (mode, run.stderr)
        if mode == "replay":
            assert "re-sent and dropped" in run.stderr
    # resume="none": the failure and the partial answer, shown, not hidden
    run = results["none"]
    assert run.returncode == 0, run.stderr
    assert "stream failed: StreamInterrupted" in run.stderr
    partial = run.stdout
    assert partial and expected.startswith(partial)
    assert f"partial answer kept: {len(partial)} characters" in run.stderr
