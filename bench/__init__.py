"""The benchmark harness: ``make bench`` (``python -m bench``). See bench/results.md."""
