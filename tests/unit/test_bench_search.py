"""`make bench --search-only` at a tiny size: every search runs as the routes run it, so
a change to the search's filters cannot leave the benchmark behind."""

from __future__ import annotations

from bench import _search as search_figures


async def test_the_search_benchmark_runs_every_search_on_sqlite() -> None:
    text = await search_figures.measure(events_count=2_000, backends=["sqlite"], runs=1)
    assert "sqlite: 2,000 records" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "median" not in line]
    assert len(rows) == len(
        search_figures._searches(search_figures.Shape(2_000, 200), search_figures._END)
    )
