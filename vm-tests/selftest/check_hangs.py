"""Deliberately hangs, for the runner's own test: the guest must be killed by the timeout."""

import time


def test_hangs_on_purpose() -> None:
    time.sleep(3600)
