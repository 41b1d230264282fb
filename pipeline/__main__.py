"""The operator CLI: ``python -m pipeline COMMAND``."""

from pipeline.cli import main

raise SystemExit(main())
