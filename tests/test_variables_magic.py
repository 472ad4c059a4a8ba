"""``--var``, ``%asst_get`` and ``%asst_code`` in a fresh shell against real servers and kernels.

The cassette's user messages include the ``--var`` descriptions, built here with the
same public functions the magic uses, so a change to what the model is told shows up
as a replay miss.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from magic_support import NotebookPublisher, SharedServer

from asst_magic.data_magics import DataMagics
from asst_magic.magics import AssistantMagics
from asst_magic.variables import describe, message_block

SALES = pd.DataFrame({"region": ["north", "south", "north"], "revenue": [1.5, 2.0, 3.0]})
SHARED = {
    "series": pd.Series([1, 2], name="units"),
    "grid": np.arange(6).reshape(2, 3),
    "config": {"a": 1, "tags": ["x"]},
    "count": 41,
}
MARKER = "/tmp/asst-magic-i13-pwned"  # written only if hostile code ran here
SECRET = "/tmp/asst-magic-i13-secret.txt"  # outside every thread's working directory

SUMMARY_CODE = (
    "summary = df.groupby('region', as_index=False).revenue.sum()\n"
    "summary.to_csv('/mnt/data/summary.csv', index=False)\nprint(summary)"
)
MAKE_VALUES = """\
import numpy as np, pandas as pd, matplotlib.pyplot as plt
frame = pd.DataFrame({"k": ["a", "b"], "v": [1, 2]})
series = frame.v
array = np.eye(2)
config = {"rows": 2, "ok": True}
total = np.int64(3)
fig, ax = plt.subplots(); ax.plot([1, 2]); plt.close(fig)
class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch %s",))
evil = Evil()
""".replace("%s", MARKER)
HOSTILE = """\
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
_save = np.save
bad = np.array([Evil()], dtype=object)
np.save = lambda f, a, allow_pickle=False: _save(f, bad, allow_pickle=True)
sneaky = np.zeros(2)
nulls = pa.table({"a": pa.nulls(100_000_000)})
pd.DataFrame.to_parquet = lambda self, f, **k: pq.write_table(nulls, f)
huge = pd.DataFrame()
"""
# Model code that swaps the file %asst_get's snippet writes for a link to a secret.
PLANT_LINK = f"""\
import builtins, os
def open(path, mode="r", *args, **kwargs):
    if str(path).startswith("/mnt/data/.asst_magic_get_"):
        os.symlink({SECRET!r}, os.path.basename(path))
        return builtins.open(os.devnull, mode)
    return builtins.open(path, mode, *args, **kwargs)
