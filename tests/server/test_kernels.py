"""The kernel-backed code interpreter, with real ipykernel processes (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import psutil
import pytest

from asst_magic.server.code_interpreter.kernels import NETWORK_NOTE, KernelSandbox, create_sandbox
from asst_magic.server.code_interpreter.outputs import strip_ansi
from asst_magic.server.code_interpreter.sandbox import ImageOutput, LogsOutput, SandboxFile
from asst_magic.server.config import ServerConfig

pytestmark = pytest.mark.anyio

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHARS = 5_000


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[KernelSandbox]:
    """One sandbox shared by the tests that don't need special limits (pool of one)."""
    box = KernelSandbox(
        tmp_path_factory.mktemp("sandbox"), timeout=60.0, max_output_chars=MAX_CHARS
    )
    await box.start()
    yield box
    await box.aclose()


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[KernelSandbox]:
    """A sandbox with a 2 s timeout, a short idle time and no pool."""
    box = KernelSandbox(tmp_path, timeout=2.0, idle_timeout=1.0, pool_size=0, preload=())
    yield box
    await box.aclose()


async def run(
    box: KernelSandbox, thread: str, code: str, files: Sequence[SandboxFile] = ()
) -> tuple[str, list[bytes]]:
    """Execute and return (all logs joined, the PNGs), checking outputs are well formed."""
    logs, images = [], []
    async for output in box.execute(thread, code, files):
        if isinstance(output, LogsOutput):
            logs.append(output.text)
        else:
            assert isinstance(output, ImageOutput)
            images.append(output.png)
    return "".join(logs), images


def is_gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait for ``pid`` to end; a zombie left for init to reap counts as ended."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psutil.TimeoutExpired):
            process.wait(timeout=0.2)
            return True
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
    return False


