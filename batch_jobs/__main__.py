import signal
import sys

from batch_jobs.cli import main

# In the task the job is PID 1, and Linux delivers no signal to PID 1 that it has no handler for:
# without this, Fargate Spot's SIGTERM is ignored, the task is SIGKILLed (137, not retried) and the
# run fails. Exiting 143 on SIGTERM is what the retry rules retry.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

raise SystemExit(main())
