"""Simple bar charts as data for server-rendered SVG (``templates/_bars.html``).

No chart library and no script: the geometry is computed here and the template
draws ``<rect>`` and ``<text>`` elements, so the charts obey the page's CSP and
print as they look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 480
BAR_AREA = 150
TOP = 10
LABEL_SPACE = 40


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    value: str
    series: int


@dataclass(frozen=True)
class Group:
    label: str
    x: int


@dataclass(frozen=True)
class BarChart:
    title: str
    series: Sequence[str]
    bars: Sequence[Bar]
    groups: Sequence[Group]
    width: int = WIDTH
    height: int = TOP + BAR_AREA + LABEL_SPACE
    baseline: int = TOP + BAR_AREA


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: Sequence[str],
    values: Sequence[Sequence[float | None]],
    fmt: str = "{:.0f}",
) -> BarChart:
    """``values[g][s]``: the value of series ``s`` in group ``g`` (None: no bar)."""
    top = max((v for row in values for v in row if v is not None), default=0.0) or 1.0
    slot = WIDTH // max(len(groups), 1)
    bar_width = max(4, (slot - 16) // max(len(series), 1))
    bars: list[Bar] = []
    labels: list[Group] = []
    for g, (name, row) in enumerate(zip(groups, values, strict=True)):
        left = g * slot + 8
        labels.append(Group(name, left + (bar_width * len(series)) // 2))
        for s, value in enumerate(row):
            if value is None:
                continue
            height = round(BAR_AREA * value / top)
            bars.append(
                Bar(
                    x=left + s * bar_width,
                    y=TOP + BAR_AREA - height,
                    width=bar_width - 2,
                    height=height,
                    value=fmt.format(value),
                    series=s,
                )
            )
    return BarChart(title=title, series=tuple(series), bars=bars, groups=labels)
