"""Each source's calls of the last hour, by minute, for the agency's view."""

from connectors._metrics import RecentCalls


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_calls_of_the_last_hour_are_counted_and_older_ones_forgotten() -> None:
    clock = Clock()
    recent = RecentCalls(clock=clock)
    recent.add("land", failed=False)
    recent.add("land", failed=True)
    recent.add("civil", failed=False)
    assert recent.last("land") == (2, 1)
    assert recent.last("civil") == (1, 0)
    assert recent.last("insurance") == (0, 0)
    clock.now += 30 * 60
    recent.add("land", failed=False)
    assert recent.last("land") == (3, 1)
    clock.now += 31 * 60  # the first minute's calls are over an hour old
    assert recent.last("land") == (1, 0)
    clock.now += 60 * 60
    assert recent.last("land") == (0, 0)
