"""Notebook values to and from the code interpreter: Parquet, ``.npy``, JSON, PNG; never pickle.

>>> encode("n", 3, limit=1000).format
'json'
"""

from __future__ import annotations

from asst_magic.variables.codec import (
    SUPPORTED_IN,
    SUPPORTED_OUT,
    Encoded,
    VariableError,
    decode,
    encode,
)
from asst_magic.variables.describe import describe, message_block

__all__ = [
    "SUPPORTED_IN",
    "SUPPORTED_OUT",
    "Encoded",
    "VariableError",
    "decode",
    "describe",
    "encode",
    "message_block",
]
