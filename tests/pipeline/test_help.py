"""Every subcommand's --help says what it does and shows examples that the parser accepts."""

from __future__ import annotations

import argparse
import shlex

import pytest

from pipeline.cli import _parser, main

COMMANDS = ("inspect", "trigger", "status", "changes", "smoke", "snapshot", "report", "demo", "run-local")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_covered_here() -> None:
    assert sorted(_subparsers()) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_a_description_and_examples_that_parse(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    usage, _, rest = text.partition("\n\n")
    description = rest.split("\n\n", 1)[0]
    assert usage.startswith(f"usage: python -m pipeline {command}")
    assert not description.startswith(("positional arguments:", "options:"))
    assert len(description.split()) >= 20, description  # a paragraph, not a label
    examples = text.split("\nexamples:\n", 1)[1].splitlines()
    assert examples, text
    for line in examples:
        argv = shlex.split(line, comments=True)
        assert argv[:3] == ["python", "-m", "pipeline"], line
        assert argv[3] == command, line
        parsed = _parser().parse_args(argv[3:])  # argparse exits (SystemExit) on an example it refuses
        assert parsed.command == command
