"""Issue 09: model-written code attacks its own sandbox, through the public API only.

A real server subprocess (``code_sandbox = required``, so a missing bubblewrap
fails these tests instead of passing them unconfined) holds canaries in its
environment and a secret in its ``$HOME``; replay cassettes play the code that
tries to reach them, through the real ``openai`` SDK over loopback.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from server_support import client_for, write_cassette

from asst_magic.server import ServerConfig
from asst_magic.server.launch import spawn

CANARY = "canary-7f3e9a"
ESCAPED = f"escaped-{os.getpid()}.txt"  # unique: an unconfined run would really leave it
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scripts(home: Path, data_dir: Path, server_port: int, other_port: int) -> dict[str, str]:
    """The attempts, keyed by the user message that plays them."""
    return {
        "read home": f"""
import json, os
found = {{}}
for path in [{str(home / ".ssh" / "id_rsa")!r}, {str(home)!r}, os.path.expanduser("~/.ssh")]:
    try:
        found[path] = open(path).read() if os.path.isfile(path) else os.listdir(path)
    except OSError as exc:
        found[path] = type(exc).__name__
print(json.dumps(found))
""",
        "find canaries": f"""
import glob, json, os
hits = [k for k, v in os.environ.items() if {CANARY!r} in k + v]
scanned = 0
for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
    try:
        data = open(path, "rb").read()
    except OSError:
        continue
    scanned += 1
    if {CANARY!r}.encode() in data:
        hits.append(path)
print(json.dumps({{"hits": hits, "scanned": scanned, "pids": sorted(os.listdir("/proc"))[:0]}}))
""",
        "write outside": f"""
import json, os
written = []
for path in [{str(data_dir / ESCAPED)!r}, {str(home / ESCAPED)!r},
             "/mnt/data/../{ESCAPED}", "/usr/{ESCAPED}", "/etc/{ESCAPED}",
             "/{ESCAPED}", "/tmp/{ESCAPED}", "inside.txt"]:
    try:
        with open(path, "w") as file:
            file.write("x")
        written.append(path)
    except OSError:
        pass
print(json.dumps(written))
""",
        "leave a secret": "open('/mnt/data/a_secret.txt', 'w').write('thread A only')",
        "look for thread A": f"""
import json, os
seen = {{"mnt": os.listdir("/mnt"), "data": sorted(os.listdir("/mnt/data"))}}
for path in [{str(data_dir)!r}, {str(data_dir / "sandbox")!r}, {str(data_dir / "asst.sqlite3")!r}]:
    seen[path] = os.path.exists(path)
names = []
for top in ("/", "/tmp", "/run", "/mnt"):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if root != "/" or d not in ("proc", "sys", "usr", "dev")]
        names += [n for n in files if n in ("a_secret.txt", "asst.sqlite3")]
seen["found"] = names
print(json.dumps(seen))
""",
        "call home": f"""
import json, socket
result = {{}}
for port in ({server_port}, {other_port}):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        result[port] = "connected"
    except OSError as exc:
        result[port] = type(exc).__name__
try:
    socket.getaddrinfo("pypi.org", 443)
    result["dns"] = "resolved"
except OSError as exc:
    result["dns"] = type(exc).__name__
print(json.dumps(result))
""",
        "normal work": """
