"""Bar charts as geometry for inline SVG (rendered by the templates; no script, no styles
inline: colours come from the dashboard's stylesheet through class names)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LABEL_WIDTH = 230
BAR_AREA = 400
ROW_HEIGHT = 26
COLUMN_AREA_HEIGHT = 160
MAX_LABEL_CHARS = 32


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    #: Where the value and the label are written.
    text_x: float
    text_y: float
    label_x: float
    label_y: float
    show_label: bool = True
    show_value: bool = True


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    kind: str  # "rows" (horizontal bars) or "columns"
    width: int
    height: int
    bars: tuple[Bar, ...]
    empty: bool


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def rows_chart(chart_id: str, title: str, items: Sequence[tuple[str, int]]) -> Chart:
    """Horizontal bars, one row per item, labels on the left, values at the bar's end."""
    top = max((v for _, v in items), default=0) or 1
    bars = []
    for i, (label, value) in enumerate(items):
        y = i * ROW_HEIGHT + 4
        width = BAR_AREA * value / top
        bars.append(
            Bar(
                label=_short(label),
                value=value,
                x=LABEL_WIDTH,
                y=y,
                width=max(width, 1.0 if value else 0.0),
                height=ROW_HEIGHT - 8,
                text_x=LABEL_WIDTH + width + 6,
                text_y=y + ROW_HEIGHT / 2,
                label_x=LABEL_WIDTH - 8,
                label_y=y + ROW_HEIGHT / 2,
            )
        )
    return Chart(
        id=chart_id,
        title=title,
        kind="rows",
        width=LABEL_WIDTH + BAR_AREA + 60,
        height=max(len(items), 1) * ROW_HEIGHT + 8,
        bars=tuple(bars),
        empty=not items,
    )


def columns_chart(chart_id: str, title: str, items: Sequence[tuple[str, int]]) -> Chart:
    """Vertical columns (e.g. per day); every n-th label is written so that they never overlap."""
    count = max(len(items), 1)
    step = max(min(640 / count, 48), 8)
    top = max((v for _, v in items), default=0) or 1
    every = max(1, round(60 / step))
    bars = []
    for i, (label, value) in enumerate(items):
        height = COLUMN_AREA_HEIGHT * value / top
        x = 40 + i * step
        bars.append(
            Bar(
                label=label,
                value=value,
                x=x + 1,
                y=20 + COLUMN_AREA_HEIGHT - height,
                width=max(step - 2, 1),
                height=max(height, 1.0 if value else 0.0),
                text_x=x + step / 2,
                text_y=20 + COLUMN_AREA_HEIGHT - height - 4,
                label_x=x + step / 2,
                label_y=20 + COLUMN_AREA_HEIGHT + 16,
                show_label=i % every == 0 or i == len(items) - 1,
                show_value=value > 0 and step >= 18,
            )
        )
    return Chart(
        id=chart_id,
        title=title,
        kind="columns",
        width=int(40 + count * step + 40),
        height=20 + COLUMN_AREA_HEIGHT + 28,
        bars=tuple(bars),
        empty=not items,
    )
