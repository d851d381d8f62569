"""Charts drawn on the server as inline SVG: no script, nothing to load, CSP-clean.

Colours come from CSS classes (static/css/parley.css, `.chart-*`) that follow the theme's
variables, so a chart reads in light and dark mode; the SVG scales to its container's
width (viewBox), so it reads on a phone. Each chart carries a <title> and a one-line
<desc> summary for screen readers; the page shows the same numbers as a table.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(value)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"


def _frame(chart_id: str, title: str, summary: str, body: list[str]) -> Markup:
    # Every dynamic part is escaped (labels, titles) or a number formatted here.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(summary)}</desc>' + "".join(body) + "</svg>"
    )


def _axes(top: float, labels: Sequence[str]) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="chart-label" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_number(top * fraction))}</text>"
        )
    count = len(labels)
    if count:
        plot_w = WIDTH - LEFT - RIGHT
        every = max(1, count // 8)  # at most ~8 labels: readable on a phone
        for index in range(0, count, every):
            x = LEFT + plot_w * (index + 0.5) / count
            parts.append(
                f'<text class="chart-label" x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" '
                f'text-anchor="middle">{escape(labels[index])}</text>'
            )
    return parts


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float]) -> Markup:
    top = _nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    body = _axes(top, labels)
    slot = plot_w / max(1, len(values))
    for index, value in enumerate(values):
        height = plot_h * value / top
        x = LEFT + slot * index + slot * 0.15
        body.append(
            f'<rect class="chart-bar" x="{x:.1f}" y="{TOP + plot_h - height:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{height:.1f}">'
            f"<title>{escape(labels[index])}: {escape(_number(value))}</title></rect>"
        )
    total = sum(values)
    highest = _number(max(values, default=0))
    summary = f"{len(values)} bars, total {_number(total)}, highest {highest}."
    return _frame(chart_id, title, summary, body)


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
) -> Markup:
    top = _nice_max(max((max(values, default=0) for _, values in series), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    body = _axes(top, labels)
    count = max(1, len(labels))
    for number, (name, values) in enumerate(series):
        points = " ".join(
            f"{LEFT + plot_w * (i + 0.5) / count:.1f},{TOP + plot_h * (1 - v / top):.1f}"
            for i, v in enumerate(values)
        )
        body.append(f'<polyline class="chart-line chart-s{number}" points="{points}"/>')
        legend_x = LEFT + 8 + number * 150
        body.append(
            f'<rect class="chart-key chart-s{number}" x="{legend_x}" y="{TOP}" width="10" '
            f'height="10"/><text class="chart-label" x="{legend_x + 14}" y="{TOP + 9}">'
            f"{escape(name)}</text>"
        )
    summary = "; ".join(
        f"{name}: total {_number(sum(values))}, highest {_number(max(values, default=0))}"
        for name, values in series
    )
    return _frame(chart_id, title, summary + ".", body)


def stacked_bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
) -> Markup:
    """One bar per label, its parts stacked (at most three series: `.chart-k0`..`k2`)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    body = _axes(top, labels)
    slot = plot_w / max(1, len(labels))
    for index, label in enumerate(labels):
        base = 0.0
        x = LEFT + slot * index + slot * 0.15
        for number, (name, values) in enumerate(series):
            value = values[index]
            if not value:
                continue
            height = plot_h * value / top
            y = TOP + plot_h - plot_h * base / top - height
            body.append(
                f'<rect class="chart-stack chart-k{number}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{height:.1f}">'
                f"<title>{escape(label)}, {escape(name)}: {escape(_number(value))}</title></rect>"
            )
            base += value
    for number, (name, _) in enumerate(series):
        legend_x = LEFT + 8 + number * 180
        body.append(
            f'<rect class="chart-stack chart-k{number}" x="{legend_x}" y="{TOP}" width="10" '
            f'height="10"/><text class="chart-label" x="{legend_x + 14}" y="{TOP + 9}">'
            f"{escape(name)}</text>"
        )
    summary = "; ".join(f"{name}: total {_number(sum(values))}" for name, values in series)
    return _frame(chart_id, title, f"{len(labels)} bars. {summary}.", body)
