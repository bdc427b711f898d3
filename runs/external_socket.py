"""/ws/runs/external/: the socket over which the Python client streams an external run.

Thin: what it does to runs is runs/external_runs.py's. One socket holds at most one run at a
time (opened or attached); its messages are answered in order, one at a time, and so are the
looks it takes every leases.RENEW_EVERY seconds (the lease renewed, new controls told) and the
nudges of the group "external-<id>" (a control was just recorded). Anything a client sends that
is not right is answered with an error in words; the socket stays open and nothing is stored.
A socket that closes while it holds a run that has not ended leaves it interrupted.

A write the storage will not take (runs/storage_faults.py) is not the client's fault, and the
client has not been answered: the socket tries it again, as the driver does, for up to
OPTSITE_STORAGE_RETRY_SECONDS (opening and attaching are not tried again: one is not safe to
repeat, and the client repeats both after a reconnect). Then it closes with code 4503 (the
storage is unavailable): the client reconnects, attaches, and sends again what was not acked.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.db import connection

from runs import external_runs, leases, publishing, services, storage_faults
from runs.consumers import MAX_INT, BadMessage, BoundedSocket, _authenticated, read_message
from runs.dispatch import external_group
from runs.optim.echo import bounded_errors, clip, shown

log = logging.getLogger("runs.external_socket")

# What one message may be (the client cuts its batches below half of it).
MAX_MESSAGE_BYTES = 2 ** 20
# The close code of a socket whose writes the storage would not take (HTTP's 503): reconnect and
# attach later. (Autobahn sends no 1013 "try again later" from a server: 1000 or 3000-4999 only.)
TRY_AGAIN_LATER = 4503


def _fresh_connection():
    connection.close()  # the database thread's own (`connection` is per thread)


class StorageAway(Exception):
    """The storage would not take this socket's write within the time it may take."""


def _too_big(text: str) -> bool:
    # a character is 1 to 4 bytes of UTF-8: encode only where the length leaves it open
    return len(text) > MAX_MESSAGE_BYTES or (len(text) * 4 > MAX_MESSAGE_BYTES
                                             and len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES)


