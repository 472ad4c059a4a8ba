"""Beyond loopback the server warns; the Host header is checked; the token can stay out of ps."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from asst_magic.server import ServerHandle
from asst_magic.server.arguments import build_parser

Start = Callable[..., ServerHandle]


def get_with_host(handle: ServerHandle, host: str) -> tuple[int, dict[str, object]]:
    url = urlsplit(handle.base_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.putrequest("GET", f"{url.path}/assistants", skip_host=True)
        conn.putheader("Host", host)
        conn.putheader("Authorization", f"Bearer {handle.token}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_a_foreign_host_header_is_refused_before_the_token_is_checked(start_server: Start) -> None:
    handle = start_server()
    port = urlsplit(handle.base_url).port
    status, body = get_with_host(handle, f"attacker.example:{port}")
    assert status == 400
    message = str(body["error"]["message"])  # type: ignore[index]
    assert "'attacker.example'" in message and "--allowed-hosts" in message
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST"):
        assert get_with_host(handle, host)[0] == 200


def test_allowed_hosts_extend_the_names_the_server_answers_to(start_server: Start) -> None:
    handle = start_server(allowed_hosts=("notebooks.lan",))
    assert get_with_host(handle, "notebooks.lan:80")[0] == 200
    assert get_with_host(handle, "other.lan")[0] == 400


def test_a_replica_answers_to_the_host_of_its_advertise_url(start_server: Start) -> None:
    # Other replicas forward run changes to --advertise-url, with its host as Host.
    handle = start_server(replica_url="http://asst-2.internal:8765")
    assert get_with_host(handle, "asst-2.internal:8765")[0] == 200
    assert get_with_host(handle, "asst-3.internal:8765")[0] == 400


def test_binding_beyond_loopback_warns_that_traffic_is_plain_http(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "asst_magic.server", "serve", "--no-code-interpreter"]
    command += ["--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "data")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        warning = proc.stderr.readline()
        assert warning.startswith("asst-magic serve: warning: listening on 0.0.0.0")
        assert "plain HTTP" in warning and "127.0.0.1" in warning
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_token_help_names_the_variable_that_keeps_it_out_of_ps() -> None:
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    text = " ".join(serve.format_help().split())
    assert "set ASST_MAGIC_TOKEN instead to keep the token private" in text
    assert "visible to every user of this machine (ps)" in text
