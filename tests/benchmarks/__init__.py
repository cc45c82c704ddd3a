"""pytest-benchmark suite: our tiers side by side with their baselines (run by `nox -s bench`)."""
