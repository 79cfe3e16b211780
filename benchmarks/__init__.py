"""Benchmarks: judge quality and speed, controller scale. They print figures and never assert on speed."""
