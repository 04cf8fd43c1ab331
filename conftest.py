"""Root conftest: Hypothesis profiles for the harness's own property tests.

``ci`` (chosen when $CI is set) derandomizes, so CI runs are reproducible; ``dev`` keeps Hypothesis's
default random exploration. Scenario searches (``check``) never use these: they take their seed
from the command line (pytest_agentsdk.explore).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
