"""Benchmarks for churnpredict: scaled synthetic worlds and a subprocess-per-case harness.

Run ``make bench`` (``python -m benchmarks.run``); see :mod:`benchmarks.run`.
"""
