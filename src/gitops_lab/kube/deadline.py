"""One deadline per command: every wait below it takes what time is left."""

from __future__ import annotations

import time


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def describe(self) -> str:
        """``2m`` or ``45s``: the deadline as people say it."""
        seconds = int(round(self.seconds))
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 120 else f"{seconds}s"