class ExternalConsumer(BoundedSocket):
    message_types = {"open", "attach", "steps", "paused", "resumed", "end"}

    async def websocket_connect(self, message):
        self.holding: external_runs.Holding | None = None
        self.lost: services.ServiceError | None = None  # why the run held last was lost, for the next write
        self.holder = external_runs.holder_name()
        self.lock = asyncio.Lock()  # the messages, the looks and the nudges: one at a time
        self.loop = asyncio.get_running_loop()
        self.ticker: asyncio.Task | None = None
        publishing.remember_loop(self.loop)
        await super().websocket_connect(message)

    async def connect(self):
        if not _authenticated(self.scope):
            await self.close()  # before accept: the handshake answers 403, as for the other sockets
            return
        await self.accept()
        self.ticker = asyncio.ensure_future(self.tick())

    @property
    def user(self):
        return self.scope.get("user")

    # -- incoming frames --
    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            if text_data is not None and _too_big(text_data):
                raise BadMessage(f"That message is larger than {MAX_MESSAGE_BYTES // 2 ** 20} MiB, the most one "
                                 "message may be; send its steps in smaller batches.")
            kind, content = read_message(text_data, self.message_types)
            async with self.lock:
                await getattr(self, f"on_{kind}")(content)
        except StorageAway as exc:
            log.warning("external socket: %s; closing it (%s): its client reconnects", exc, TRY_AGAIN_LATER)
            await self.close(code=TRY_AGAIN_LATER)
        except BadMessage as exc:
            await self.send_error("bad_message", exc.message, exc.errors)
        except services.ServiceError as exc:
            await self.refuse(exc)
        except Exception:
            log.exception("external socket message failed")
            await self.send_error("bad_message", "The server could not handle that message; nothing of it was stored.")

    async def refuse(self, exc: services.ServiceError):
        if isinstance(exc, external_runs.Lost):
            await self.release()
            if exc.reconnect:  # nobody holds the run: the client attaches it again, as after a lost connection
                log.warning("external socket: %s; closing it (%s): its client reconnects", exc.message, TRY_AGAIN_LATER)
                await self.close(code=TRY_AGAIN_LATER)
                return
        message = {"type": "error", "code": exc.code, "message": clip(exc.message),
                   "errors": bounded_errors(exc.errors) or {}}
        if getattr(exc, "run", None) is not None:  # an ended run, as stored: the client stops sending
            message["run"] = exc.run
        await self.send_json(message)

    async def db(self, call, *args, retry: bool = True, **kwargs):
        """`call` in the database thread; a storage fault tried again (`retry`) while the time allows,
        then StorageAway."""
        backoff = None
        while True:
            try:
                return await database_sync_to_async(call)(*args, **kwargs)
            except Exception as exc:
                if not storage_faults.is_storage_fault(exc):
                    raise
                now = time.monotonic()
                if backoff is None:
                    backoff = storage_faults.Backoff(now)
                    log.warning("external socket: could not write: %s", storage_faults.describe(exc))
                wait = backoff.next_wait(now) if retry else None
                if wait is None:
                    raise StorageAway(storage_faults.storage_reason(exc)) from exc
                # a fresh connection for the next try: the old one may be the broken part
                await database_sync_to_async(_fresh_connection)()
                await asyncio.sleep(wait)

    def held(self) -> external_runs.Holding:
        if self.holding is not None:
            return self.holding
        if self.lost is not None:
            lost, self.lost = self.lost, None
            raise lost
        raise services.ServiceError("conflict", "This socket holds no run: send \"open\" with a spec, or "
                                                "\"attach\" with a run_id, first.")

    async def on_open(self, content):
        if self.holding is not None:
            raise services.ServiceError(
                "conflict", f"This socket holds run {self.holding.run_id}, which has not ended; end it, or open "
                "another socket.")
        if "spec" not in content:
            raise services.ServiceError("invalid_spec", "An open message needs a \"spec\".",
                                        {"spec": ["This field is required."]})
        holding, run = await self.db(
            external_runs.open_run, retry=False, owner=self.user, data=content["spec"],
            label=content.get("label") or "", holder=self.holder, loop=self.loop)
        await self.hold(holding)
        await self.send_json({"type": "opened", "run": run})

    async def on_attach(self, content):
        run_id = content.get("run_id")
        if isinstance(run_id, bool) or not isinstance(run_id, int) or not 0 < run_id <= MAX_INT:
            raise BadMessage(f"An attach message needs a \"run_id\", a whole number >= 1, not {shown(run_id)}.",
                             {"run_id": ["Expected a whole number >= 1."]})
        if self.holding is not None and self.holding.run_id != run_id:
            raise services.ServiceError(
                "conflict", f"This socket holds run {self.holding.run_id}, which has not ended; end it, or attach "
                "on another socket.")
        holding, run, controls = await self.db(
            external_runs.attach_run, retry=False, owner=self.user, run_id=run_id, holder=self.holder, loop=self.loop)
        await self.hold(holding)
        await self.send_json({"type": "attached", "run": run, "next_seq": holding.next_seq})
        for action in controls:
            await self.tell(action)

    async def on_steps(self, content):
        holding = self.held()
        next_seq = await self.db(external_runs.write_steps, holding, content.get("steps"))
        await self.send_json({"type": "ack", "run_id": holding.run_id, "next_seq": next_seq})

    async def on_paused(self, content):
        await self.db(external_runs.set_paused, self.held())

    async def on_resumed(self, content):
        await self.db(external_runs.set_resumed, self.held())

    async def on_end(self, content):
        holding = self.held()
        run = await self.db(
            external_runs.end_run, holding, status=content.get("status"), result=content.get("result"),
            error=content.get("error"))
        await self.release()
        await self.send_json({"type": "ended", "run": run})

    # -- holding a run --
    async def hold(self, holding: external_runs.Holding):
        if self.holding is not None and self.holding.run_id != holding.run_id:
            await self.release()
        self.holding, self.lost = holding, None
        await self.channel_layer.group_add(external_group(holding.run_id), self.channel_name)

    async def release(self):
        holding, self.holding = self.holding, None
        if holding is not None:
            await self.channel_layer.group_discard(external_group(holding.run_id), self.channel_name)

    async def tell(self, action: str):
        await self.send_json({"type": "control", "run_id": self.holding.run_id, "action": action})

    async def look(self, renew: bool):
        """Lease renewed (`renew`) and controls on record told; a lost run let go, its reason kept."""
        holding = self.holding
        if holding is None:
            return
        try:
            how = external_runs.look if renew else external_runs.controls_to_tell
            actions = await database_sync_to_async(how)(holding)
        except external_runs.Lost as exc:
            if exc.reconnect:
                await self.refuse(exc)
                return
            await self.release()
            self.lost = exc
            return
        for action in actions:
            await self.tell(action)

    async def tick(self):
        while True:
            await asyncio.sleep(leases.RENEW_EVERY)
            try:
                async with self.lock:
                    await self.look(renew=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away a moment: the lease outlasts a few missed renewals
                log.warning("external socket: could not renew the lease of run %s: %s",
                            getattr(self.holding, "run_id", None), storage_faults.describe(exc),
                            exc_info=not storage_faults.is_storage_fault(exc))

    async def external_look(self, event):
        """A control was recorded for the run this socket holds: tell the client now."""
        async with self.lock:
            if self.holding is not None and event.get("run_id") == self.holding.run_id:
                await self.look(renew=False)

    async def disconnect(self, code):
        if self.ticker is not None:
            self.ticker.cancel()
        async with self.lock:
            holding = self.holding
            if holding is not None:
                try:
                    await database_sync_to_async(external_runs.interrupt_on_close)(holding)
                except Exception as exc:  # its lease runs out, and the monitor interrupts it
                    log.warning("external socket: could not mark run %s interrupted: %s; its lease runs out",
                                holding.run_id, storage_faults.describe(exc),
                                exc_info=not storage_faults.is_storage_fault(exc))
                await self.release()
