"""How many bytes the server holds for a WebSocket client that has not read them yet.

Daphne hands each message straight to autobahn's sendMessage, which writes the frame to Twisted's
TCP transport at once; whatever the kernel's socket buffer cannot take, Twisted keeps in a Python
buffer, without limit. ASGI gives the application no back-pressure and no way to ask, so a
client that stops reading makes the server hold everything sent to it. The consumers look at that
buffer themselves, through daphne's send callable (functools.partial(server.handle_reply,
protocol)) to the protocol and its transport, and pace or drop the client (runs/consumers.py).

Under another server, behind TLS terminated by daphne itself, or with the test communicator there
is no such buffer to read: `of` answers None and nothing is bounded here.
"""

from __future__ import annotations

import functools


class Backlog:
    """The bytes waiting for one client in daphne's process (autobahn's queue and Twisted's buffer)."""

    def __init__(self, protocol):
        self.protocol = protocol

    def queued(self) -> int | None:
        """Bytes written for the client and not yet taken by the kernel; None once it is closing."""
        transport = getattr(self.protocol, "transport", None)
        if transport is None or transport.disconnecting or transport.disconnected:
            return None
        waiting = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        for data, _sync in self.protocol.send_queue:  # autobahn's own, for chopped or sync writes
            waiting += len(data)
        return waiting

    def forget_unsent(self, close_within: float) -> int:
        """Drop the frames that wait whole (none of their bytes sent: autobahn writes one frame at a
        time) and give the client `close_within` seconds to read up to the close frame that follows.
        Returns the bytes forgotten."""
        transport = self.protocol.transport
        forgotten = transport._tempDataLen
        transport._tempDataBuffer, transport._tempDataLen = [], 0
        self.protocol.closeHandshakeTimeout = close_within
        return forgotten


def _readable(protocol) -> bool:
    transport = getattr(protocol, "transport", None)
    return (hasattr(protocol, "send_queue") and transport is not None
            and all(hasattr(transport, name) for name in
                    ("dataBuffer", "offset", "_tempDataLen", "disconnecting", "disconnected")))


def of(send) -> Backlog | None:
    """The backlog behind an ASGI `send` callable, if it is daphne's over plain TCP (reached
    through Channels' session middleware, which wraps it to save the session)."""
    for _ in range(8):
        if isinstance(send, functools.partial):
            return Backlog(send.args[0]) if send.args and _readable(send.args[0]) else None
        send = getattr(getattr(send, "__self__", None), "real_send", None)
        if send is None:
            return None
    return None
