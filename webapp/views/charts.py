"""Charts drawn on the server as SVG (leather): a flow's activity over time.

Leather writes colours as SVG attributes and no ``<style>`` or ``<script>``, so a chart
inlined in a page stays inside our Content-Security-Policy; static/diagram.css sets the
text, grid and background colours for light and dark mode (any CSS rule beats an SVG
attribute). The series keep their colours in both modes (mid tones, read on either).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import leather
from markupsafe import Markup

# One colour per series, each also named in the legend and the table (not colour alone).
SERIES = (("started", "#2563eb"), ("finished", "#16a34a"), ("failed", "#dc2626"),
          ("cancelled", "#9333ea"))
# A chart shows at least this many buckets (zeros before the first), so that one busy hour
# reads as a peak, not as a slope from nothing.
AT_LEAST = {"hour": 24, "day": 14}


def count_ticks(top: int, most: int = 5) -> list[int]:
    """Whole-number ticks from 0 to at least ``top``, at most ``most`` of them, a step of 1, 2
    or 5 times a power of ten (counts have no fractions: leather's own ticks would label a
    top of 1 as 0, 0, 0, 1, 1)."""
    step = 1
    while -(-top // step) + 1 > most:
        for factor in (2, 2.5, 2):       # 1 -> 2 -> 5 -> 10 -> 20 -> 50 ...
            step = int(step * factor)
            if -(-top // step) + 1 <= most:
                break
    return list(range(0, -(-top // step) * step + 1, step))


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
    size = timedelta(hours=24 if bucket == "day" else 1)
    while len(points) < AT_LEAST[bucket]:
        points.insert(0, (points[0][0] - size, {}))
    chart = leather.Chart()
    top = max([1, *(item.get(name, 0) for _, item in points for name, _ in series)])
    ticks = count_ticks(top)
    chart.add_y_scale(0, ticks[-1])
    if small:          # a sparkline: no tick labels (the table's columns give the figures)
        chart.add_x_axis(ticks=[points[0][0]], tick_formatter=lambda *_: "")
        chart.add_y_axis(ticks=[0], tick_formatter=lambda *_: "")
    else:
        chart.add_x_axis(tick_formatter=lambda when, i, count: when.strftime(
            "%d %b" if bucket == "day" else "%d %b %H:%M" if i == 0 else "%H:%M"))
        chart.add_y_axis(ticks=ticks, tick_formatter=lambda value, i, count: f"{value:,.0f}")
    # The sparkline draws its first series last (on top); the chart keeps its legend order.
    for name, colour in (reversed(series) if small else series):
        chart.add_line([(when, item.get(name, 0)) for when, item in points], name=name,
                       stroke_color=colour, width=3 if small else 2)
    # A sparkline is laid out at twice its size (leather's margins need the room) and shown
    # at half, without the legend leather draws for several series (the overview has one
    # under its table): the view box starts below it.
    width, height = (480, 150) if small else (720, 240)
    group = chart.to_svg_group(width, height)
    top_cut = 0
    if small:
        group[1][0].clear()      # [background, [header (the legend), body]]
        top_cut = leather.theme.legend_font_char_height + leather.theme.legend_gap
    for element in group.iter():
        element.attrib.pop("font-family", None)      # the stylesheet's font
    shown = (width // 2, (height - top_cut) // 2) if small else (width, height)
    root = ET.Element("svg", {"class": "chart chart-small" if small else "chart",
                              "viewBox": f"0 {top_cut} {width} {height - top_cut}",
                              "width": str(shown[0]), "height": str(shown[1]), "role": "img",
                              "xmlns": "http://www.w3.org/2000/svg"})
    ET.SubElement(root, "title").text = title
    root.append(group)
    return Markup(ET.tostring(root, encoding="unicode"))
