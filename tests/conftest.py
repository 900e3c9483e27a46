"""Settings every test shares. Hypothesis keeps no example database (nothing is written into the
checkout), and under CI (CI=true) draws its examples from a fixed seed, so a run is reproducible.
The Blender environments run some tests without Hypothesis: then there is nothing to set."""

import os

try:
    from hypothesis import settings
except ImportError:  # tests/shared and tests/addon in the Blender environments
    settings = None

HYPOTHESIS_PROFILE = "ci" if os.environ.get("CI", "").lower() == "true" else "dev"

if settings is not None:
    settings.register_profile("dev", database=None)
    settings.register_profile("ci", database=None, derandomize=True, print_blob=True)
    settings.load_profile(HYPOTHESIS_PROFILE)
