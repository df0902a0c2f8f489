"""Reading a response body from a server the scanner does not trust: size cap, deadline, bounded inflate."""

from __future__ import annotations

import time
import zlib

import httpx

IDENTITY_HEADERS = {"Accept-Encoding": "identity"}
"""Ask for uncompressed bodies; a server that compresses anyway is inflated under the same cap."""


def read_body(reply: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    """At most `max_bytes` decoded bytes, by `deadline` (time.monotonic) — decompressing no further than the cap.

    httpx would inflate each network read whole (32 kB of gzip can become 64 MiB in memory) and its
    timeout is per read (a server trickling a byte at a time would hold the scanner for days), so
    the raw stream is read here, gzip/deflate inflated with a bounded output, and a deadline checked.
    """
    encoding = reply.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise httpx.DecodingError(f"unsupported Content-Encoding {encoding[:40]!r}")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding not in ("identity", "") else None
    body = bytearray()
    for raw in reply.iter_raw():
        data = raw
        while data and len(body) < max_bytes:
            if inflater is None:
                body += data[: max_bytes - len(body)]
                break
            try:
                body += inflater.decompress(data, max_bytes - len(body))
            except zlib.error as exc:
                raise httpx.DecodingError(f"bad {encoding} body: {exc}") from None
            data = inflater.unconsumed_tail
        if len(body) >= max_bytes:
            break
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("body not received in time")
    return bytes(body)
