"""Code-interpreter kernels started through a Jupyter Enterprise Gateway.

``GatewayLauncher`` starts, pools, interrupts and stops kernels over the
gateway's REST API and drives them over its kernel websocket
(``/api/kernels/{id}/channels``); files travel over that channel too.

Example::

    client = GatewayClient("http://gateway:8888", token="...")
    sandbox = KernelSandbox(root, launcher=GatewayLauncher(client, max_output_chars=50_000))
"""

from asst_magic.server.code_interpreter.gateway.client import GatewayClient, GatewayError
from asst_magic.server.code_interpreter.gateway.launcher import GatewayLauncher

__all__ = ["GatewayClient", "GatewayError", "GatewayLauncher"]
