"""Charts drawn on the server as SVG (leather): a flow's activity over time.

Leather writes colours as SVG attributes and no ``<style>`` or ``<script>``, so a chart
inlined in a page stays inside our Content-Security-Policy; static/diagram.css sets the
text, grid and background colours for light and dark mode (any CSS rule beats an SVG
attribute). The series keep their colours in both modes (mid tones, read on either).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import leather
from markupsafe import Markup, escape

# One colour per series, each also named in the legend and the table (not colour alone).
SERIES = (("started", "#2563eb"), ("finished", "#16a34a"), ("failed", "#dc2626"),
          ("cancelled", "#9333ea"))
_SVG_OPEN = re.compile(r'<svg width="(\d+)" height="(\d+)" version="1.1" '
                       r'xmlns="http://www.w3.org/2000/svg">')


def _when(item: dict) -> datetime:
    # Leather's time scale compares naive datetimes: the bucket's UTC time without its zone.
    return datetime.fromisoformat(item["t"].replace("Z", "+00:00")).replace(tzinfo=None)


def activity_svg(items: list[dict], bucket: str, *, title: str, small: bool = False,
                 series=SERIES) -> Markup:
    """A line per series of ``items`` (the activity answer's), as inline SVG with ``title``
    for screen readers; ``small``: no legend nor labels (the overview's). Empty: nothing."""
    if not items:
        return Markup("")
    points = [(_when(item), item) for item in items]
    if len(points) == 1:            # a time axis needs two points: the line starts at zero
        first = points[0][0]
        step = 24 if bucket == "day" else 1
        points.insert(0, (first - timedelta(hours=step),
                          {name: 0 for name, _ in series}))
    chart = leather.Chart()
    top = max([1, *(item.get(name, 0) for _, item in points for name, _ in series)])
    chart.add_y_scale(0, top)
    fmt = "%d %b" if bucket == "day" else "%H:00"
    if small:
        chart.add_x_axis(ticks=[])
        chart.add_y_axis(ticks=[])
    else:
        chart.add_x_axis(tick_formatter=lambda when, i, count: when.strftime(
            "%d %b %H:00" if i == 0 and bucket == "hour" else fmt))
        chart.add_y_axis(tick_formatter=lambda value, i, count: f"{value:,.0f}")
    for name, colour in series:
        chart.add_line([(when, item.get(name, 0)) for when, item in points],
                       name=None if small else name, stroke_color=colour, width=2)
    width, height = (240, 56) if small else (720, 240)
    svg = chart.to_svg(width=width, height=height)
    opened = (f'<svg class="chart{" chart-small" if small else ""}" viewBox="0 0 {width} '
              f'{height}" width="{width}" height="{height}" role="img" '
              f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>')
    svg = _SVG_OPEN.sub(lambda _: opened, svg, count=1)
    return Markup(svg.replace(' font-family="Monaco"', ""))
