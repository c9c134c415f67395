"""Fashion-MNIST's gzip-compressed IDX files, read with NumPy only (used by torch_study.py).

read_idx(path, magic) returns the array; anything that is not a complete IDX file of the expected
kind — wrong magic, a corrupt or truncated gzip stream, fewer or more values than the header's
dimensions — raises ValueError naming the file and what was wrong."""
import gzip
import math
import zlib

import numpy as np

IMAGES, LABELS = 0x803, 0x801  # unsigned bytes, 3 and 1 dimensions


def read_idx(path, expect_magic):
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise ValueError(f"{path}: not a readable gzip stream ({e})") from e
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expect_magic:
        raise ValueError(f"{path}: magic {magic:#x}, expected {expect_magic:#x}")
    rank = expect_magic & 0xFF
    if len(raw) < 4 + 4 * rank:
        raise ValueError(f"{path}: header truncated ({len(raw)} bytes)")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    if data.size != math.prod(dims):
        kind = "truncated" if data.size < math.prod(dims) else "trailing bytes"
        raise ValueError(f"{path}: {data.size} values for dimensions {dims} ({kind})")
    return data.reshape(dims)
