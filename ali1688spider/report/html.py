"""The report page: one HTML file with inline CSS and the charts as ``data:`` URIs.

Every text that comes from the database goes through :func:`html.escape`; the only external
references are links (``<a href>``) to the products' own http(s) ``detail_url`` and, for search
hits, to ``https://detail.1688.com/offer/{id}.html`` of their numeric offer id. Money is printed
from Decimal with 2 decimals (half up), never through float.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from .data import Hit, LastRun, MessageSummary, Mover, QueryRun, ReasonRow, ReportData, SearchedQuery, TierHistory

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
 margin:0;background:#f5f6f8;color:#1f2328}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:22px 0 8px}h4{font-size:14px;margin:14px 0 6px}
.meta{color:#57606a;margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 12px}
.card .n{font-size:22px;font-weight:600}.card .l{color:#57606a;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%;border:1px solid #d0d7de}
th,td{padding:5px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tfoot td{font-weight:600}.up{color:#c0392b}.down{color:#1e8449}.muted{color:#57606a}
figure{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:0 0 14px;padding:10px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}figcaption{color:#57606a;margin-top:6px}
.empty{color:#57606a;font-style:italic}
td{overflow-wrap:anywhere}
@media print{@page{size:A4;margin:12mm}body{background:#fff;font-size:10px}main{max-width:none;padding:0}
 th,td{padding:2px 4px}h2{break-after:avoid}tr,figure,.card{break-inside:avoid}}
"""

OFFER_URL = "https://detail.1688.com/offer/{}.html"
CENT = Decimal("0.01")
TENTH = Decimal("0.1")
RECENT_SEARCH_RUNS = 10  # rows of a query's runs table (its chart shows all of them)


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def money(value: Decimal | None) -> str:
    if value is None or not value.is_finite():
        return "—"
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):.2f}"


def percent(value: Decimal) -> str:
    rounded = value.quantize(TENTH, rounding=ROUND_HALF_UP)
    return f"{rounded:+.1f}%" if rounded != 0 else "0.0%"


def count(value: int) -> str:
    return f"{value:,}"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


