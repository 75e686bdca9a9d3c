"""A bar chart laid out on the server and drawn as inline SVG by a template: no script,
no inline style (the CSP allows neither), colours from the stylesheet's classes."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 720, 240
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 36, 40, 16


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    title: str


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    baseline: float
    left: int


def _step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if top / step <= 5:
            return step
    return max(1, top // 5)


def bar_chart(points: list[tuple[str, str, int]]) -> BarChart:
    """Bars for (axis label, tooltip, value) points, scaled to a round maximum."""
    plot_h = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    plot_w = WIDTH - MARGIN_LEFT - 8
    top = max([value for _, _, value in points] + [1])
    step = _step(top)
    top = -(-top // step) * step
    slot = plot_w / max(len(points), 1)
    baseline = float(MARGIN_TOP + plot_h)
    bars = []
    for i, (label, title, value) in enumerate(points):
        height = plot_h * value / top
        bars.append(Bar(x=MARGIN_LEFT + i * slot + slot * 0.15, y=baseline - height,
                        width=slot * 0.7, height=height, label=label, value=value,
                        title=title))
    ticks = [Tick(y=baseline - plot_h * v / top, value=v) for v in range(0, top + 1, step)]
    return BarChart(WIDTH, HEIGHT, bars, ticks, baseline, MARGIN_LEFT)
