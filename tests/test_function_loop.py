"""The function-calling loop end to end: in-process shells and a real kernel, real server."""

from __future__ import annotations

import _thread
import asyncio
import html
import json
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import openai
import pytest
from IPython.core.error import UsageError
from live_support import Replica, batches, recording_comms
from magic_support import notebook_shell
from nbclient import NotebookClient

import asst_magic
from asst_magic.functions import default_registry
from asst_magic.magics import RunInterrupted

CASSETTE = Path(__file__).parent / "cassettes" / "functions.jsonl"
WIDGET = "application/vnd.jupyter.widget-view+json"
MARKER = "… [truncated 30,000 characters]"  # big(50000) capped at the default 20,000


@pytest.fixture(scope="module")
def fn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real local server (child process) replaying the function-calling cassette."""
    from asst_magic.server.config import ServerConfig
    from asst_magic.server.launch import spawn

    data_dir = tmp_path_factory.mktemp("fn-server-data")
    with spawn(ServerConfig(data_dir=data_dir, cassettes=(CASSETTE,))) as handle:
        yield handle


@pytest.fixture
def client(fn_server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fn_server.base_url, api_key=fn_server.token)


@pytest.fixture
def ip(fn_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh shell on the server, widget display; functions registered in a test are dropped."""
    monkeypatch.chdir(tmp_path)
    shell, magics = notebook_shell(fn_server, {"ASST_MAGIC_DATA_DIR": str(tmp_path / "data")})
    before = set(default_registry.names())
    yield shell
    for name in set(default_registry.names()) - before:
        default_registry.remove(name)
    magics.close()


def cell(ip: Any, body: str, line: str = "") -> list[dict[str, Any]]:
    """Run one ``%%assistant`` cell; return its outputs as a saved notebook holds them."""
    ip.display_pub.outputs.clear()
    ip.run_cell_magic("assistant", line, body)
    return ip.display_pub.saved


def plain(outputs: list[dict[str, Any]]) -> list[str]:
    return [o["data"]["text/plain"] for o in outputs]


def status_of(shown: str) -> str:
    """``requested`` from ``ƒ name({...}) · requested``; a result may follow after ``→``."""
    return shown.split("\n→ ", 1)[0].rsplit(" · ", 1)[1]


def recorded_calls(client: openai.OpenAI, outputs: list[dict[str, Any]]) -> list[list[Any]]:
    """The function calls the server recorded, one list per tool-calls step (round)."""
    ids = outputs[-1]["metadata"]["asst_magic"]
    steps = client.beta.threads.runs.steps.list(
        ids["run_id"], thread_id=ids["thread_id"], order="asc"
    )
    details = [step.step_details for step in steps if step.type == "tool_calls"]
    return [[call.function for call in d.tool_calls] for d in details]  # type: ignore[union-attr]


def register_weather(cities: list[str] | None = None) -> None:
    @asst_magic.function
    def get_weather(city: str) -> str:
        """Weather in a city."""
        if cities is not None:
            cities.append(city)
        return f"sunny in {city}"


# -- in-process shell -------------------------------------------------------------------


def test_one_call_streams_into_the_same_view(ip: Any, client: openai.OpenAI) -> None:
    register_weather()
    call, answer, status = cell(ip, "fn one call")
    assert (
        call["data"]["text/plain"]
        == 'ƒ get_weather({\n  "city": "Paris"\n}) · done\n→ sunny in Paris'
    )
    assert answer["data"]["text/markdown"] == "It is sunny in Paris."
    assert status["data"]["text/plain"].startswith("completed")
    (round_one,) = recorded_calls(client, [status])
    assert [c.output for c in round_one] == ["sunny in Paris"]


def test_three_parallel_calls_in_one_round(ip: Any, client: openai.OpenAI) -> None:
    cities: list[str] = []
    register_weather(cities)
    outputs = cell(ip, "fn three parallel")
    assert cities == ["Oslo", "Rome", "Lima"]
    assert [status_of(p) for p in plain(outputs)[:3]] == ["done"] * 3
    assert plain(outputs)[3] == "Three cities."
    (round_one,) = recorded_calls(client, outputs)  # one step: all three in one round
    assert [c.output for c in round_one] == ["sunny in Oslo", "sunny in Rome", "sunny in Lima"]


def test_two_sequential_rounds(ip: Any, client: openai.OpenAI) -> None:
    register_weather()
    outputs = cell(ip, "fn two rounds")
    assert [p.rsplit("→ ", 1)[1] for p in plain(outputs)[:2]] == ["sunny in Oslo", "sunny in Rome"]
    assert plain(outputs)[2] == "Two rounds done."
    rounds = recorded_calls(client, outputs)
    assert [[c.output for c in r] for r in rounds] == [["sunny in Oslo"], ["sunny in Rome"]]


