"""The chart tests' fixture: the chart rendered with each values file.

``tests.deploy.chart`` is imported lazily: without the chart extra it skips the
module that imports it, and the compose tests here need none of it.
"""

from __future__ import annotations

from typing import Any

import pytest

CASES = ["defaults", "external-secrets-values", "gpu-keda-values"]


@pytest.fixture(params=CASES)
def rendering(request: pytest.FixtureRequest) -> Any:
    """The chart rendered with its defaults, then with each ``ci/*.yaml``."""
    from tests.deploy.chart import CASES as RENDERED
    from tests.deploy.chart import render

    assert CASES == RENDERED, f"the fixture's cases {CASES} are not the chart's {RENDERED}"
    return render(request.param)
