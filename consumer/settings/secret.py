"""A setting that is a secret: a string that never shows itself. Plain data."""

from __future__ import annotations


class Secret(str):
    """A string that never shows itself in logs, reprs or error messages."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        """The secret itself, for the one place that must hand it to a client."""
        return str.__str__(self)