def test_a_raising_function_sends_its_exception_to_the_model(
    ip: Any, client: openai.OpenAI
) -> None:
    @asst_magic.function
    def explode() -> None:
        """Always fails."""
        raise ValueError("no fuse")

    call, answer, status = cell(ip, "fn raises")
    assert call["data"]["text/plain"] == "ƒ explode({}) · error\n→ ValueError: no fuse"
    assert "jp-error-color1" in call["data"]["text/html"]
    assert answer["data"]["text/markdown"] == "The function failed."
    assert status["data"]["text/plain"].startswith("completed")
    assert recorded_calls(client, [status])[0][0].output == "Error: ValueError: no fuse"


def test_an_unknown_name_is_an_error_output_not_a_hang(ip: Any, client: openai.OpenAI) -> None:
    register_weather()
    call, answer, status = cell(ip, "fn unknown")
    assert call["data"]["text/plain"].startswith(
        "ƒ no_such_function({}) · error\n→ no function named 'no_such_function' is registered; "
        "registered: "
    )
    assert answer["data"]["text/markdown"] == "No such function."
    output = recorded_calls(client, [status])[0][0].output
    assert output.startswith("Error: no function named 'no_such_function' is registered")


def test_arguments_that_are_not_json_are_an_error_output(ip: Any, client: openai.OpenAI) -> None:
    cities: list[str] = []
    register_weather(cities)
    call, answer, status = cell(ip, "fn bad json")
    assert cities == []
    assert call["data"]["text/plain"].startswith(
        'ƒ get_weather({"city": Paris) · error\n→ arguments for get_weather are not valid JSON: '
    )
    assert answer["data"]["text/markdown"] == "Bad arguments."
    output = recorded_calls(client, [status])[0][0].output
    assert output.startswith("Error: arguments for get_weather are not valid JSON: Expecting")


def test_an_async_function(ip: Any, client: openai.OpenAI) -> None:
    @asst_magic.function
    async def slow_square(n: int) -> int:
        """n squared, eventually."""
        await asyncio.sleep(0)
        return n * n

    call, answer, status = cell(ip, "fn async")
    assert call["data"]["text/plain"] == 'ƒ slow_square({\n  "n": 7\n}) · done\n→ 49'
    assert answer["data"]["text/markdown"] == "Squared."
    assert recorded_calls(client, [status])[0][0].output == "49"


def test_a_large_return_value_reaches_the_model_truncated(ip: Any, client: openai.OpenAI) -> None:
    @asst_magic.function
    def big(n: int) -> str:
        """n characters."""
        return "x" * n

    call, answer, status = cell(ip, "fn large")
    assert call["data"]["text/plain"].endswith("x" * 100 + MARKER)
    assert answer["data"]["text/markdown"] == "That was long."
    output = recorded_calls(client, [status])[0][0].output
    assert output == "x" * 20_000 + MARKER


SHOUTED = 'ƒ shout({\n  "word": "hi"\n}) · done\nshouting hi\ncareful\n→ HI'


def test_what_a_function_prints_stays_in_its_block(ip: Any, client: openai.OpenAI) -> None:
    @asst_magic.function
    def shout(word: str) -> str:
        """The word, loud (and a word on stderr)."""
        print(f"shouting {word}")
        print("careful", file=sys.stderr)
        return word.upper()

    call, answer, status = cell(ip, "fn prints")
    # The final output replaces the cell's output area: the prints are kept in the call.
    assert call["data"]["text/plain"] == SHOUTED
    assert "shouting hi\ncareful</pre>" in call["data"]["text/html"]
    assert answer["data"]["text/markdown"] == "Shouted."
    assert recorded_calls(client, [status])[0][0].output == "HI"  # prints are not sent


def widget_calls(comms: list[dict[str, Any]]) -> list[str]:
    """What a front end shows for the live widget now: the state of each function section."""
    replica = Replica()
    for ops in batches(comms):
        replica.apply(ops)
    return [call_state(text) for text in replica.texts() if "asst-function" in text]


def call_state(section: str) -> str:
    """``running`` from a summary ``name(…) · running…``; ``done`` once ``→ result`` shows."""
    summary = re.search(r"<summary[^>]*>(.*?)</summary>", section, flags=re.S)
    assert summary is not None, section
    words = html.unescape(re.sub(r"<[^>]+>", "", summary.group(1)))
    if "→ error" in words:
        return "error"
    return "done" if "→" in words else words.rsplit(" · ", 1)[1].rstrip("…")


