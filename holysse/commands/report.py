"""The HTML report of ``holysse bench --html``: one self-contained page, no
script, no external file, charts drawn as inline SVG by hand.

Per model: the results table, a TTFB histogram (with the target line), a
TTFT histogram and a token arrival timeline (one lane per stream, a tick per
text event, time from the start of that model's run).
"""

from __future__ import annotations

import math
from html import escape
from dataclasses import dataclass
from typing import Any, Sequence

from ..monitor import LatencyMonitor, Stats, StreamSample
from .common import money, ms
from .console import plural


__all__ = ["ModelRun", "render_html", "histogram_svg", "timeline_svg"]

WIDTH = 760
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 56, 16, 28, 34
#: Most lanes drawn in a timeline (the first streams to start).
MAX_LANES = 60

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:800px;color:#222}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0}td,th{padding:2px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}tr:nth-child(even){background:#f6f6f6}
.miss{color:#c0392b;font-weight:bold}.meta{color:#666}
svg{display:block;margin:1em 0;font:11px sans-serif}
.bar{fill:#4a90d9}.bar.miss{fill:#e74c3c}.axis{stroke:#999}.grid{stroke:#eee}
.target{stroke:#c0392b;stroke-dasharray:4 3}.lane{stroke:#2c3e50;stroke-width:1}
.span{stroke:#ddd}.span.failed{stroke:#e74c3c}.ttfb{fill:#27ae60}.ttfb.miss{fill:#e74c3c}
"""


@dataclass
class ModelRun:
    """The streams of one model: their metrics, and when the run started."""

    model: str
    monitor: LatencyMonitor
    started: float
    wall: float = 0.0


def render_html(config: dict[str, Any], runs: Sequence[ModelRun], results: Sequence[dict[str, Any]]) -> str:
    """The whole report page."""
    target = config.get("target_ttfb")
    faults = ", ".join(config.get("faults") or []) or "none"
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<title>holysse bench report</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        "<h1>holysse bench report</h1>",
        f'<p class="meta">holysse {escape(str(config["holysse"]))} · {escape(str(config["base_url"]))}'
        f'{" (fake server, faults: " + escape(faults) + ")" if config.get("fake") else ""} · '
        f'{config["streams"]} streams per model · concurrency {config["concurrency"]} · '
        f'resume {escape(str(config["resume"]))}'
        f'{" · target TTFB " + ms(target) if target is not None else ""}</p>',
    ]
    for run, result in zip(runs, results):
        samples = run.monitor.samples()
        parts.append(f"<section><h2>{escape(run.model)}</h2>")
        parts.append(_table(result, target))
        parts.append(histogram_svg([s.ttfb for s in samples if s.ttfb is not None], "TTFB", target=target))
        parts.append(histogram_svg([s.ttft for s in samples if s.ttft is not None], "Time to first token"))
        parts.append(timeline_svg(samples, run.started, target=target))
        parts.append("</section>")
    parts.extend(["</body>", "</html>"])
    return "\n".join(parts) + "\n"


def _table(result: dict[str, Any], target: float | None) -> str:
    over = set(result["target_ttfb"]["over"]) if target is not None else set()
    head = "".join(f"<th>{name}</th>" for name in Stats.COLUMNS)
    rows = [f"<tr><th></th>{head}</tr>"]
    for figure, label in (("ttfb", "TTFB"), ("ttft", "TTFT"), ("gap", "token gap"), ("total", "total")):
        cells = "".join(
            f'<td{" class=miss" if figure == "ttfb" and name in over else ""}>{ms(result[figure][name])}</td>'
            for name in Stats.COLUMNS
        )
        rows.append(f"<tr><td>{label}</td>{cells}</tr>")
    rate = result["tokens_per_second"]
    rows.append("<tr><td>tokens/s</td>" + "".join(
        f"<td>{'-' if rate[n] is None else f'{rate[n]:.0f}'}</td>" for n in Stats.COLUMNS) + "</tr>")
    rec, errors = result["reconnects"], result["errors"]
    facts = [f"{result['completed']} of {result['streams']} streams complete",
             f"{result['wall_seconds']:.2f} s wall",
             f"{plural(rec['total'], 'reconnect')} in {plural(rec['streams'], 'stream')}",
             f"{rec['wasted_output_tokens']} wasted tokens",
             "errors: " + (", ".join(f"{escape(k)} {v}" for k, v in sorted(errors.items())) or "none"),
             f"cost {money(result['cost']['total'])}"]
    if target is not None:
        facts.append(f"{result['target_ttfb']['streams_missed']} streams over the TTFB target")
    return f"<table>{''.join(rows)}</table><p>{' · '.join(facts)}</p>"


# -- charts -----------------------------------------------------------------------


def _svg(height: int, title: str, body: list[str], css_class: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>'
            f'<text x="{_PAD_LEFT}" y="16" font-weight="bold">{escape(title)}</text>'
            + "".join(body) + "</svg>")


def _nice_step(span: float, count: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) dividing ``span`` in
    about ``count`` parts."""
    if span <= 0:
        return 1.0
    raw = span / count
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def _x_axis(x0: float, x1: float, scale: Any, y: float, top: float) -> list[str]:
    """Tick marks and labels (milliseconds) along the bottom, with grid lines."""
    step = _nice_step(x1 - x0, 8)
    out = [f'<line class="axis" x1="{_PAD_LEFT}" y1="{y}" x2="{WIDTH - _PAD_RIGHT}" y2="{y}"/>']
    tick = math.ceil(x0 / step) * step
    while tick <= x1 + step * 1e-9:
        x = scale(tick)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{y}"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 14}" text-anchor="middle">{tick * 1000:g}</text>')
        tick += step
    out.append(f'<text x="{WIDTH - _PAD_RIGHT}" y="{y + 28}" text-anchor="end">ms</text>')
    return out


def histogram_svg(values: Sequence[float], title: str, *, bins: int = 24, target: float | None = None,
                  height: int = 220) -> str:
    """A histogram of ``values`` (seconds) as an SVG element. Each bar is a
    ``<rect class="bar" data-count=N>``; bins at or past ``target`` are
    marked ``miss``, and the target is a dashed line."""
    if not values:
        return _svg(60, f"{title}: no data", [], "histogram")
    low, high = min(values), max(values)
    if target is not None:
        high = max(high, target)
    if high <= low:
        high = low + 1e-3
    width = (high - low) / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    plot_w, bottom = WIDTH - _PAD_LEFT - _PAD_RIGHT, height - _PAD_BOTTOM
    tallest = max(counts)

    def scale(value: float) -> float:
        return _PAD_LEFT + (value - low) / (high - low) * plot_w

    body = _x_axis(low, high, scale, bottom, _PAD_TOP)
    for i, n in enumerate(counts):
        if not n:
            continue
        edge = low + i * width
        bar_h = n / tallest * (bottom - _PAD_TOP)
        miss = " miss" if target is not None and edge + width > target else ""
        body.append(f'<rect class="bar{miss}" data-count="{n}" x="{scale(edge) + 0.5:.1f}" y="{bottom - bar_h:.1f}" '
                    f'width="{max(1.0, plot_w / bins - 1):.1f}" height="{bar_h:.1f}">'
                    f"<title>{n} streams: {edge * 1000:.1f}–{(edge + width) * 1000:.1f} ms</title></rect>")
    body.append(f'<text x="{_PAD_LEFT - 6}" y="{_PAD_TOP + 4}" text-anchor="end">{tallest}</text>')
    body.append(f'<text x="{_PAD_LEFT - 6}" y="{bottom}" text-anchor="end">0</text>')
    if target is not None:
        x = scale(target)
        body.append(f'<line class="target" x1="{x:.1f}" y1="{_PAD_TOP}" x2="{x:.1f}" y2="{bottom}"/>')
        body.append(f'<text x="{x + 4:.1f}" y="{_PAD_TOP + 10}" fill="#c0392b">target {target * 1000:g} ms</text>')
    return _svg(height, f"{title} ({len(values)} streams)", body, "histogram")


def timeline_svg(samples: Sequence[StreamSample], origin: float, *, target: float | None = None,
                 lane: int = 9) -> str:
    """Token arrivals per stream as an SVG element: one lane per stream
    (``<path class="lane">``, a tick per text event), a grey span from start
    to end (red when the stream failed), a dot at the first byte."""
    shown = sorted(samples, key=lambda s: s.started)[:MAX_LANES]
    title = "Token arrival timeline" + (f" (first {len(shown)} of {len(samples)} streams)"
                                         if len(shown) < len(samples) else f" ({len(shown)} streams)")
    if not shown:
        return _svg(60, f"{title}: no data", [], "timeline")
    end = max((s.started - origin) + (s.duration or 0.0) for s in shown) or 1e-3
    height = _PAD_TOP + lane * len(shown) + _PAD_BOTTOM
    plot_w, bottom = WIDTH - _PAD_LEFT - _PAD_RIGHT, height - _PAD_BOTTOM

    def scale(value: float) -> float:
        return _PAD_LEFT + value / end * plot_w

    body = _x_axis(0.0, end, scale, bottom, _PAD_TOP)
    for row, sample in enumerate(shown):
        start = sample.started - origin
        y = _PAD_TOP + row * lane + lane / 2
        failed = " failed" if sample.error else ""
        body.append(f'<line class="span{failed}" x1="{scale(start):.1f}" y1="{y:.1f}" '
                    f'x2="{scale(start + (sample.duration or 0.0)):.1f}" y2="{y:.1f}"/>')
        ticks = "".join(f"M{scale(start + t):.1f} {y - lane / 2 + 1:.1f}v{lane - 2}" for t in sample.arrivals())
        body.append(f'<path class="lane" data-tokens="{sample.text_events}" d="{ticks}">'
                    f"<title>stream {row + 1}: {sample.text_events} tokens, TTFT {ms(sample.ttft)}"
                    f"{', ' + escape(sample.error) if sample.error else ''}</title></path>")
        if sample.ttfb is not None:
            miss = " miss" if target is not None and sample.ttfb > target else ""
            body.append(f'<circle class="ttfb{miss}" cx="{scale(start + sample.ttfb):.1f}" cy="{y:.1f}" r="2"/>')
    body.append(f'<text x="{_PAD_LEFT - 6}" y="{_PAD_TOP + 8}" text-anchor="end">#1</text>')
    return _svg(height, title, body, "timeline")
