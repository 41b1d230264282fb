"""Argument parsing shared by every command: misuse is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import NoReturn

from pipeline.errors import EXIT_BAD_INPUT


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, naming the flag as typed."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see `{self.prog} --help`)\n")


class CommandListFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks, and puts each command's help on its command's line.

    argparse measures a command's name without the indent it prints it at, so a name as long as
    ``run-local`` would push its help to the next line."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        for subaction in self._iter_indented_subactions(action):
            width = len(self._format_action_invocation(subaction)) + self._current_indent
            self._action_max_length = max(self._action_max_length, width)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a whole number of at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def path(text: str) -> Path:
    """An argparse type: a path, never "" (which would silently mean the current folder)."""
    if not text.strip():
        msg = "must not be empty"
        raise argparse.ArgumentTypeError(msg)
    return Path(text)


def manifest_source(text: str) -> Path | str:
    """An argparse type: ``s3://...`` stays a string (to download), anything else is a path."""
    return text if text.startswith("s3://") else path(text)


def run_date(text: str) -> str:
    """An argparse type: a calendar date written YYYY-MM-DD, as run partitions name it."""
    try:
        valid = bool(_DATE.fullmatch(text)) and date.fromisoformat(text).isoformat() == text
    except ValueError:
        valid = False
    if not valid:
        msg = f"must be a date YYYY-MM-DD, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return text


def add_command(
    commands: argparse._SubParsersAction,
    name: str,
    *,
    summary: str,
    description: str,
    examples: Sequence[str],
) -> Parser:
    """A subcommand whose ``--help`` has a description (paragraphs kept as written) and examples,
    each a whole command line a user can copy (``tests/pipeline/test_help.py`` parses every one)."""
    parser: Parser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + "\n".join(f"  python -m pipeline {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser
