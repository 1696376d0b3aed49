"""Benchmark harness for kore_models: `python -m benchmarks.run [--quick] [--cases 1,2]`."""
