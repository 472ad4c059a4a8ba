"""What ``%%assistant?`` shows: a cell magic's usage, options and examples, as plain text.

``magic_arguments`` writes a line-magic usage (``%assistant …``) in reST (``::``,
double backticks); IPython prints it raw. This rebuilds the help from the same
argparse parser, so options and help never drift apart.

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="%assistant", add_help=False)
>>> _ = parser.add_argument("--new", action="store_true", help="Start a fresh thread.")
>>> print(cell_usage(parser, "assistant", "Ask.", ["%%assistant", "Hi"]))
%%assistant [options]
<the message, on the lines below>
<BLANKLINE>
Ask.
<BLANKLINE>
Options:
  --new  Start a fresh thread.
<BLANKLINE>
Examples:
  %%assistant
  Hi
"""

from __future__ import annotations

import argparse

__all__ = ["EMPTY", "EXAMPLES", "cell_usage"]

EMPTY = """%%assistant needs a message in the cell body, for example:

    %%assistant
    What is 2**100?

"""

EXAMPLES = [
    "%%assistant",
    "What is 2**100?",
    "",
    "%%assistant --file sales.csv -o result",
    "Load sales.csv and plot revenue by month.",
    "",
    "%%assistant --new",
    "Plot the first {n} squares.      <- {n} is the notebook's n; {{ is a literal {",
]


def cell_usage(
    parser: argparse.ArgumentParser, name: str, summary: str, examples: list[str]
) -> str:
    """Plain-text help for the cell magic ``%%name`` built from its ``parser``."""
    parser.prog = f"%%{name}"  # argparse's own errors then name the cell magic too
    example_lines = "\n".join(f"  {line}" if line else "" for line in examples)
    return (
        f"%%{name} [options]\n<the message, on the lines below>\n\n{summary}\n\n"
        f"Options:\n{_options(parser)}\n\nExamples:\n{example_lines}"
    )


def _options(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, max_help_position=26, width=88)
    for group in parser._action_groups:  # argparse has no public walk over its actions
        formatter.add_arguments(group._group_actions)
    lines = formatter.format_help().rstrip("\n").split("\n")
    return "\n".join(f"  {line}" if line else "" for line in lines)
