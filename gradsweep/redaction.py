"""Passwords out of everything that is printed, logged or recorded.

A store URL carries its password in the user-info part, ``scheme://user:password@host``.
A database password may hold any character but ``@`` (SQLAlchemy reads up to the last
``@`` before the host), including ``/`` and ``:``, so the password is taken as everything
from the first ``:`` after the user name to the last ``@`` of the URL.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*):(?P<password>[^\s'\"]*)@")
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""

    def mask(match: re.Match[str]) -> str:
        return f"{match.group('head')}:{MASK}@"

    return _USERINFO.sub(mask, text)


def password_of(url: str) -> str | None:
    """The password in ``url``, or None when it has none (for tests that grep for it)."""
    match = _USERINFO.search(url)
    return match.group("password") if match else None
