"""The openai Node SDK, unchanged, against the server: the original samples' ways of streaming.

``tests/node/tour.mjs`` runs in Node with the SDK pinned in ``tests/node/package-lock.json``
(the current major, the one before, and 4, which the samples were written for; ``npm ci
--prefix tests/node`` installs them, as ``.ci/run`` does) and prints what it saw as JSON;
these tests check it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asst_magic.server import ServerHandle

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
CODE = "import matplotlib.pyplot as plt\nprint(6 * 7)\nplt.plot([1, 2, 3]); plt.show()"


def weather(*cities: str) -> dict[str, Any]:
    calls = [
        {"type": "function", "name": "get_weather", "arguments": json.dumps({"city": city})}
        for city in cities
    ]
    return {"tool_calls": calls}


ENTRIES = [
    {"user": "hello", "turns": [{"text": ["Hello", " **world**", "!"]}]},
    {
        "user": "plot it",
        "turns": [
            {"tool_calls": [{"type": "code_interpreter", "input": CODE.splitlines(True)}]},
            {"text": "Here is the plot."},
        ],
    },
    {
        "user": "weather twice",
        "turns": [weather("Oslo"), weather("Rome", "Lima"), {"text": "Sunny everywhere."}],
    },
    {"user": "fail please", "turns": [{"error": {"code": "server_error", "message": "it broke"}}]},
    {"user": "and again", "turns": [{"text": "Still here."}]},
]


def tour(handle: ServerHandle, sdk: str, how: str) -> dict[str, Any]:
    """What ``tour.mjs`` saw, driving ``handle`` with the Node package ``sdk`` set up ``how``."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the Node SDK tests: install it (apt-get install nodejs)"
    assert (NODE_DIR / "node_modules" / sdk).is_dir(), (
        f"the Node SDK is not installed: run `npm ci --prefix {NODE_DIR}` (.ci/run does)"
    )
    env = {"PATH": os.environ["PATH"], "BASE_URL": handle.base_url, "TOKEN": handle.token}
    done = subprocess.run(
        [node, "tour.mjs", sdk, how],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


@pytest.mark.parametrize(
    ("sdk", "how"),
    [
        ("openai", "v1"),
        ("openai-6", "v1"),
        ("openai-4", "v1"),  # the major the original samples were written for
        ("openai-4", "azure-sample"),
        ("openai", "azure-sample"),  # the Azure samples' AZURE_OPENAI_* set-up, unchanged
        ("openai", "azure"),  # the SDK's AzureOpenAI class
    ],
)
def test_node_sdk_streams_runs_the_ways_the_samples_did(
    start_server: Callable[..., ServerHandle], sdk: str, how: str
) -> None:
    seen = tour(start_server(ENTRIES, code_interpreter=True), sdk, how)
    major = {"openai": "7", "openai-6": "6", "openai-4": "4"}[sdk]
    assert (seen["sdk"], seen["how"], seen["version"].split(".")[0]) == (sdk, how, major)

    text = seen["text"]
    assert text["deltas"] == ["Hello", " **world**", "!"] and text["snapshotsAgree"]
    assert text["status"] == "completed" and text["final"] == ["Hello **world**!"]
    assert text["usage"]["total_tokens"] > 0

    code = seen["code"]
    assert code["input"] == CODE and code["logs"] == "42\n" and code["images"] == 1
    assert code["done"] == ["code_interpreter"] and code["status"] == "completed"
    assert code["answer"] == ["[image_file]Here is the plot."]
    assert sorted(code["steps"]) == ["message_creation", "tool_calls"]
    for event in ("thread.run.step.delta", "thread.message.delta", "thread.run.completed"):
        assert event in code["events"]
    # Every event of the helper fires, once per step, message, part and call.
    assert code["helper"] == {
        **dict.fromkeys(["messageCreated", "messageDone", "textCreated", "textDone"], 1),
        **{"imageFileDone": 1, "runStepCreated": 2, "runStepDone": 2},
        **{"toolCallCreated": 1, "end": 1},
    }
    assert code["finalSteps"] == ["tool_calls:completed", "message_creation:completed"]

    assert seen["functions"] == {
        "rounds": [["Oslo"], ["Rome", "Lima"]],
        "answer": "Sunny everywhere.",
        "ended": "completed",
    }
    assert seen["failed"] == {
        "status": "failed",
        "error": {"code": "server_error", "message": "it broke"},
    }
    assert seen["polled"] == "completed"
    assert seen["history"] == [
        "user: hello",
        "assistant: Hello **world**!",
        "user: plot it",
        "assistant: [image_file]Here is the plot.",
        "user: weather twice",
        "assistant: Sunny everywhere.",
        "user: fail please",
        "user: and again",
        "assistant: Still here.",
    ]
    missing = seen["missing"]
    assert missing["type"] == "NotFoundError" and missing["status"] == 404
    assert "thread_does_not_exist" in missing["message"]