def host_pids(seconds: str) -> list[int]:
    """Host process ids of ``sleep SECONDS`` processes (a distinctive ``seconds`` per test)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if (process.info["cmdline"] or [])[-2:] == ["sleep", seconds]:
            found.append(process.pid)
    return found


async def test_print_and_last_expression_go_to_logs(sandbox: KernelSandbox) -> None:
    logs, images = await run(sandbox, "t-print", "print('hello')\nx = 41\nx + 1")
    assert logs == "hello\n42\n"
    assert images == []


async def test_exception_gives_traceback_without_ansi(sandbox: KernelSandbox) -> None:
    logs, _ = await run(sandbox, "t-error", "def f():\n    return 1 / 0\nf()")
    assert "ZeroDivisionError: division by zero" in logs
    assert "Traceback" in logs and "return 1 / 0" in logs
    assert "\x1b" not in logs
    assert sandbox.last_outcome("t-error") == "completed"


def test_strip_ansi_removes_colour_codes() -> None:
    assert strip_ansi("\x1b[31mred\x1b[39m \x1b[1;32mgreen\x1b[0m\x1b]0;title\x07") == "red green"


async def test_matplotlib_plots_become_png_images(sandbox: KernelSandbox) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 3, 2]); plt.show()\n"
        "plt.figure(); plt.bar(['a', 'b'], [2, 5])  # shown inline at the end, no show()\n"
    )
    logs, images = await run(sandbox, "t-plot", code)
    assert len(images) == 2
    assert all(png.startswith(PNG_SIGNATURE) for png in images)
    assert "Figure" not in logs  # the figure's text/plain stand-in is not logged


async def test_variables_persist_in_a_thread_and_not_across(sandbox: KernelSandbox) -> None:
    await run(sandbox, "t-a", "secret = 'a-only'")
    logs_a, _ = await run(sandbox, "t-a", "print(secret)")
    logs_b, _ = await run(sandbox, "t-b", "print(secret)")
    assert logs_a == "a-only\n"
    assert "NameError: name 'secret' is not defined" in logs_b


async def test_files_are_readable_by_name_and_mnt_data(
    sandbox: KernelSandbox, tmp_path: Path
) -> None:
    stored = tmp_path / "file-abc123"
    stored.write_text("city,temp\nParis,21\nOslo,9\n")
    code = (
        "import os, pandas as pd\n"
        "print(pd.read_csv('weather.csv').shape)\n"
        "print(pd.read_csv('/mnt/data/weather.csv')['temp'].sum())\n"
        "print(sorted(os.listdir('/mnt/data')), os.path.exists('/mnt/data/weather.csv'))\n"
        "pd.DataFrame({'x': [1]}).to_csv('/mnt/data/out.csv', index=False)\n"
    )
    logs, _ = await run(sandbox, "t-files", code, [SandboxFile("weather.csv", stored)])
    assert logs == "(2, 2)\n30\n['weather.csv'] True\n"
    written = sandbox.resolve("t-files", "sandbox:/mnt/data/out.csv")
    assert written == sandbox.workdir("t-files") / "out.csv"
    assert written.read_text() == "x\n1\n"


async def test_kernel_has_memory_limit_and_own_process(sandbox: KernelSandbox) -> None:
    code = (
        "import os, resource\n"
        "print(resource.getrlimit(resource.RLIMIT_AS)[0], os.getpid())\n"
        "big = bytearray(3 * 1024**3)\n"
    )
    logs, _ = await run(sandbox, "t-memory", code)
    limit, pid = logs.splitlines()[0].split()
    assert int(limit) == 2 * 1024**3
    assert int(pid) != os.getpid()
    assert "MemoryError" in logs
    logs, _ = await run(sandbox, "t-memory", "print('still here')")
    assert logs == "still here\n"


async def test_million_line_print_is_truncated_with_marker(sandbox: KernelSandbox) -> None:
    logs, _ = await run(sandbox, "t-flood", "for i in range(1_000_000):\n    print(i)")
    assert logs.startswith("0\n1\n2\n")
    assert "[output truncated: only the first 5,000 characters are shown" in logs
    assert len(logs) < MAX_CHARS + 300
    assert sandbox.last_outcome("t-flood") == "completed"


async def test_error_after_truncation_is_still_named(sandbox: KernelSandbox) -> None:
    logs, _ = await run(sandbox, "t-flood-error", "print('x' * 10**8)\nint('seven')")
    assert "[output truncated" in logs
    assert "ValueError: invalid literal for int() with base 10: 'seven'" in logs


async def test_kernel_exit_is_recovered_and_says_state_lost(sandbox: KernelSandbox) -> None:
    await run(sandbox, "t-exit", "kept = 1")
    logs, _ = await run(sandbox, "t-exit", "import os\nos._exit(1)")
    assert "kernel running this code died (exit code 1)" in logs
    assert "variables and imports were lost" in logs
    assert sandbox.last_outcome("t-exit") == "kernel_died"
    logs, _ = await run(sandbox, "t-exit", "print('fresh')\nprint('kept' in globals())")
    assert "previous Python kernel died (exit code 1)" in logs
    assert logs.endswith("fresh\nFalse\n")


async def test_infinite_loop_times_out_and_kernel_stays_usable(quick: KernelSandbox) -> None:
    await run(quick, "t-loop", "before = 5")
    logs, _ = await run(quick, "t-loop", "while True:\n    pass")
    assert "Execution timed out after 2 s" in logs
    assert quick.last_outcome("t-loop") == "timed_out"
    logs, _ = await run(quick, "t-loop", "print(before)")
    assert logs == "5\n"


async def test_code_ignoring_interrupts_gets_killed_and_thread_recovers(
    quick: KernelSandbox,
) -> None:
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    logs, _ = await run(quick, "t-stubborn", code)
    assert "Execution timed out after 2 s and did not stop when interrupted" in logs
    assert "variables and imports were lost" in logs
    logs, _ = await run(quick, "t-stubborn", "print('again')")
    assert "did not stop when interrupted after a timeout and was restarted" in logs
    assert logs.endswith("again\n")


async def test_close_thread_stops_its_kernel_and_deletes_files(quick: KernelSandbox) -> None:
    await run(quick, "t-closed", "open('/mnt/data/note.txt', 'w').write('x')")
    (pid,) = quick.kernel_pids()
    await quick.close_thread("t-closed", delete_files=True)
    assert is_gone(pid)
    assert not quick.workdir("t-closed").exists()


async def test_kernel_env_is_an_allow_list_with_a_private_home(
    quick: KernelSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "DATABASE_URL", "MY_DB_PASS"):
        monkeypatch.setenv(name, "canary-must-not-leak")
    code = "import os\nprint(sorted(os.environ))\nprint(os.environ['HOME'], os.getcwd())"
    logs, _ = await run(quick, "t-env", code)
    assert "canary" not in logs and "DATABASE_URL" not in logs and "MY_DB_PASS" not in logs
    names = set(eval(logs.splitlines()[0]))
    assert {"PATH", "HOME", "IPYTHONDIR", "MPLBACKEND"} <= names
    assert logs.splitlines()[1] == "/mnt/data /mnt/data"


async def test_network_is_off_unless_allowed_and_then_said_once(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    code = (
        "import socket\ntry:\n"
        f"    socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), 3).close()\n"
        "    print('connected')\nexcept OSError as exc:\n    print(type(exc).__name__)"
    )
    closed = KernelSandbox(tmp_path / "closed", pool_size=0, preload=(), sandbox="required")
    opened = KernelSandbox(
        tmp_path / "open", pool_size=0, preload=(), sandbox="required", network=True
    )
    try:
        assert (await run(closed, "t-net", code))[0] != "connected\n"
        assert (await run(opened, "t-net", code))[0] == f"[Note: {NETWORK_NOTE}]\nconnected\n"
        assert (await run(opened, "t-net", code))[0] == "connected\n"
    finally:
        listener.close()
        await asyncio.gather(closed.aclose(), opened.aclose())


async def test_kernel_has_a_process_limit(sandbox: KernelSandbox) -> None:
    code = "import resource\nprint(resource.getrlimit(resource.RLIMIT_NPROC))"
    logs, _ = await run(sandbox, "t-nproc", code)
    assert logs == "(256, 256)\n"


async def test_idle_kernel_is_shut_down_and_next_run_says_so(quick: KernelSandbox) -> None:
    await run(quick, "t-idle", "value = 1")
    (pid,) = quick.kernel_pids()
    assert await asyncio.to_thread(is_gone, pid)  # idle_timeout is 1 s
    logs, _ = await run(quick, "t-idle", "print('value' in globals())")
    assert "previous Python kernel was shut down after 1 s without use" in logs
    assert logs.endswith("False\n")


async def test_aclose_leaves_no_kernel_processes(tmp_path: Path) -> None:
    box = KernelSandbox(tmp_path, pool_size=1, preload=())
    await box.start()
    marker = f"600.{os.getpid()}"
    spawn = f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)"
    await run(box, "t-one", spawn)
    await run(box, "t-two", "print(2)")
    await box.start()  # wait for the pool's refill too
    pids = [*box.kernel_pids(), *host_pids(marker)]
    assert len(pids) == 4  # two threads' kernels, the refilled pool's, the subprocess
    await box.aclose()
    await box.aclose()  # idempotent
    assert [pid for pid in pids if not is_gone(pid)] == []


ORPHAN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from asst_magic.server.code_interpreter.kernels import KernelSandbox

CODE = f'''
import subprocess
subprocess.Popen(['sleep', '{sys.argv[3]}'])
subprocess.Popen(['sleep', '{sys.argv[3]}'], start_new_session=True)  # leaves its group
'''

async def main():
    box = KernelSandbox(Path(sys.argv[1]), pool_size=0, preload=(), sandbox=sys.argv[2])
    async for _ in box.execute("t-orphan", CODE):
        pass
    print(*box.kernel_pids(), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["required", "off"])
async def test_nothing_outlives_a_server_killed_with_sigkill(tmp_path: Path, mode: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    marker = f"600.{os.getpid()}{len(mode)}"  # this test's sleeps, among everyone's processes
    argv = [sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path), mode, marker]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    try:
        assert server.stdout is not None
        (pid,) = map(int, server.stdout.readline().split())
        assert len(host_pids(marker)) == 2
    finally:
        server.kill()  # SIGKILL: no clean-up code runs
        server.wait()
    assert is_gone(pid)
    if mode == "required":  # gone with the server, before anything cleans up
        assert [p for p in host_pids(marker) if not is_gone(p)] == []
    # Sandboxed, the PID namespace dies with the server; unconfined, the next start
    # ends what the dead server's kernels left (recorded by their tag) and its files.
    box = KernelSandbox(tmp_path, pool_size=0, preload=(), sandbox=mode)
    await box.start()
    try:
        assert [p for p in host_pids(marker) if not is_gone(p)] == []
        runtime = box.launcher._runtime
        assert runtime is not None and [p.name for p in runtime.parent.iterdir()] == [runtime.name]
    finally:
        await box.aclose()
    assert not runtime.parent.exists()  # no runtime files left at all


def test_create_sandbox_follows_server_config(tmp_path: Path) -> None:
    box = create_sandbox(ServerConfig(data_dir=tmp_path, code_timeout=7.5, code_max_kernels=3))
    assert box.root == tmp_path.resolve() / "sandbox"
    assert (box.timeout, box.max_kernels) == (7.5, 3)
    assert create_sandbox(ServerConfig(data_dir=tmp_path)).max_kernels == 8


async def cancel_mid_execution(box: KernelSandbox, thread: str, code: str) -> None:
    """Start ``code``, and cancel the consuming task once it has printed something."""
    printed = asyncio.Event()

    async def consume() -> None:
        async for _ in box.execute(thread, code):
            printed.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(printed.wait(), 30)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_cancelled_execution_leaves_next_ones_output_and_state(quick: KernelSandbox) -> None:
    await run(quick, "t-cancel", "x = 42")
    for _ in range(3):  # losing the next output was a race: go round a few times
        await cancel_mid_execution(quick, "t-cancel", "print('looping', flush=True)\nwhile 1: pass")
        logs, _ = await run(quick, "t-cancel", "print(x + 1)")
        assert logs == "43\n"


async def test_cancelled_code_ignoring_interrupts_is_restarted_and_says_so(
    quick: KernelSandbox,
) -> None:
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('on', flush=True)"
    await cancel_mid_execution(quick, "t-deaf", code + "\nwhile True:\n    pass")
    logs, _ = await run(quick, "t-deaf", "print('fresh')")
    assert "did not stop when its run was cancelled and was restarted" in logs
    assert logs.endswith("fresh\n")


async def test_kernel_limit_retires_least_recently_used_idle_kernel(tmp_path: Path) -> None:
    box = KernelSandbox(tmp_path, max_kernels=2, pool_size=0, preload=())
    try:
        await run(box, "t-a", "a = 1")
        await run(box, "t-b", "b = 1")
        (pid_a, pid_b) = box.kernel_pids()
        await run(box, "t-a", "a += 1")  # t-b is now the least recently used
        await run(box, "t-c", "c = 1")
        assert await asyncio.to_thread(is_gone, pid_b)
        assert len(box.kernel_pids()) == 2 and pid_a in box.kernel_pids()
        logs, _ = await run(box, "t-a", "print(a)")
        assert logs == "2\n"
        logs, _ = await run(box, "t-b", "print('b' in globals())")
        assert "was shut down to make room for another thread's kernel (at most 2" in logs
        assert logs.endswith("False\n")
    finally:
        await box.aclose()


def kernel_count(runtime: Path) -> int:
    """Live kernel processes (bwrap ones when confined) whose files are in ``runtime``."""
    count = 0
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):  # one that just ended
            count += any(a.startswith(str(runtime)) for a in child.cmdline())
    return count


async def test_kernel_limit_holds_for_concurrent_new_threads(tmp_path: Path) -> None:
    box = KernelSandbox(tmp_path, max_kernels=2, pool_size=0, preload=())
    await box.start()
    runtime = box.launcher._runtime
    assert runtime is not None
    code = "import time\nstart = time.time()\ntime.sleep(0.3)\nprint(start, time.time())"
    try:
        results = await asyncio.gather(*(run(box, f"t-many-{n}", code) for n in range(5)))
        spans = [tuple(map(float, logs.split()[-2:])) for logs, _ in results]
        assert len(spans) == 5
        # At most two ran at once: at each start, count the spans in progress.
        assert max(sum(s <= t < e for s, e in spans) for t, _ in spans) == 2
        # Evicted kernels were shut down (in the background): two processes are left.
        deadline = time.monotonic() + 10
        while kernel_count(runtime) > 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert kernel_count(runtime) == 2
    finally:
        await box.aclose()


async def test_thread_ids_cannot_escape_the_root(sandbox: KernelSandbox) -> None:
    with pytest.raises(ValueError, match="invalid thread id"):
        sandbox.workdir("../etc")
    assert sandbox.resolve("t-x", "/mnt/data/../../secret") is None
    assert sandbox.resolve("t-x", "/etc/passwd") is None
    assert sandbox.resolve("t-x", "sandbox:/mnt/data") is None
    assert sandbox.resolve("t-x", "/mnt/data/a/b.png") == sandbox.workdir("t-x") / "a" / "b.png"


async def test_run_code_returns_printed_text_and_keeps_notes_for_the_user(
    quick: KernelSandbox,
) -> None:
    await run(quick, "t-api", "import os\nos._exit(1)")
    assert await quick.run_code("t-api", "x = 5\nprint(x * 2)") == "10\n"
    assert await quick.run_code("t-api", "print(x)") == "5\n"
    logs, _ = await run(quick, "t-api", "print(x + 1)")
    assert logs.startswith("[Note: this thread's previous Python kernel died")
    assert logs.endswith("6\n")