import numpy as np, pandas as pd, matplotlib.pyplot as plt
sales = pd.read_csv("sales.csv")
print(sales["amount"].sum(), open("/mnt/data/sales.csv").readline().strip())
pd.DataFrame({"x": np.arange(3)}).to_csv("/mnt/data/out.csv", index=False)
open("note.txt", "w").write("cwd works")
print(open("/mnt/data/note.txt").read(), open("out.csv").read().split())
plt.plot(np.arange(5) ** 2)
plt.savefig("/mnt/data/plot.png")
plt.show()
""",
    }


@dataclass
class Server:
    client: openai.OpenAI
    assistant_id: str
    data_dir: Path
    home: Path
    server_port: int
    other_port: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("sandboxed")
    home, data_dir = root / "home", root / "data"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(f"PRIVATE KEY {CANARY}")
    listener = socket.create_server(("127.0.0.1", 0))  # a loopback service to reach for
    other_port, port = listener.getsockname()[1], free_port()
    entries = [
        {
            "user": user,
            "turns": [
                {"tool_calls": [{"type": "code_interpreter", "input": code}]},
                {"text": "Done."},
            ],
        }
        for user, code in scripts(home, data_dir, port, other_port).items()
    ]
    config = ServerConfig(
        data_dir=data_dir,
        port=port,
        token=f"token-{CANARY}",
        cassettes=(write_cassette(root / "cassette.jsonl", entries),),
        code_sandbox="required",
        code_pool_size=1,
    )
    saved = dict(os.environ)
    os.environ.update(HOME=str(home), DATABASE_URL=f"postgres://u:{CANARY}@db", MY_DB_PASS=CANARY)
    try:
        handle = spawn(config)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = client_for(handle)
            assistant = client.beta.assistants.create(
                model="replay", tools=[{"type": "code_interpreter"}]
            )
            yield Server(client, assistant.id, data_dir, home, port, other_port)
    finally:
        handle.stop()
        listener.close()


def ask(server: Server, text: str, thread_id: str | None = None, **message: Any) -> tuple[Any, str]:
    """Run the cassette's code for ``text``; return the run and the code's logs."""
    client = server.client
    thread_id = thread_id or client.beta.threads.create().id
    client.beta.threads.messages.create(thread_id, role="user", content=text, **message)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=server.assistant_id, poll_interval_ms=50
    )
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    outputs = steps[0].step_details.tool_calls[0].code_interpreter.outputs
    return run, "".join(o.logs for o in outputs if o.type == "logs")


def printed(logs: str) -> Any:
    """The JSON the attempt printed last."""
    return json.loads(logs.strip().splitlines()[-1])


def test_a_secret_in_home_is_unreadable(server: Server) -> None:
    run, logs = ask(server, "read home")
    assert run.status == "completed"
    assert CANARY not in logs
    found = printed(logs)
    assert found[str(server.home / ".ssh" / "id_rsa")] == "FileNotFoundError"
    assert found[str(server.home)] == "FileNotFoundError"


def test_no_canary_from_the_server_environment_anywhere(server: Server) -> None:
    _, logs = ask(server, "find canaries")
    result = printed(logs)
    assert result["hits"] == []
    assert result["scanned"] >= 2  # it did read its own /proc entries


def test_nothing_is_written_outside_the_working_dir(server: Server) -> None:
    run, logs = ask(server, "write outside")
    # Inside, only its own folder and its private /tmp took the writes.
    assert printed(logs) == [f"/tmp/{ESCAPED}", "inside.txt"]
    workdir = server.data_dir / "sandbox" / run.thread_id
    assert (workdir / "inside.txt").read_text() == "x"
    escaped = [server.data_dir, server.home, Path("/usr"), Path("/etc"), Path("/"), Path("/tmp")]
    escaped += [server.data_dir / "sandbox"]
    assert [folder for folder in escaped if (folder / ESCAPED).exists()] == []


def test_thread_b_sees_neither_thread_a_nor_the_database(server: Server) -> None:
    first, _ = ask(server, "leave a secret")
    assert (server.data_dir / "sandbox" / first.thread_id / "a_secret.txt").exists()
    _, logs = ask(server, "look for thread A")
    seen = printed(logs)
    assert seen["mnt"] == ["data"] and seen["data"] == []
    assert seen[str(server.data_dir)] is False
    assert seen[str(server.data_dir / "asst.sqlite3")] is False
    assert seen["found"] == []


def test_no_tcp_to_the_server_or_any_loopback_port(server: Server) -> None:
    _, logs = ask(server, "call home")
    result = printed(logs)
    assert result[str(server.server_port)] != "connected"
    assert result[str(server.other_port)] != "connected"
    assert result["dns"] != "resolved"


def test_normal_work_still_works(server: Server) -> None:
    upload = server.client.files.create(
        file=("sales.csv", b"region,amount\nnorth,10\nsouth,32\n"), purpose="assistants"
    )
    attachment = {"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}
    run, logs = ask(server, "normal work", attachments=[attachment])
    assert run.status == "completed"
    assert logs.splitlines()[:2] == ["42 region,amount", "cwd works ['x', '0', '1', '2']"]
    workdir = server.data_dir / "sandbox" / run.thread_id
    assert (workdir / "plot.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (workdir / "out.csv").read_text() == "x\n0\n1\n2\n"
    steps = server.client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data
    outputs = steps[-1].step_details.tool_calls[0].code_interpreter.outputs
    (image,) = [o for o in outputs if o.type == "image"]
    png = server.client.files.content(image.image.file_id).read()
    assert png.startswith(PNG_SIGNATURE)
