"""Printing names, paths and metadata literally.

A file name may hold Rich markup (``[red]``, ``[/]``) or terminal control sequences
(``\\x1b[2J``, an OSC window title, a newline): printed as they are, they would be eaten,
crash the message (Rich's MarkupError), take over the terminal or split one line into two.
Everything that prints something the user or a file supplied goes through :func:`literal`
(for Rich markup) or :func:`printable` (for plain text).
"""

from __future__ import annotations

import re

from rich.markup import escape

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _shown(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def printable(text: object) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``, ``\\t``)."""
    return _CONTROL.sub(_shown, str(text))


def literal(text: object) -> str:
    """``text`` for a Rich markup string: control characters shown as escapes, and markup
    escaped so that it prints as it is."""
    return escape(printable(text))