def window_text(window: timedelta | None, since: datetime | None) -> str:
    if window is None or since is None:
        return "all time"
    return f"since {when(since)} (last {_duration(window)})"


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    for size, unit in ((1440, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            n = minutes // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return str(delta)


def product_link(product_id: str, url: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{e(url)}" rel="noopener noreferrer">{e(product_id)}</a>'
    return e(product_id)


def offer_link(offer_id: str) -> str:
    """A search hit's offer id, linked to its 1688 page when it is a plain number."""
    if offer_id.isascii() and offer_id.isdigit():
        return product_link(offer_id, OFFER_URL.format(offer_id))
    return e(offer_id)


def _card(number: str, label: str) -> str:
    return f'<div class="card"><div class="n">{number}</div><div class="l">{e(label)}</div></div>'


def messages_section(summary: MessageSummary | None) -> str:
    """Change messages received in the window and how soon their changes were stored (absent
    without messages)."""
    if summary is None:
        return ""
    def rank(share: float) -> str:
        delay = summary.delay(share)
        return f"{delay:,.1f} s" if delay is not None else "—"

    cards = [
        _card(count(summary.received), "messages received"),
        _card(count(summary.queued), "offers queued by them"),
        _card(count(summary.changes), "changes they led to"),
        _card(f"{rank(0.5)} / {rank(0.95)}", "message to stored change, p50 / p95"),
        _card(count(summary.redelivered), "delivered more than once"),
        _card(count(summary.unhandled), "stored, not handled yet"),
    ]
    rows = [[f"<td>{e(topic)}</td>", _num(count(number))] for topic, number in summary.by_topic]
    return (f'<h2 id="messages">Change messages</h2><div class="cards">{"".join(cards)}</div>'
            + _table([("topic", False), ("messages", True)], rows, css_class="messages"))


def _table(head: Iterable[tuple[str, bool]], rows: Iterable[Iterable[str]], foot: Iterable[str] | None = None,
           css_class: str = "") -> str:
    cells = "".join(f'<th class="num">{e(name)}</th>' if numeric else f"<th>{e(name)}</th>" for name, numeric in head)
    body = "".join(f"<tr>{''.join(rows_cells)}</tr>" for rows_cells in rows)
    tail = f"<tfoot><tr>{''.join(foot)}</tr></tfoot>" if foot is not None else ""
    return f'<table class="{css_class}"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody>{tail}</table>'


def _num(text: str, css: str = "") -> str:
    return f'<td class="num {css}">{text}</td>' if css else f'<td class="num">{text}</td>'


def totals_section(report: ReportData) -> str:
    t, run = report.totals, report.last_run
    cards = [
        _card(count(t.products), "products stored"),
        _card(count(t.fetched_in_window), "products fetched in the window"),
        _card(count(t.new_in_window), "new products in the window"),
        _card(count(t.changed_in_window), "products changed in the window"),
        _card(count(t.failures), "ids failing now"),
        _card(count(t.failures_in_window), "failures recorded in the window"),
        _card(count(t.runs_in_window), "runs in the window"),
        _card(f"{count(t.fetched_by_runs)} / {count(t.failed_by_runs)}", "fetched / failed by those runs"),
    ]
    if run is not None:
        rate = f"{run.products_per_second:.2f}/s" if run.products_per_second is not None else "—"
        cards += [_card(e(run.finish_reason), f"last run's finish reason ({when(run.started_at)})"),
                  _card(e(rate), "last run's rate (products per second)")]
    return f'<h2 id="totals">Totals</h2><div class="cards">{"".join(cards)}</div>'


def runs_section(runs: list[LastRun]) -> str:
    if not runs:
        return '<h2 id="runs">Runs in the window</h2><p class="empty">No run in the window.</p>'
    head = [("started", False), ("run", False), ("spider", False), ("finish reason", False), ("fetched", True),
            ("failed", True), ("elapsed", True), ("rate", True), ("latency p50 / p95", True)]
    rows = [[
        f"<td>{e(when(run.started_at))}</td>", f"<td>{e(run.run_id)}</td>", f"<td>{e(run.spider)}</td>",
        f"<td>{e(run.finish_reason)}</td>", _num(count(run.fetched)), _num(count(run.failed)),
        _num(f"{run.elapsed_seconds:,.0f} s" if run.elapsed_seconds is not None else "—"),
        _num(f"{run.products_per_second:.2f}/s" if run.products_per_second is not None else "—"),
        _num(_latency(run)),
    ] for run in runs]
    return f'<h2 id="runs">Runs in the window (latest {len(runs)})</h2>{_table(head, rows, css_class="runs")}'


def _latency(run: LastRun) -> str:
    figures = run.latency.get("all")
    if not figures:
        return "—"
    return f"{figures.get('p50_ms', 0):,.0f} / {figures.get('p95_ms', 0):,.0f} ms"


def failures_section(reasons: list[ReasonRow]) -> str:
    if not reasons:
        return '<h2 id="failures">Failures by reason</h2><p class="empty">No failures.</p>'
    total = sum(row.count for row in reasons)
    head = [("reason", False), ("failing now", True), ("recorded in the window", True), ("share", True),
            ("latest", False)]
    rows = [[
        f"<td>{e(row.reason)}</td>", _num(count(row.count)), _num(count(row.in_window)),
        _num(percent(Decimal(row.count) * 100 / total).lstrip("+")), f"<td>{e(when(row.last_at))}</td>",
    ] for row in reasons]
    foot = ["<td>total</td>", _num(count(total)), _num(count(sum(row.in_window for row in reasons))),
            _num("100.0%"), "<td></td>"]
    return f'<h2 id="failures">Failures by reason</h2>{_table(head, rows, foot, css_class="failures")}'


def movers_section(movers: list[Mover]) -> str:
    title = '<h2 id="movers">Top price movers</h2>'
    if not movers:
        return title + '<p class="empty">No product\'s price moved in the window.</p>'
    head = [("#", True), ("product", False), ("subject", False), ("old", True), ("new", True), ("change", True),
            ("moves", True), ("last change", False)]
    rows = [[
        _num(str(rank)), f"<td>{product_link(mover.product_id, mover.detail_url)}</td>", f"<td>{e(mover.subject)}</td>",
        _num(money(mover.old)), _num(money(mover.new)),
        _num(percent(mover.change_pct), "up" if mover.change_pct > 0 else "down"),
        _num(str(mover.moves)), f"<td>{e(when(mover.last_at))}</td>",
    ] for rank, mover in enumerate(movers, 1)]
    note = ('<p class="muted">First-tier price (CNY, lowest minimum quantity), first value → last value in the '
            'window; ranked by the size of the net change.</p>')
    return title + note + _table(head, rows, css_class="movers")


def _current_tiers(history: TierHistory) -> str:
    if not history.points:
        return ""
    tiers = history.points[-1].tiers
    return ", ".join(f"≥ {quantity}: ¥{money(price)}" for quantity, price in tiers.items())


def charts_section(history: TierHistory | None, tier_chart: str | None, histogram: str, changes: int) -> str:
    parts = ['<h2 id="charts">Charts</h2>']
    if history is not None and tier_chart is not None:
        subject = f" — {e(history.subject)}" if history.subject else ""
        parts.append(
            f'<figure id="tier-history"><img src="{tier_chart}" alt="price tiers over time of product '
            f'{e(history.product_id)}"><figcaption>Price tiers over time of product '
            f"{product_link(history.product_id, history.detail_url)}{subject}. Current tiers: "
            f"{e(_current_tiers(history)) or '—'}.</figcaption></figure>")
    else:
        parts.append('<p class="empty">No product to chart: no price moved in the window (use --product).</p>')
    parts.append(
        f'<figure id="change-histogram"><img src="{histogram}" alt="distribution of price changes">'
        f"<figcaption>Relative change of the first-tier price, one count per recorded price change in the "
        f"window ({count(changes)} changes).</figcaption></figure>")
    return "".join(parts)


def quota_section(run: LastRun | None, chart: str | None) -> str:
    title = '<h2 id="quota">Call rate of the last run</h2>'
    if run is None or run.quota is None or chart is None:
        return f'{title}<p class="empty">The last run did not pace its calls (ALI1688_QPS=0) or is older ' \
               "than the adaptive quota.</p>"
    q = run.quota
    found = (f"the quota found: {q.learned:g} calls/s" if q.found else
             f"{q.learned:g} calls/s passed, no throttle seen" if q.learned else "nothing learned yet")
    ceiling = " under a ceiling (ALI1688_QPS)" if q.mode == "ceiling" else ""
    return "".join([
        title,
        f'<p>Started at {q.start_rate:g} calls/s{e(ceiling)}, ended at {q.rate:g} calls/s ({e(found)}); '
        f"{count(q.cuts)} cuts after a throttle, {count(q.raises)} raises.</p>",
        f'<figure><img alt="calls per second of the last run" src="{chart}">'
        "<figcaption>Calls started each second by the last run's process: passed (blue) and throttled by "
        "the gateway (red), with the rate its quota allowed (dashed).</figcaption></figure>",
    ])


def searches_section(searches: Sequence[SearchedQuery], charts: Sequence[tuple[str, str | None]]) -> str:
    """A part per query run in the window; nothing at all when none was."""
    if not searches:
        return ""
    parts = [f'<h2 id="searches">Searches ({count(len(searches))} recent '
             f"quer{'ies' if len(searches) != 1 else 'y'})</h2>",
             '<p class="muted">The queries of <code>scrapy crawl search|shop|image</code> run in the window, most '
             "recently run first: the hits of each run, and the prices and best sellers among the latest run's "
             "hits.</p>"]
    for index, (searched, (hits_chart, price_chart)) in enumerate(zip(searches, charts, strict=True), 1):
        parts.append(_searched(index, searched, hits_chart, price_chart))
    return "".join(parts)


def _searched(index: int, searched: SearchedQuery, hits_chart: str, price_chart: str | None) -> str:
    label, runs = e(searched.label), searched.runs
    return "".join([
        f'<section id="search-{index}"><h3>{label}</h3>',
        f'<h4>Hits over time</h4><figure><img src="{hits_chart}" alt="hits per run of {label}">'
        f"<figcaption>Hits stored by each of the {count(len(runs))} run{'s' if len(runs) != 1 else ''} in the "
        "window (blue) and the matching offers the gateway reported (grey, dashed, right axis).</figcaption></figure>",
        _search_runs(index, runs[-RECENT_SEARCH_RUNS:][::-1], len(runs)),
        _search_prices(searched, price_chart),
        _search_top(index, searched.top),
        "</section>",
    ])


def _search_runs(index: int, runs: list[QueryRun], total: int) -> str:
    head = [("started", False), ("finish reason", False), ("pages", True), ("hits", True), ("reported", True),
            ("unchanged", True), ("details", True)]
    rows = [[
        f"<td>{e(when(run.started_at))}</td>", f"<td>{e(run.finish_reason)}</td>", _num(count(run.pages)),
        _num(count(run.hits)), _num(count(run.total_records) if run.total_records is not None else "—"),
        _num(count(run.unchanged)), _num(count(run.details)),
    ] for run in runs]
    note = f'<p class="muted">The latest {len(runs)} of {count(total)} runs.</p>' if total > len(runs) else ""
    return note + _table(head, rows, css_class=f"search-runs-{index}")


def _search_prices(searched: SearchedQuery, chart: str | None) -> str:
    latest = searched.latest
    title = f"<h4>Price distribution of the hits of the latest run ({e(when(latest.started_at))})</h4>"
    if chart is None or not searched.prices:
        return f'{title}<p class="empty">No prices among its {count(searched.stored_hits)} stored hits.</p>'
    return (f'{title}<figure><img src="{chart}" alt="price distribution of the hits of {e(searched.label)}">'
            f"<figcaption>{count(len(searched.prices))} prices (CNY) of the {count(searched.stored_hits)} hits "
            f"stored for search {e(latest.search_id)}; median dashed.</figcaption></figure>")


def _search_top(index: int, top: list[Hit]) -> str:
    title = "<h4>Top offers by month_sold (latest run)</h4>"
    if not top:
        return f'{title}<p class="empty">No hit of the latest run reports month_sold.</p>'
    head = [("rank", True), ("offer", False), ("subject", False), ("price", True), ("month_sold", True),
            ("repurchase", True)]
    rows = [[
        _num(str(hit.rank)), f"<td>{offer_link(hit.offer_id)}</td>", f"<td>{e(hit.subject)}</td>",
        _num(money(hit.price)), _num(count(hit.month_sold or 0)),
        _num(f"{hit.repurchase_rate:.1f}%" if hit.repurchase_rate is not None else "—"),
    ] for hit in top]
    return title + _table(head, rows, css_class=f"search-top-{index}")


def render(report: ReportData, *, tier_chart: str | None, histogram: str, rate_chart: str | None = None,
           search_charts: Sequence[tuple[str, str | None]] = ()) -> str:
    """The whole page; ``tier_chart``, ``histogram`` and ``rate_chart`` are ``data:image/png;base64,…`` URIs,
    ``search_charts`` one (hits, prices or None) pair of them per searched query."""
    title = f"ali1688 report — {report.database}"
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">Database <b>{e(report.database)}</b> at {e(report.uri)} · window: '
        f"{e(window_text(report.window, report.since))} · generated {e(when(report.generated_at))}</p>",
        totals_section(report),
        runs_section(report.runs),
        failures_section(report.reasons),
        movers_section(report.movers),
        charts_section(report.history, tier_chart, histogram, len(report.changes_pct)),
        quota_section(report.last_run, rate_chart),
        searches_section(report.searches, search_charts),
        messages_section(report.messages),
        "</main></body></html>\n",
    ])
