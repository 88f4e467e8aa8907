"""An organization's credits per day over its last and current billing periods, drawn on the
server as inline SVG for its admin page: no script, no chart library, nothing fetched from
elsewhere. The figures are the usage endpoint's (kept charges net of refunds, by UTC day)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from billing import selectors
from billing.services import period_containing

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 28, 30
CURRENT_COLOUR, LAST_COLOUR = "#417690", "#a3b4bf"


@dataclass(frozen=True)
class DayUsage:
    day: date
    credits: int
    current: bool  # in the current period (else the last one)


@dataclass(frozen=True)
class UsageSeries:
    last_start: date
    current_start: date
    current_end: date  # last day of the current period
    days: list[DayUsage]

    @property
    def last_total(self) -> int:
        return sum(d.credits for d in self.days if not d.current)

    @property
    def current_total(self) -> int:
        return sum(d.credits for d in self.days if d.current)


def usage_series(organization) -> UsageSeries:
    """One row per day from the first day of the last period to the last of the current one
    (days without queries are zero); one aggregate query over the ledger."""
    subscription = organization.subscription
    start, end = subscription.current_period_start, subscription.current_period_end
    last_start, _ = period_containing(subscription.anchor, start - timedelta(microseconds=1))
    first, last = last_start.date(), (end - timedelta(microseconds=1)).date()
    rows = selectors.usage(organization, start=first, end=last, group_by="day")["rows"]
    by_day = {date.fromisoformat(row["key"]): row["credits"] for row in rows}
    days = [DayUsage(day, by_day.get(day, 0), day >= start.date())
            for day in _days(first, last)]
    return UsageSeries(first, start.date(), last, days)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def usage_svg(series: UsageSeries) -> SafeString:
    """Bars per day (the current period dark, the last one light), a line where the current
    period starts, the highest day on the axis, and each bar's figure in its tooltip."""
    peak = max([d.credits for d in series.days] + [1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(series.days), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Credits used per day, last and current billing period">',
        f'<text x="{LEFT}" y="14" font-size="12" fill="#333">Last period: '
        f'{series.last_total} credits · Current period: {series.current_total} credits '
        f'(to {series.current_end:%Y-%m-%d})</text>',
        _line(LEFT, TOP, LEFT, TOP + plot_h, "#999"),
        _line(LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h, "#999"),
        _text(LEFT - 4, TOP + 10, str(peak), anchor="end"),
        _text(LEFT - 4, TOP + plot_h, "0", anchor="end"),
    ]
    for index, day in enumerate(series.days):
        height = round(plot_h * day.credits / peak, 1)
        x = round(LEFT + index * step + 0.5, 1)
        colour = CURRENT_COLOUR if day.current else LAST_COLOUR
        parts.append(
            f'<rect class="bar" x="{x}" y="{round(TOP + plot_h - height, 1)}" '
            f'width="{max(round(step - 1, 1), 1)}" height="{height}" fill="{colour}">'
            f'<title>{day.day:%Y-%m-%d}: {day.credits} credits</title></rect>')
    boundary = (series.current_start - series.last_start).days
    x = round(LEFT + boundary * step, 1)
    parts += [
        _line(x, TOP - 4, x, TOP + plot_h, "#c00", dashed=True),
        _text(LEFT, HEIGHT - 8, f"{series.last_start:%Y-%m-%d}"),
        _text(x + 3, HEIGHT - 8, f"{series.current_start:%Y-%m-%d}"),
        "</svg>",
    ]
    return mark_safe("".join(parts))  # only numbers and dates are interpolated


def _line(x1: float, y1: float, x2: float, y2: float, colour: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" '
            f'stroke-width="1"{dash}/>')


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return (f'<text x="{x}" y="{y}" font-size="11" fill="#555" text-anchor="{anchor}">'
            f"{escape(text)}</text>")


def usage_chart(organization) -> SafeString:
    return usage_svg(usage_series(organization))
