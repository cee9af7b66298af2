"""promptd's bundled load tests: `python -m benchmarks --help`."""
