"""The storage report: one HTML page a person opens in a browser (``python -m pipeline report``)."""
