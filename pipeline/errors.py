"""The operator CLI's errors and exit codes, the same for every command.

| code | meaning |
| --- | --- |
| 0 | done; for ``run-local`` and ``demo``: the output is complete |
| 1 | failed (a job failed, AWS refused or was unreachable); a rerun may succeed |
| 2 | bad input or usage: a wrong argument, or an inventory that does not follow S3's format |
| 130 | interrupted (Ctrl-C); 143: terminated (SIGTERM). Every job process was stopped |
| 141 | the reader of the output went away (``... | head``): nothing more is printed, as a Unix tool killed by SIGPIPE |
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_CLOSED_OUTPUT = 130, 143, 141


class UsageError(ValueError):
    """An argument is wrong: the message names the flag as typed, the value and what to give."""


class PipelineError(RuntimeError):
    """A run did not complete; ``exit_code`` is 2 when the input was at fault, else 1."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code