def test_each_call_shows_running_while_it_runs(ip: Any) -> None:
    # No repaint is due in the whole run: only the repaint before each call can show it.
    ip.magics_manager.registry["AssistantMagics"].repaint_hz = 0.001
    seen: dict[str, list[str]] = {}

    @asst_magic.function
    def probe(tag: str) -> str:
        """Record what the live output shows while this call runs."""
        seen[tag] = widget_calls(comms)
        return tag

    with recording_comms() as comms:
        outputs = cell(ip, "fn probe")
    assert seen == {
        "a": ["running", "requested", "requested"],
        "b": ["done", "running", "requested"],
        "c": ["done", "done", "running"],
    }
    assert [status_of(p) for p in plain(outputs)[:3]] == ["done"] * 3


def test_interrupt_while_an_async_function_runs_cancels_the_run(
    ip: Any, client: openai.OpenAI
) -> None:
    started = threading.Event()

    @asst_magic.function
    async def wait_forever() -> str:
        """Never returns by itself."""
        started.set()
        _thread.interrupt_main()  # the ■ button, pressed while the function runs
        await asyncio.Event().wait()
        return "too late"

    with pytest.raises(RunInterrupted):
        cell(ip, "fn interrupted async")
    outputs = ip.display_pub.saved
    assert started.is_set()
    assert plain(outputs)[0] == "ƒ wait_forever({}) · error\n→ interrupted"
    assert plain(outputs)[-1].startswith("cancelled")
    ids = outputs[-1]["metadata"]["asst_magic"]
    run = client.beta.threads.runs.retrieve(ids["run_id"], thread_id=ids["thread_id"])
    assert run.status == "cancelled"


# -- registration and scoping -------------------------------------------------------------


