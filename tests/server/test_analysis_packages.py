"""The code interpreter has what the ``analysis`` extra promises (README: what it has)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asst_magic.server.code_interpreter.kernels import KernelSandbox
from asst_magic.server.code_interpreter.sandbox import LogsOutput

pytestmark = pytest.mark.anyio

# What model-written analysis code does with each package the extra declares.
CODE = """\
import numpy as np, pandas as pd, scipy.stats, sympy, seaborn
frame = pd.DataFrame({"month": ["2024-01", "2024-02"], "revenue": [10, 12]})
frame.to_excel("/mnt/data/sales.xlsx", index=False)      # openpyxl
frame.to_parquet("/mnt/data/sales.parquet")              # pyarrow
back = pd.read_excel("sales.xlsx").equals(pd.read_parquet("sales.parquet"))
x = sympy.symbols("x")
print(back, sympy.solve(3 * x + 11 - 14, x), round(scipy.stats.norm.cdf(0), 2))
seaborn.lineplot(data=frame, x="month", y="revenue");
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[KernelSandbox]:
    box = KernelSandbox(tmp_path, timeout=120.0, pool_size=0, preload=())
    yield box
    await box.aclose()


async def test_analysis_packages_work_in_the_code_interpreter(sandbox: KernelSandbox) -> None:
    outputs = [o async for o in sandbox.execute("t-analysis", CODE)]
    logs = "".join(o.text for o in outputs if isinstance(o, LogsOutput))
    assert logs == "True [1] 0.5\n"
    assert len(outputs) == 2  # the logs and the seaborn plot, no error
