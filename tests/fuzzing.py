"""What the fuzz tests (tests/test_fuzz_*.py) share: how many cases each runs.

The suite runs a modest number per property; bench/fuzz.py runs the same properties much longer by
raising OPTSITE_FUZZ_EXAMPLES, and reports how many cases ran and how they ended.
"""

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("OPTSITE_FUZZ_EXAMPLES", "120"))

# Each case talks to a real server: no per-case deadline, and the database is shared between cases.
fuzz_settings = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=False,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                HealthCheck.data_too_large])