def test_asst_functions_lists_and_removes(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    register_weather()
    ip.run_line_magic("asst_functions", "")
    assert "get_weather(city: str) -> str — Weather in a city." in capsys.readouterr().out
    ip.run_line_magic("asst_functions", "remove get_weather")
    assert capsys.readouterr().out == "Removed get_weather.\n"
    assert "get_weather" not in default_registry
    with pytest.raises(UsageError, match="No function named 'get_weather'"):
        ip.run_line_magic("asst_functions", "remove get_weather")


def run_tools(client: openai.OpenAI, outputs: list[dict[str, Any]]) -> list[str]:
    ids = outputs[-1]["metadata"]["asst_magic"]
    run = client.beta.threads.runs.retrieve(ids["run_id"], thread_id=ids["thread_id"])
    return [t.function.name if t.type == "function" else t.type for t in run.tools]


def test_every_registered_function_is_offered_by_default(ip: Any, client: openai.OpenAI) -> None:
    register_weather()

    @asst_magic.function
    def get_time() -> str:
        """The time."""
        return "noon"

    outputs = cell(ip, "fn scoped")
    assert run_tools(client, outputs) == ["code_interpreter", "get_weather", "get_time"]
    assert plain(outputs)[0] == "ƒ get_time({}) · done\n→ noon"


def test_functions_option_scopes_the_cell(ip: Any, client: openai.OpenAI) -> None:
    register_weather()

    @asst_magic.function
    def get_time() -> str:
        """The time."""
        return "noon"

    outputs = cell(ip, "fn scoped", "--new --functions get_time")
    assert run_tools(client, outputs) == ["code_interpreter", "get_time"]
    outputs = cell(ip, "fn scoped", "--new --functions none")
    assert run_tools(client, outputs) == ["code_interpreter"]
    # A function the cell did not offer is not run, even if the model asks for it.
    assert plain(outputs)[0] == (
        "ƒ get_time({}) · error\n→ no function named 'get_time' is registered; registered: none"
    )
    with pytest.raises(UsageError, match="--functions: no function named 'nope'"):
        ip.run_cell_magic("assistant", "--functions get_time,nope", "fn scoped")


# -- a real kernel ------------------------------------------------------------------------

DEFINITIONS = '''
import asyncio
import html
import re
import comm
import asst_magic

# What the front end receives from each comm: the live widget's op batches, recorded.
_sent = {}
_create_comm = comm.create_comm

def _recording_comm(**kwargs):
    made = _create_comm(**kwargs)
    send = made.send

    def recorded(data=None, *args, **keys):
        state = (data or {}).get("state") or {}
        _sent.setdefault(made.comm_id, []).extend(
            ops for key, ops in state.items() if re.fullmatch(r"b\\d+", key))
        return send(data, *args, **keys)

    made.send = recorded
    return made

comm.create_comm = _recording_comm

@asst_magic.function
def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"sunny in {city}"

@asst_magic.function
def explode() -> None:
    """Always fails."""
    raise ValueError("no fuse")

@asst_magic.function
async def slow_square(n: int) -> int:
    """n squared, after a pause on the event loop."""
    await asyncio.sleep(0.01)
    return n * n

@asst_magic.function
def big(n: int) -> str:
    """n characters."""
    return "x" * n

@asst_magic.function
def shout(word: str) -> str:
    """The word, loud (and a word on stderr)."""
    print(f"shouting {word}")
    import sys
    print("careful", file=sys.stderr)
    return word.upper()

@asst_magic.function
def probe(tag: str) -> list:
    """The status of each function block the live widget shows now."""
    parts = {}
    for ops in list(_sent.values())[-1]:  # the running cell's widget
        for op in ops:
            if op[0] == "part":
                parts[op[1]] = op[3]
    found = [re.search(r"<summary[^>]*>(.*?)</summary>", t) for t in parts.values()
             if "asst-function" in t]
    summaries = [html.unescape(re.sub(r"<[^>]+>", "", m.group(1))) for m in found]
    return ["done" if "→" in s else s.rsplit(" · ", 1)[1].rstrip("…") for s in summaries]
'''

KERNEL_CELLS = (
    "fn one call",
    "fn three parallel",
    "fn two rounds",
    "fn raises",
    "fn unknown",
    "fn bad json",
    "fn async",
    "fn large",
    "fn probe",
    "fn prints",
)


def run_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run every scenario in one notebook (one kernel, one server); outputs by cell text."""
    monkeypatch.setenv("ASST_MAGIC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASST_MAGIC_CASSETTE", str(CASSETTE))
    # The kernel (and the server it starts) import asst_magic: installed, or from the repo.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    sources = [
        "%load_ext asst_magic\n%config AssistantMagics.repaint_hz = 0.001",
        DEFINITIONS,
        *(f"%%assistant\n{text}" for text in KERNEL_CELLS),
        "%unload_ext asst_magic",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    cells = nbformat.read(path, as_version=4)["cells"][2:-1]
    return dict(zip(KERNEL_CELLS, [c["outputs"] for c in cells], strict=True))


def test_the_loop_in_a_real_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_notebook(tmp_path, monkeypatch)
    text = {name: plain(outputs) for name, outputs in out.items()}
    assert text["fn one call"][:2] == [
        'ƒ get_weather({\n  "city": "Paris"\n}) · done\n→ sunny in Paris',
        "It is sunny in Paris.",
    ]
    assert [t.rsplit("→ ", 1)[1] for t in text["fn three parallel"][:3]] == [
        "sunny in Oslo",
        "sunny in Rome",
        "sunny in Lima",
    ]
    assert text["fn two rounds"][1:3] == [
        'ƒ get_weather({\n  "city": "Rome"\n}) · done\n→ sunny in Rome',
        "Two rounds done.",
    ]
    assert text["fn raises"][:2] == [
        "ƒ explode({}) · error\n→ ValueError: no fuse",
        "The function failed.",
    ]
    assert "· error\n→ no function named 'no_such_function'" in text["fn unknown"][0]
    assert "are not valid JSON" in text["fn bad json"][0]
    assert text["fn async"][0] == 'ƒ slow_square({\n  "n": 7\n}) · done\n→ 49'
    assert text["fn large"][0].endswith(MARKER)
    assert text["fn prints"][:2] == [SHOUTED, "Shouted."]
    assert not any(o["output_type"] == "stream" for o in out["fn prints"])
    running = [json.loads(t.rsplit("→ ", 1)[1]) for t in text["fn probe"][:3]]
    assert running == [
        ["running", "requested", "requested"],
        ["done", "running", "requested"],
        ["done", "done", "running"],
    ]
    for name, outputs in out.items():
        assert text[name][-1].startswith("completed"), name
        assert not any(WIDGET in o.get("data", {}) for o in outputs)
    assert_server_recorded_the_truncated_output(tmp_path, out["fn large"])


def assert_server_recorded_the_truncated_output(
    tmp_path: Path, outputs: list[dict[str, Any]]
) -> None:
    """The kernel's server stopped at unload; a new one on the same data dir reads the run."""
    from asst_magic.server.config import ServerConfig
    from asst_magic.server.launch import spawn

    with spawn(ServerConfig(data_dir=tmp_path / "data")) as handle:
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.token)
        ((call,),) = recorded_calls(client, outputs)
        assert call.output == "x" * 20_000 + MARKER
