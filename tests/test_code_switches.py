"""The code sandbox and network switches mean the same to the magic and to `asst-magic serve`."""

from __future__ import annotations

from typing import Any

import pytest
from test_magics import magics

from asst_magic.server.arguments import build_parser
from asst_magic.server.config import code_switches

CASES = [
    # (environment, the magic's settings, serve's flags, what both resolve to)
    ({}, ("", False), [], ("auto", False)),
    ({"ASST_MAGIC_CODE_NETWORK": "on"}, ("", False), [], ("auto", True)),
    ({"ASST_MAGIC_CODE_NETWORK": " Yes "}, ("", False), [], ("auto", True)),
    ({"ASST_MAGIC_CODE_NETWORK": "0"}, ("", False), [], ("auto", False)),
    ({"ASST_MAGIC_CODE_NETWORK": "off"}, ("", True), ["--code-network"], ("auto", True)),
    ({"ASST_MAGIC_CODE_SANDBOX": "off"}, ("", False), [], ("off", False)),
    (
        {"ASST_MAGIC_CODE_SANDBOX": "off"},
        ("required", False),
        ["--code-sandbox", "required"],
        ("required", False),
    ),
]


@pytest.mark.parametrize(("environ", "settings", "flags", "expected"), CASES)
def test_the_magic_and_serve_read_the_switches_alike(
    shell: Any,
    environ: dict[str, str],
    settings: tuple[str, bool],
    flags: list[str],
    expected: tuple[str, bool],
) -> None:
    magic = magics(shell)
    magic.environ = environ
    magic.code_sandbox, magic.code_network = settings
    args = build_parser().parse_args(["serve", *flags])
    assert magic._code_settings() == expected
    assert code_switches(args.code_sandbox, args.code_network, environ) == expected
