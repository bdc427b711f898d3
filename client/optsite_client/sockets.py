"""The server's two WebSockets, one JSON message at a time, with its close codes told apart from
the network's."""

from __future__ import annotations

import json
import socket
from typing import Any

import websocket

from .errors import BadAnswer
from .http import USER_AGENT, clip

# The server's close codes (docs/protocol.md, "What a socket client can rely on").
REVOKED = 4401  # the token was revoked: do not reconnect with it
GONE = 4404  # no such run of yours, or deleted: do not reconnect
SLOW = 4429  # the client read too slowly: reconnect with ?after=


class Dropped(Exception):
    """The socket ended: `code` is the close code the server sent (None: none, the network's doing)."""

    def __init__(self, code: int | None, why: str, silent: bool = False):
        super().__init__(why)
        self.code, self.why = code, why
        self.silent = silent  # nothing came within the timeout: the connection looked dead


class Refused(Exception):
    """The handshake was answered with an HTTP status instead of a socket (403: not logged in)."""

    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


def ws_url(base: str) -> str:
    return "wss://" + base[len("https://"):] if base.startswith("https://") else "ws://" + base[len("http://"):]


class Socket:
    """One open socket of the server, authenticated by the token's header (no Origin, no cookie)."""

    def __init__(self, base: str, path: str, token: str, timeout: float):
        self.path = path
        try:
            self.conn = websocket.create_connection(
                ws_url(base) + path, header=[f"Authorization: Bearer {token}", f"User-Agent: {USER_AGENT}"],
                suppress_origin=True, timeout=timeout, enable_multithread=True)
        except websocket.WebSocketBadStatusException as refused:
            raise Refused(refused.status_code) from None
        except (websocket.WebSocketException, OSError) as failed:
            raise Dropped(None, f"could not connect: {failed}") from None

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.conn.send(json.dumps(message, allow_nan=False))
        except (websocket.WebSocketException, OSError) as failed:
            raise Dropped(None, f"could not send: {failed}") from None

    def send_text(self, text: str) -> None:
        """A message already encoded as JSON (an external run's batches are encoded once)."""
        try:
            self.conn.send(text)
        except (websocket.WebSocketException, OSError) as failed:
            raise Dropped(None, f"could not send: {failed}") from None

    def recv(self) -> dict[str, Any]:
        """The next message; Dropped when the socket ends or nothing, not even a ping, comes within
        the timeout (the server pings every 20 s, so silence means the connection is gone)."""
        while True:
            try:
                opcode, data = self.conn.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                self.close()
                raise Dropped(None, "nothing came from the server within the timeout", silent=True) from None
            except (websocket.WebSocketException, OSError, socket.timeout) as failed:
                self.close()
                raise Dropped(None, f"the connection ended: {failed or type(failed).__name__}") from None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                self.close()
                raise Dropped(code, f"the server closed the socket (code {code})")
            if opcode == websocket.ABNF.OPCODE_TEXT:
                break
        try:
            message = json.loads(data)
        except ValueError:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            raise BadAnswer(f"The server sent a socket message that is not JSON: {clip(text)}.") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadAnswer(f"The server sent a socket message without a type: {clip(json.dumps(message))}.")
        return message

    def close(self) -> None:
        try:
            self.conn.close(timeout=1)
        except Exception:  # closing what may already be gone
            pass
