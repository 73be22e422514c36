"""The clock the tests own: nothing in the suite sleeps on wall-clock time."""

START = 1_723_991_733.5   # 2024-08-18T14:35:33.5Z, the time of the original's example runs


class FakeClock:
    """An app's clock (TINYFLOW_CLOCK): ``clock()`` is epoch seconds, moved only by
    ``clock.advance(s)``."""

    def __init__(self, now: float = START):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
