"""Command-line helpers shared by every `zml` subcommand: one-line errors with exit status 2, and number types."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineErrors:
    """Bad input gets one line naming the problem and exit status 2, never usage text or a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class ArgumentParser(OneLineErrors, argparse.ArgumentParser):
    pass


def positive_int(text: str) -> int:
    value = _integer(text, "a positive integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _integer(text, "an integer, zero or more")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def _integer(text: str, what: str) -> int:
    """int(text), or argparse's error saying what was wanted (else argparse names the type's function)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def fail(prog: str, message: str) -> NoReturn:
    """The one-line error for bad input found after parsing (a missing path, an existing dataset)."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(2)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` and the noun agreeing with it, thousands separated: "1 repository", "2,000 repositories"."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"