frame = {{"a": 1}}
"""
SHOW_TYPES = (
    "print(type(series).__name__, series.name, list(series), grid.shape, grid.dtype, "
    "config['tags'], count + 1)"
)
REMOTE_CODE = (
    "import pandas as pd\nprint(pd.read_parquet(open('/mnt/data/df.parquet', 'rb')).revenue.sum())"
)


def code_turns(code: str, text: str = "Done.") -> list[dict[str, Any]]:
    return [{"tool_calls": [{"type": "code_interpreter", "input": code}]}, {"text": text}]


def entries() -> list[dict[str, Any]]:
    shared = message_block([describe(name, value) for name, value in SHARED.items()])
    remote = message_block([describe("df", SALES)], ["df.parquet"])
    return [
        {
            "user": "Sum revenue by region" + message_block([describe("df", SALES)]),
            "turns": code_turns(SUMMARY_CODE, "See [summary.csv](sandbox:/mnt/data/summary.csv)."),
        },
        {"user": "make values", "turns": code_turns(MAKE_VALUES)},
        {"user": "make hostile values", "turns": code_turns(HOSTILE)},
        {"user": "show types" + shared, "turns": code_turns(SHOW_TYPES)},
        {"user": "total revenue" + remote, "turns": code_turns(REMOTE_CODE)},
        {"user": "just talk", "turns": [{"text": "No code."}]},
        {"user": "plant a link", "turns": code_turns(PLANT_LINK)},
    ]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str]]:
    """The local server and a second one reached as a remote `assistants` backend."""
    from asst_magic.server.config import ServerConfig
    from asst_magic.server.launch import spawn

    root = tmp_path_factory.mktemp("variables")
    cassette = root / "variables.jsonl"
    cassette.write_text("".join(json.dumps(e) + "\n" for e in entries()), encoding="utf-8")
    local = spawn(ServerConfig(data_dir=root / "local", cassettes=(cassette,)))
    remote = spawn(ServerConfig(data_dir=root / "remote", cassettes=(cassette,)))
    with local, remote:
        client = openai.OpenAI(base_url=remote.base_url, api_key=remote.token)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            tools: Any = [{"type": "code_interpreter"}]
            assistant = client.beta.assistants.create(model="replay", tools=tools)
        yield local, remote, assistant.id


@pytest.fixture
def ip(servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    local, remote, assistant_id = servers
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell()
    shell.display_pub = NotebookPublisher()
    environ = {"OPENAI_BASE_URL": remote.base_url, "OPENAI_API_KEY": remote.token}
    magics = AssistantMagics(
        shell,
        environ=environ | {"ASSISTANT_ID": assistant_id},
        launcher=lambda config: SharedServer(local),
    )
    magics.backend, magics.display, magics.cassette = "local", "text", "unused-by-shared-server"
    shell.register_magics(magics)
    shell.register_magics(DataMagics(shell, magics))
    Path(MARKER).unlink(missing_ok=True)
    yield shell
    magics.close()


def test_a_dataframe_goes_in_its_summary_comes_back_and_the_code_can_be_inserted(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["df"] = SALES
    ip.run_cell_magic("assistant", "--var df -o result", "Sum revenue by region\n")
    result = ip.user_ns["result"]
    assert result.status == "completed"
    assert result.steps[0].logs.split() == [
        "region",
        "revenue",
        "0",
        "north",
        "4.5",
        "1",
        "south",
        "2.0",
    ]
    capsys.readouterr()
    ip.run_line_magic("asst_get", "summary as table")
    assert capsys.readouterr().out == "table ← DataFrame, 2 rows × 2 columns\n"
    expected = SALES.groupby("region", as_index=False).revenue.sum()
    pd.testing.assert_frame_equal(ip.user_ns["table"], expected)

    ip.run_line_magic("asst_code", "")  # no Jupyter kernel here: printed
    printed = capsys.readouterr().out
    # Linked in the answer and attached as a file the code wrote: one file, its own name.
    (saved,) = set(result.files.values())
    assert saved == "assistant_files/summary.csv"
    assert printed == result.code + "\n"
    assert printed.splitlines() == [
        f"# asst_magic: code the assistant ran in run {result.run_id} (thread {result.thread_id})",
        "summary = df.groupby('region', as_index=False).revenue.sum()",
        f"summary.to_csv('{saved}', index=False)",
        "print(summary)",
    ]


def test_each_supported_type_goes_in(ip: Any) -> None:
    ip.user_ns.update(SHARED)
    ip.run_cell_magic("assistant", "-o r " + " ".join(f"--var {n}" for n in SHARED), "show types")
    assert ip.user_ns["r"].steps[0].logs == "Series units [1, 2] (2, 3) int64 ['x'] 42\n"


def test_each_supported_type_comes_back(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_cell_magic("assistant", "", "make values")
    for name in ("frame", "series", "array", "config", "total", "fig"):
        ip.run_line_magic("asst_get", name)
    ns = ip.user_ns
    pd.testing.assert_frame_equal(ns["frame"], pd.DataFrame({"k": ["a", "b"], "v": [1, 2]}))
    assert list(ns["series"]) == [1, 2] and ns["series"].name == "v"
    np.testing.assert_array_equal(ns["array"], np.eye(2))
    assert ns["config"] == {"rows": 2, "ok": True} and ns["total"] == 3
    assert ns["fig"].data.startswith(b"\x89PNG")
    shown = ip.display_pub.outputs[-1]["data"]
    assert "image/png" in shown  # the figure is shown inline
    assert capsys.readouterr().out.splitlines()[-6:] == [
        "frame ← DataFrame, 2 rows × 2 columns",
        "series ← Series, shape 2",
        "array ← ndarray, shape 2×2",
        "config ← dict of 2 items",
        "total ← int",
        "fig ← figure (PNG, shown above)",
    ]


def test_unsupported_missing_and_hostile_values_are_refused(ip: Any) -> None:
    ip.run_cell_magic("assistant", "", "make values")
    thread = ip.magics_manager.registry["AssistantMagics"].thread_id
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("asst_get", "evil")
    assert str(caught.value).startswith(
        "%asst_get evil: evil is a __main__.Evil, which "
        "cannot be sent back safely. Supported: pandas DataFrame or Series (Parquet)"
    )
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("asst_get", "nothing_here")
    assert str(caught.value).startswith(
        f"%asst_get nothing_here: no variable nothing_here in thread {thread}."
    )

    ip.run_cell_magic("assistant", "", "make hostile values")
    with pytest.raises(UsageError, match="holds Python objects \\(dtype object\\)"):
        ip.run_line_magic("asst_get", "sneaky")
    with pytest.raises(UsageError, match="declares 100,000,000 rows"):
        ip.run_line_magic("asst_get", "huge")
    assert not Path(MARKER).exists()  # nothing from the sandbox ran here
    assert "sneaky" not in ip.user_ns and "huge" not in ip.user_ns


def test_a_link_planted_in_place_of_the_value_is_not_followed(ip: Any) -> None:
    Path(SECRET).write_text("TOPSECRET")
    ip.run_cell_magic("assistant", "", "plant a link")
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("asst_get", "frame")
    assert str(caught.value).startswith(
        "%asst_get frame: The code interpreter wrote no readable file for frame"
    )
    assert "frame" not in ip.user_ns and "TOPSECRET" not in str(caught.value)


def test_values_that_cannot_go_in_are_refused_before_anything_is_posted(ip: Any) -> None:
    magics = ip.magics_manager.registry["AssistantMagics"]
    ip.user_ns.update(conn=object(), big=np.zeros(1000), df=SALES)
    with pytest.raises(UsageError, match=r"^--var conn is a object, which --var cannot send"):
        ip.run_cell_magic("assistant", "--var conn", "Sum revenue by region")
    with pytest.raises(UsageError, match=r"^--var undefined is not defined in this notebook"):
        ip.run_cell_magic("assistant", "--var undefined", "Sum revenue by region")
    magics.max_var_bytes = 4000
    with pytest.raises(UsageError, match=r"^--var big is 8\.1 kB as npy, over the 4.0 kB limit"):
        ip.run_cell_magic("assistant", "--var big", "Sum revenue by region")
    assert magics.thread_id is None  # no thread was started for a refused cell


def test_asst_code_names_runs_without_code(ip: Any) -> None:
    ip.run_cell_magic("assistant", "", "just talk")
    with pytest.raises(UsageError, match=r"^%asst_code: run run_\w+ ran no code\.$"):
        ip.run_line_magic("asst_code", "")
    with pytest.raises(UsageError, match=r"^%asst_code: no run run_nope in thread thread_"):
        ip.run_line_magic("asst_code", "--run run_nope")


def test_a_remote_backend_gets_the_value_as_an_attached_file(ip: Any, servers: Any) -> None:
    _, remote, _ = servers
    ip.user_ns["df"] = SALES
    ip.run_cell_magic("assistant", "--backend assistants --var df -o r", "total revenue")
    result = ip.user_ns["r"]
    assert result.status == "completed" and result.steps[0].logs == "6.5\n"
    client = openai.OpenAI(base_url=remote.base_url, api_key=remote.token)
    (question,) = [
        m for m in client.beta.threads.messages.list(result.thread_id).data if m.role == "user"
    ]
    (attachment,) = question.attachments or []
    assert client.files.retrieve(attachment.file_id).filename == "df.parquet"
    assert "attached as files" in question.content[0].text.value


def test_load_registers_the_data_magics_and_unload_removes_them() -> None:
    import asst_magic

    shell = InteractiveShell()
    asst_magic.load_ipython_extension(shell)
    assert {"asst_get", "asst_code"} <= set(shell.magics_manager.magics["line"])
    asst_magic.unload_ipython_extension(shell)
    assert not {"asst_get", "asst_code"} & set(shell.magics_manager.magics["line"])
    assert "DataMagics" not in shell.magics_manager.registry
