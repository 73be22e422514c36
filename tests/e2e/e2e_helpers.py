"""What several browser tests read off a page: the state JSON, a diagram node's classes,
colours, and keyboard focus."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect


def shown_state(page: Page) -> dict:
    """The workflow's state as the page shows it (the State card's JSON)."""
    return json.loads(page.locator("#state-json").inner_text())


def expect_step_classes(page: Page, step: str, *classes: str) -> None:
    """Wait until the diagram node ``step-<step>`` (an SVG ``<g>``) has all ``classes``.

    It waits because htmx settles a swapped element's ``class`` a moment after the swap."""
    wanted = "".join(rf"(?=.*\b{re.escape(c)}\b)" for c in classes)
    expect(page.locator(f'[id="step-{step}"]')).to_have_class(re.compile(f"^{wanted}"))


def query(page: Page) -> dict[str, list[str]]:
    """The page URL's query string, each name with its values."""
    return parse_qs(urlsplit(page.url).query)


def rgb(css_colour: str) -> tuple[float, float, float]:
    """``rgb(1, 2, 3)`` / ``rgba(...)`` / ``color(srgb r g b)`` as three numbers 0-255."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css_colour)]
    if css_colour.startswith("color("):
        return tuple(n * 255 for n in numbers[:3])
    return tuple(numbers[:3])


def luminance(css_colour: str) -> float:
    """Relative luminance (WCAG) of a computed CSS colour: 0 black, 1 white."""
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb(css_colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two computed colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def computed(page: Page, selector: str, prop: str) -> str:
    return page.locator(selector).first.evaluate(
        "(el, prop) => getComputedStyle(el).getPropertyValue(prop)", prop)


def tab_to(page: Page, selector: str, limit: int = 200) -> None:
    """Press Tab from the top of the page until ``selector`` has the focus (as a keyboard
    user would); fails if it never does."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("sel => document.activeElement?.matches(sel) ?? false", selector):
            return
    raise AssertionError(f"{selector} never got the keyboard focus in {limit} Tab presses")
