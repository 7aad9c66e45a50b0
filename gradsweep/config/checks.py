"""The value checks every config section runs in ``__post_init__``: each raises
:class:`ConfigError` naming the key."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from gradsweep.errors import ConfigError


def check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def finite(section: Any, prefix: str) -> None:
    """Every float of a section is a finite number (``nan`` and ``inf`` parse as floats)."""
    for item in fields(section):
        value = getattr(section, item.name)
        if isinstance(value, float):
            check(math.isfinite(value), f"{prefix}.{item.name}", f"must be a finite number, got {value}")


def one_of(value: Any, allowed: tuple, key: str) -> None:
    check(value in allowed, key, f"unknown value {value!r}; choose one of {', '.join(allowed)}")
