"""Charts whose labels do not overlap and whose value axis has round ticks in the report's number format."""

from __future__ import annotations

import re

from decommission.report.charts import CHAR_W, grouped_bars, horizontal_bars, nice_ticks
from decommission.report.labels import LABELS, years_in_order


def _labels(svg: str) -> list[tuple[float, str, bool]]:
    """(x, text, turned) of each group label below the axis."""
    found = re.findall(
        r'<text x="([\d.]+)" y="[\d.]+" text-anchor="(?:middle|end)" font-size="10"( transform)?[^>]*>([^<]+)</text>',
        svg,
    )
    return [(float(x), text, bool(turned)) for x, turned, text in found]


def test_ticks_are_round():
    assert nice_ticks(229) == [0, 100, 200, 300]
    assert nice_ticks(3058) == [0, 1000, 2000, 3000, 4000]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(0) == [0, 1]


def test_a_long_label_among_many_is_turned_and_rows_without_a_date_come_last():
    years = {"-": 132, "1900": 3, **{str(y): y - 1900 for y in range(2015, 2025)}}
    order = years_in_order(years)
    assert order[:2] == ["1900", "2015"] and order[-1] == "-"
    keys = ["utan datum" if y == "-" else y for y in order]
    svg = grouped_bars("Rader per år", {k: (years[y], years[y]) for k, y in zip(keys, order, strict=True)}, ("a", "b"))
    labels = [lb for lb in _labels(svg) if lb[1] in keys]
    assert [text for _x, text, _t in labels] == keys
    assert all(turned for *_, turned in labels), "labels wider than their group must be turned"


def test_few_long_labels_get_wide_groups_not_turned_labels():
    values = {"Testleverans": (3058, 3048), "Produktionsleverans": (3058, 3048), "Slutleverans": (3058, 3048)}
    labels = _labels(grouped_bars("Förlopp", values, ("Källa", "Arkiverat")))
    assert not any(turned for *_, turned in labels)
    placed = [(x, text) for x, text, _t in labels if text in values]
    assert [text for _x, text in placed] == list(values)
    # centred labels stay apart when the gap between centres exceeds half of each neighbour's width
    for (a, left), (b, right) in zip(placed, placed[1:], strict=False):
        assert b - a > CHAR_W * (len(left) + len(right)) / 2, (left, right)


def test_short_labels_stand_apart_unturned():
    values = {str(y): (10, 9) for y in range(2000, 2006)}
    svg = grouped_bars("x", values, ("a", "b"), fmt=lambda v: f"{v:g}")
    labels = [lb for lb in _labels(svg) if lb[1] in values]
    assert not any(turned for *_, turned in labels)
    xs = [x for x, *_ in labels]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert min(gaps) > CHAR_W * 4, "four-digit labels would touch"


def test_axis_numbers_in_swedish_and_long_reason_names_fit():
    svg = grouped_bars(
        "x", {"2019": (3058, 3048)}, ("Källa", "Arkiverat"), fmt=lambda v: f"{v:,.0f}".replace(",", "\u00a0")
    )
    assert ">3\u00a0000<" in svg
    reasons = {LABELS["sv"]["by_reason"]: 1, "personnummer med fel kontrollsiffra": 2}
    bars = horizontal_bars("Fynd", reasons)
    width = int(re.search(r'width="(\d+)"', bars).group(1))
    label_end = int(re.search(r'<line x1="(\d+)"', bars).group(1))
    assert label_end >= CHAR_W * len("personnummer med fel kontrollsiffra") and width > label_end + 260
