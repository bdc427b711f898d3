"""How many bytes the server holds for a WebSocket client that has not read them yet.

Daphne hands each message straight to autobahn's sendMessage, which writes the frame to Twisted's
TCP transport at once; whatever the kernel's socket buffer cannot take, Twisted keeps in a Python
buffer, without limit. ASGI gives the application no back-pressure and no way to ask, so a
client that stops reading makes the server hold everything sent to it. The consumers look at that
buffer themselves, through daphne's send callable (functools.partial(server.handle_reply,
protocol)) to the protocol and its transport, and pace or drop the client (runs/consumers.py).

Under another server, behind TLS terminated by daphne itself, or with the test communicator there
is no such buffer to read: `of` answers None and nothing is bounded here. The same way in, daphne's
queue of frames a client sent and the application has not handled yet is kept short.
"""

from __future__ import annotations

import functools


# Frames a client may have waiting to be handled before daphne stops reading from it (each at most
# 1 MiB, daphne's limit); it reads on once the consumer has handled them down to half.
MAX_UNHANDLED = 16


class Backlog:
    """The bytes waiting for one client in daphne's process (autobahn's queue and Twisted's buffer),
    and the frames from it that wait to be handled."""

    def __init__(self, protocol):
        self.protocol = protocol
        self.reading_paused = False

    def pace_reading(self) -> None:
        """Daphne reads every frame a client sends into an unbounded queue: a client that sends
        faster than its frames are handled would fill the server. Past MAX_UNHANDLED frames
        waiting, Twisted stops reading its connection (what it sends then waits in the kernels,
        and TCP slows the client down); it reads on once they are handled."""
        waiting = getattr(self.protocol, "application_queue", None)
        transport = getattr(self.protocol, "transport", None)
        if waiting is None or transport is None:
            return
        if not self.reading_paused and waiting.qsize() > MAX_UNHANDLED:
            transport.pauseProducing()
            self.reading_paused = True
        elif self.reading_paused and waiting.qsize() <= MAX_UNHANDLED // 2:
            transport.resumeProducing()
            self.reading_paused = False

    def queued(self) -> int | None:
        """Bytes written for the client and not yet taken by the kernel; None once it is closing."""
        transport = getattr(self.protocol, "transport", None)
        if (transport is None or transport.disconnecting or transport.disconnected
                or self.protocol.state == self.protocol.STATE_CLOSED):
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
    return (hasattr(protocol, "send_queue") and hasattr(protocol, "STATE_CLOSED") and transport is not None
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
