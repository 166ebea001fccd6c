"""``pytest --nbval`` on the published chapters (tests/test_published.py): warnings written to
stderr (a library's deprecation notice, a checkpoint without its checksum sidecar) are not
results and differ between machines, so they are not compared; every other output is."""
from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collectstart(collector):
    if hasattr(collector, "skip_compare"):  # nbval's notebook collector
        collector.skip_compare = (*collector.skip_compare, "stderr")
