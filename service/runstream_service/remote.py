"""The CLI's bulk HTTP requests to a running server (`backup --url`, `export --url`).

The token comes from RUNSTREAM_TOKEN, the CA to trust for https:// from RUNSTREAM_TLS_CA, as for
`runstream sql --url`. A refusal is raised as RemoteError with the server's own message.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from http.client import HTTPResponse

CHUNK_BYTES = 1 << 20


class RemoteError(RuntimeError):
    """The server refused, or could not be reached; the message says why and what to do."""


def open_url(
    url: str, path: str, *, method: str = "GET", query: Mapping[str, str | list[str]] | None = None
) -> HTTPResponse:
    """Send the request and return the open response (the caller reads and closes it)."""
    address = url.rstrip("/") + path
    if query:
        address += "?" + urllib.parse.urlencode(query, doseq=True)
    headers = {}
    if os.environ.get("RUNSTREAM_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['RUNSTREAM_TOKEN']}"
    context = None
    if os.environ.get("RUNSTREAM_TLS_CA") and url.startswith("https://"):
        context = ssl.create_default_context(cafile=os.environ["RUNSTREAM_TLS_CA"])
    request = urllib.request.Request(address, data=b"" if method == "POST" else None, headers=headers, method=method)
    try:
        reply: HTTPResponse = urllib.request.urlopen(request, timeout=3600, context=context)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc)["error"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}"
        raise RemoteError(message) from None
    except urllib.error.URLError as exc:
        raise RemoteError(f"cannot reach {url}: {exc.reason}; is `runstream serve` running there?") from None
    return reply
