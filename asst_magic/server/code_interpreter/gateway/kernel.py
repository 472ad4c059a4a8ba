"""One kernel on a Jupyter Enterprise Gateway, driven over its channels websocket.

It answers the sandbox exactly as a local ``KernelProcess`` does (execute
requests, IOPub messages, interrupt, shutdown), and carries its own
``/mnt/data`` in the kernel's host: a private temporary folder there, which
``boot`` maps ``/mnt/data`` onto, mirrored with the server's working directory.

Example::

    kernel = await GatewayKernel.start(client, "python3", startup_timeout=60)
    await kernel.boot(max_output_chars=50_000)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket as stdlib_socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tornado.websocket import WebSocketClientConnection, WebSocketClosedError

from asst_magic.server.code_interpreter import boot as kernel_boot
from asst_magic.server.code_interpreter.channels import KernelSetupError, SetupCode
from asst_magic.server.code_interpreter.gateway import files, remote
from asst_magic.server.code_interpreter.gateway.client import GatewayClient, GatewayError
from asst_magic.server.code_interpreter.process import KernelStartError

__all__ = ["GatewayKernel"]

log = logging.getLogger(__name__)
_SOURCES = {
    kernel_boot.MODULE_NAME: Path(kernel_boot.__file__).read_text(encoding="utf-8"),
    remote.MODULE_NAME: Path(remote.__file__).read_text(encoding="utf-8"),
}
_ENDED = {
    "restarting": "the gateway saw it exit and restarted it empty",
    "dead": "the gateway reports it dead",
}


class GatewayKernel(SetupCode):
    """A started gateway kernel: its id, its websocket, and its ``/mnt/data`` mirror."""

    def __init__(
        self, client: GatewayClient, kernel_id: str, socket: WebSocketClientConnection
    ) -> None:
        self.client = client
        self.kernel_id = kernel_id
        self.mirror = files.FileMirror()
        self._socket = socket
        self._session = uuid.uuid4().hex
        self._iopub: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ended: str | None = None
        self._closing = False
        self._sends: set[asyncio.Future[None]] = set()
        self._connected = True
        self._reader = asyncio.get_running_loop().create_task(self._read(socket))

    def __repr__(self) -> str:
        return f"GatewayKernel({self.kernel_id!r} on {self.client.url})"

    @classmethod
    async def start(
        cls, client: GatewayClient, kernelspec: str, *, startup_timeout: float = 60.0
    ) -> GatewayKernel:
        """Start a ``kernelspec`` kernel on the gateway and wait until it answers."""
        try:
            kernel_id = await client.start_kernel(kernelspec)
        except GatewayError as exc:
            raise KernelStartError(str(exc)) from None
        try:
            kernel = cls(client, kernel_id, await client.connect(kernel_id))
        except GatewayError as exc:
            await _forget(client, kernel_id)
            raise KernelStartError(str(exc)) from None
        try:
            await kernel._wait_ready(startup_timeout)
        except BaseException:
            await kernel.shutdown()
            raise
        return kernel

    async def _wait_ready(self, timeout: float) -> None:
        """Ask for ``kernel_info`` until the kernel answers (as ``wait_for_ready`` does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and self._ended is None:
            reply = self._request("kernel_info_request", {})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reply, min(1.0, max(deadline - loop.time(), 0.01)))
                return
        raise KernelStartError(
            f"the gateway kernel {self.kernel_id} did not answer within {timeout:g} s"
            + (f" ({self._ended})" if self._ended else "")
        )

    async def boot(
        self,
        *,
        max_output_chars: int,
        memory_limit_bytes: int | None = None,
        max_processes: int | None = None,
    ) -> None:
        """Run ``boot`` as the local kernels do: limits, ``/mnt/data`` on a private folder."""
        lines = ["import sys as _y, types as _t, tempfile as _tf"]
        for name, source in _SOURCES.items():
            lines += [
                f"_m = _t.ModuleType({name!r})",
                f"exec(compile({source!r}, {name + '.py'!r}, 'exec'), _m.__dict__)",
                f"_y.modules[{name!r}] = _m",
            ]
        for flag, limit in (("AS", memory_limit_bytes), ("NPROC", max_processes)):
            if limit:
                lines.append(
                    f"_y.modules[{kernel_boot.MODULE_NAME!r}]._set_limit({flag!r}, {limit})"
                )
        lines += [
            f"_y.modules[{kernel_boot.MODULE_NAME!r}].enter_workdir("
            f"_tf.mkdtemp(prefix='asst-magic-'), {max_output_chars!r})",
            "del _y, _t, _tf, _m",
        ]
        await self.run_quiet("\n".join(lines))

    # -- the Kernel protocol --------------------------------------------------

    @property
    def pid(self) -> int:
        """0: the process runs on the gateway's side."""
        return 0

    def execute(self, code: str, *, silent: bool = False) -> str:
        """Send an execute request; returns its message id."""
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        msg_id = self._send("execute_request", content)
        return msg_id

    async def messages(self, msg_id: str, wait: float) -> list[dict[str, Any]]:
        """IOPub messages of ``msg_id``: wait up to ``wait`` s for one, then all that are ready."""
        found: list[dict[str, Any]] = []
        timeout = max(wait, 0.0)
        while True:
            try:
                if timeout > 0:
                    msg = await asyncio.wait_for(self._iopub.get(), timeout)
                else:
                    msg = self._iopub.get_nowait()
            except (TimeoutError, asyncio.QueueEmpty):
                return found
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                found.append(msg)
            if found:
                timeout = 0

    async def is_alive(self) -> bool:
        """Whether the gateway still runs this kernel (unrestarted); reopens a closed channel.

        A proxy between here and the gateway may close an idle websocket: the
        kernel is still there, so only the channel is opened again.
        """
        if self._ended is None:
            try:
                state = await self.client.kernel_state(self.kernel_id)
                if state is None:
                    self._ended = "the gateway no longer has it"
                elif state == "dead":
                    self._ended = _ENDED["dead"]
                elif not self._connected and not self._closing:
                    await self._reconnect()
            except GatewayError as exc:
                self._ended = str(exc)
        return self._ended is None

    async def _reconnect(self) -> None:
        socket = await self.client.connect(self.kernel_id)
        log.info("gateway kernel %s: channel reopened", self.kernel_id)
        self._socket, self._connected = socket, True
        self._reader = asyncio.get_running_loop().create_task(self._read(socket))

    def exit_description(self) -> str:
        """Why the kernel is gone, as far as the gateway told."""
        return self._ended or "unknown exit status"

    async def interrupt(self) -> None:
        """Ask the gateway to interrupt the running code."""
        with contextlib.suppress(GatewayError):
            await self.client.interrupt(self.kernel_id)

    async def push_files(self, workdir: Path) -> None:
        """Write what changed in the server's ``workdir`` into the kernel's ``/mnt/data``."""
        try:
            await files.push(self, workdir, self.mirror)
        except (OSError, ValueError) as exc:
            raise KernelSetupError(f"could not copy files to the gateway kernel: {exc}") from exc

    async def pull_files(self, workdir: Path) -> list[str]:
        """Copy what the code changed in ``/mnt/data`` back into the server's ``workdir``."""
        try:
            return await files.pull(self, workdir, self.mirror)
        except (OSError, ValueError) as exc:
            raise KernelSetupError(f"{type(exc).__name__}: {exc}") from exc

    async def shutdown(self) -> None:
        """Remove its ``/mnt/data`` folder, close the channel, stop it on the gateway."""
        if self._ended is None and self._connected and not self._closing:
            with contextlib.suppress(KernelSetupError, RuntimeError):
                await self.run_quiet(_CLEAN_UP, timeout=2.0)
        self._closing = True
        self._socket.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, 5.0)
        await _forget(self.client, self.kernel_id)

    # -- the websocket ----------------------------------------------------------

    def _send(self, msg_type: str, content: dict[str, Any], channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "session": self._session,
            "username": "asst-magic",
            "date": datetime.now(UTC).isoformat(),
            "version": "5.3",
        }
        message = {
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": channel,
            "buffers": [],
        }
        if self._ended is not None or self._closing or not self._connected:
            return msg_id  # nothing will answer: the caller's liveness check says why
        try:
            sent = asyncio.ensure_future(self._socket.write_message(json.dumps(message)))
        except WebSocketClosedError:
            self._connected = False
            return msg_id
        self._sends.add(sent)
        sent.add_done_callback(self._sent)
        return msg_id

    def _sent(self, sent: asyncio.Future[None]) -> None:
        self._sends.discard(sent)
        if not sent.cancelled() and sent.exception() is not None:
            self._connected = False

    def _request(self, msg_type: str, content: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Send a shell request; a future for its reply."""
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[self._send(msg_type, content)] = reply
        return reply

    async def _read(self, socket: WebSocketClientConnection) -> None:
        """Route incoming messages: IOPub to the queue, shell replies to their futures."""
        try:
            while (text := await socket.read_message()) is not None:
                _ack_quickly(socket)
                if isinstance(text, str):
                    self._route(json.loads(text))
        except Exception as exc:  # a garbled frame: the channel is not usable any more
            log.warning("gateway kernel %s: channel failed: %r", self.kernel_id, exc)
        finally:
            if socket is self._socket:
                self._connected = False
            for reply in self._replies.values():
                reply.cancel()

    def _route(self, msg: dict[str, Any]) -> None:
        msg.setdefault("msg_type", msg.get("header", {}).get("msg_type"))
        channel = msg.get("channel")
        if channel == "iopub":
            state = msg.get("content", {}).get("execution_state")
            if msg["msg_type"] == "status" and state in _ENDED and self._ended is None:
                self._ended = _ENDED[state]
            self._iopub.put_nowait(msg)
        elif channel == "shell":
            reply = self._replies.pop(msg.get("parent_header", {}).get("msg_id", ""), None)
            if reply is not None and not reply.done():
                reply.set_result(msg)


def _ack_quickly(socket: WebSocketClientConnection) -> None:
    """Acknowledge the gateway's next packets at once (Linux ``TCP_QUICKACK``).

    The gateway writes a request's messages one by one without ``TCP_NODELAY``
    (jupyter_server 1.x): Nagle holds each small message until the previous one is
    acknowledged, and a delayed ACK costs ~40 ms per execution. Quick-ack mode
    lapses by itself, so it is set again after every message.
    """
    option = getattr(stdlib_socket, "TCP_QUICKACK", None)
    stream = getattr(getattr(socket, "protocol", None), "stream", None)
    raw = getattr(stream, "socket", None)
    if option is not None and raw is not None:
        with contextlib.suppress(OSError):
            raw.setsockopt(stdlib_socket.IPPROTO_TCP, option, 1)


_CLEAN_UP = (
    "import shutil as _sh, _asst_magic_sandbox as _s\n"
    "_sh.rmtree(_s._root, ignore_errors=True) if _s._root else None\ndel _sh, _s"
)


async def _forget(client: GatewayClient, kernel_id: str) -> None:
    """Stop the kernel on the gateway; a gateway gone already is not an error here."""
    try:
        if not await client.delete(kernel_id):
            log.warning("gateway kernel %s is still there after repeated deletes", kernel_id)
    except GatewayError as exc:
        log.warning("could not stop gateway kernel %s: %s", kernel_id, exc)
