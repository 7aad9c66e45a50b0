"""Samplers whose next trials can be held to fixed values: a population's graph keys."""

from __future__ import annotations

from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, Dict, Iterator, Mapping


class Fixable:
    """A sampler that samples given ``_fixed``: trials asked inside :meth:`fixing` take
    those values and the sampler chooses the other keys knowing them."""

    _fixed: Mapping[str, Any] = MappingProxyType({})  # nothing fixed until fixing()

    @contextmanager
    def fixing(self, fixed: Dict[str, Any]) -> Iterator[None]:
        """Trials asked inside take ``fixed``'s values and sample the other keys."""
        self._fixed = dict(fixed)
        try:
            yield
        finally:
            self._fixed = MappingProxyType({})
