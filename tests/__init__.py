"""The kore-models test suite."""
