"""Benchmarks of coachlog against the physical limits measured in the same run."""
