"""Deliberately failing, for the runner's own test: the VM suite must report it."""


def test_fails_on_purpose() -> None:
    assert 1 + 1 == 3
