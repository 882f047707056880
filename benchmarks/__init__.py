"""`make bench`: the benchmarks behind BENCHMARKS.md (run as `python -m benchmarks`)."""
