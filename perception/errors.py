"""Perception's user-facing errors, importable without torch (the ``sim`` CLI catches them on its light path)."""

from __future__ import annotations


class WeightsError(Exception):
    """A weights file that cannot be used: missing, unreadable, another format, or another architecture."""


class DatasetError(Exception):
    """Labelled data that cannot be used as asked: a log without the label channel, too few samples, another device."""
