"""The latencies of each source's recent calls, for the operator's p50 and p95."""

from connectors._metrics import RecentCalls, percentile


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_nearest_rank_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([0.3], 0.95) == 0.3
    values = [float(n) for n in range(100, 0, -1)]  # 100 .. 1, unordered on purpose
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0


def test_latencies_of_the_last_hour_are_kept_per_source_and_older_ones_forgotten() -> None:
    clock = Clock()
    recent = RecentCalls(clock=clock)
    for ms in range(1, 21):
        recent.add_latency("population", ms / 1000)
    recent.add_latency("land", 0.5)
    assert recent.percentiles("population") == (0.010, 0.019)
    assert recent.percentiles("land") == (0.5, 0.5)
    assert recent.percentiles("civil") == (None, None)
    clock.now += 61 * 60
    recent.add_latency("land", 0.1)
    assert recent.latencies("population") == []
    assert recent.latencies("land") == [0.1]


def test_memory_stays_bounded_to_the_newest_calls() -> None:
    recent = RecentCalls(clock=Clock(), max_latencies=10)
    for n in range(1000):
        recent.add_latency("population", float(n))
    assert recent.latencies("population") == [float(n) for n in range(990, 1000)]
