"""The two batch jobs, run in the image as ``python -m batch_jobs split|process``."""
