"""The regime map (gradsweep/report/regime_map.py): its handling of odd values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradsweep.config import ParamSpec
from gradsweep.report.regime_map import _axis_values, remedies


def test_none_is_a_category_of_its_own_on_maps():
    spec = ParamSpec(type="categorical", choices=[None, 1.0])
    table = pd.DataFrame({"optimizer.clipnorm": [None, 1.0, np.nan], "regime": ["vanishing", "healthy", "healthy"]})
    positions, labels = _axis_values(table, "optimizer.clipnorm", spec)
    assert labels == ["None", "1.0"] and list(positions) == [0, 1, 0]
    # The one unhealthy trial without clipping; its only neighbour with clipping is healthy.
    assert remedies(table, {"optimizer.clipnorm": spec}) == [
        "optimizer.clipnorm=set: the nearest trial with it is healthy for 1 of 1 unhealthy trials without it"
    ]
