"""The two sockets of PROTOCOL: /ws/runs/ (launch and control) and /ws/runs/<id>/ (watch).

Thin: every write goes through runs.services. Workers and services publish to the group
"run-<id>" (the events are listed in runs/publishing.py). Each socket forwards each step once,
in seq order, with no gap: it joins the group before it reads stored steps, drops live steps it
has already sent, and fills any gap from the database (steps are stored before they are
published, so the database always has them). Steps go out light; only the newest step of each
"steps" message carries its bulky fields (population, line search): what a page draws.
A deleted run's watchers hear "deleted"; a watch socket is then closed with code 4404 (as is
one that asks for a run that is not there), which tells a client not to reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from runs import publishing, services
from runs.encoding import dumps
from runs.models import Run
from runs.run_objects import load_run_dict
from runs.stored_steps import stored_messages

log = logging.getLogger("runs.consumers")

# A watcher that does not say where to start within this time gets the whole replay; one that
# sends "subscribe" first gets only what follows its `after` (no repeat of what it has).
REPLAY_GRACE = 0.3
# Stored steps read per database round trip when replaying (cut into messages under 1 MiB).
REPLAY_CHUNK = 2000
CONTROLS = ("stop", "pause", "resume")
# The close code for a run that is not there (deleted, missing, someone else's): do not reconnect.
GONE = 4404


class BadMessage(Exception):
    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


def _after(value, field: str = "after") -> int:
    """A client's `after`: the last seq it has, -1 (or null/absent) for none."""
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise BadMessage(f"`{field}` must be a whole number >= -1 (the last seq you have).",
                         {field: ["Expected a whole number >= -1."]})
    return value


@database_sync_to_async
def _run_dict_or_none(run_id: int) -> dict | None:
    try:
        return load_run_dict(run_id)
    except Run.DoesNotExist:
        return None


@database_sync_to_async
def _stored(run_id: int, after: int, upto: int | None) -> list[tuple[int, list[str]]]:
    return stored_messages(run_id=run_id, after=after, upto=upto, max_steps=REPLAY_CHUNK)


def deleted_message(run_id: int) -> dict:
    return {"type": "deleted", "run_id": run_id, "message": f"Run {run_id} was deleted."}


class RunStreamConsumer(AsyncJsonWebsocketConsumer):
    """Relays one run's group to the socket: steps once each, in order; status; finished."""

    run_id: int | None = None

    async def websocket_connect(self, message):
        self.position = -1  # the last seq sent on this socket
        self.live = True  # False while a replay is being read: events wait in `held`
        self.held: list[dict] = []
        self.ended = False  # "finished" sent and no status since
        self.loop = asyncio.get_running_loop()
        publishing.remember_loop(self.loop)
        await super().websocket_connect(message)

    @property
    def user(self):
        return self.scope.get("user")

    # -- incoming frames: nothing a client sends may crash the consumer --
    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            if text_data is None:
                raise BadMessage("Send JSON text frames, not binary ones.")
            try:
                content = json.loads(text_data)
            except ValueError:
                raise BadMessage("That is not valid JSON.") from None
            if not isinstance(content, dict):
                raise BadMessage("A message must be a JSON object with a \"type\".")
            kind = content.get("type")
            if not isinstance(kind, str) or kind not in self.message_types:
                names = ", ".join(sorted(self.message_types))
                raise BadMessage(f"Unknown message type {kind!r}; this socket takes: {names}.",
                                 {"type": [f"One of: {names}."]})
            await getattr(self, f"on_{kind}")(content)
        except BadMessage as exc:
            await self.send_error("bad_message", exc.message, exc.errors)
        except services.ServiceError as exc:
            await self.send_error(exc.code, exc.message, exc.errors)
        except Exception:
            log.exception("socket message failed")
            await self.send_error("bad_message", "The server could not handle that message.")

    async def send_error(self, code: str, message: str, errors: dict | None = None):
        await self.send_json({"type": "error", "code": code, "message": message, "errors": errors or {}})

    @classmethod
    async def encode_json(cls, content):
        return dumps(content)

    async def control(self, action: str):
        if self.run_id is None:
            raise services.ServiceError("conflict", f"There is no run on this socket to {action}.")
        accepted, run = await database_sync_to_async(services.control_run)(
            user=self.user, run_id=self.run_id, action=action)
        if not accepted:  # nothing changed: say how things stand (changes come via the group)
            await self.send_json({"type": "status", "run": run})

    async def on_stop(self, content):
        await self.control("stop")

    async def on_pause(self, content):
        await self.control("pause")

    async def on_resume(self, content):
        await self.control("resume")

    # -- the group's events --
    def _hold(self, event) -> bool:
        if event.get("run_id") != self.run_id:
            return True  # an old run's leftovers
        if not self.live:
            self.held.append(event)
            return True
        return False

    async def run_steps(self, event):
        if self._hold(event):
            return
        first, texts = event["first"], event["steps"]
        last = first + len(texts) - 1
        if last <= self.position:
            return
        if first > self.position + 1:  # a message was lost (full channel): the database has it
            await self.send_stored(upto=first - 1)
        skip = self.position + 1 - first
        # one event is one message (runs/publishing.py cut it), its newest step complete
        await self.send_steps(texts[skip:] if skip > 0 else texts, last, committed=event.get("committed"))

    async def run_status(self, event):
        if self._hold(event):
            return
        run = event["run"]
        if run["status"] in Run.ACTIVE:
            self.ended = False
        await self.send_json({"type": "status", "run": run})

    async def run_finished(self, event):
        if self._hold(event):
            return
        run = event["run"]
        if run["n_steps"] - 1 > self.position:
            await self.send_stored(upto=run["n_steps"] - 1)
        if not self.ended:
            self.ended = True
            await self.send_json({"type": "finished", "run": run})
            await self.after_finished()

    async def after_finished(self):
        pass

    async def run_deleted(self, event):
        if event.get("run_id") == self.run_id:
            await self.say_deleted()

    async def say_deleted(self):
        """The run is gone: say so at once (not held back by a replay: nothing of it is left to send)."""
        self.held = []
        await self.send_json(deleted_message(self.run_id))
        await self.after_deleted()

    async def after_deleted(self):
        pass

    # -- sending steps --
    async def send_steps(self, texts: list[str], last: int, committed: float | None = None):
        """Send step texts (light, but the last) as one "steps" message, without decoding them.

        Live steps say when they were committed (Unix time): a watcher can measure its lag."""
        stamp = "" if committed is None else f'"committed":{committed!r},'
        await self.send(text_data=f'{{"type":"steps","run_id":{self.run_id},{stamp}"steps":[' + ",".join(texts) + "]}")
        self.position = last

    async def send_stored(self, upto: int | None = None):
        """The stored steps after those sent, up to `upto`, a chunk of rows at a time."""
        while upto is None or self.position < upto:
            messages = await _stored(self.run_id, self.position, upto)
            if not messages:
                return
            for last, texts in messages:
                await self.send_steps(texts, last)

    async def replay(self, after: int):
        """Stored steps after `after`, then live ones: group joined first, duplicates dropped."""
        self.live = False
        self.position = after
        self.ended = False
        run = await _run_dict_or_none(self.run_id)  # status read BEFORE the steps: if ended, all are stored
        if run is None:  # deleted meanwhile
            self.live = True
            await self.say_deleted()
            return
        await self.send_stored()
        if run["status"] not in Run.ACTIVE:
            self.ended = True
            await self.send_json({"type": "finished", "run": run})
        self.live = True
        held, self.held = self.held, []
        for event in held:
            await self.dispatch(event)


class LaunchConsumer(RunStreamConsumer):
    """/ws/runs/: start one run at a time, watch it live, control it."""

    message_types = {"start", *CONTROLS}

    async def connect(self):
        if not getattr(self.user, "is_authenticated", False):
            await self.close()  # before accept: the handshake answers 403
            return
        await self.accept()

    async def disconnect(self, code):
        if self.run_id is not None:  # the run goes on: only "stop" stops it
            await self.channel_layer.group_discard(f"run-{self.run_id}", self.channel_name)

    async def on_start(self, content):
        if self.run_id is not None and await database_sync_to_async(self._still_active)():
            raise services.ServiceError(
                "conflict", f"This socket's run {self.run_id} is still going; stop it or wait for it to "
                "finish, or open another socket.")
        if "spec" not in content:
            raise services.ServiceError("invalid_spec", "A start message needs a \"spec\".",
                                        {"spec": ["This field is required."]})
        label = content.get("label") or ""
        if not isinstance(label, str) or len(label) > 200:
            raise services.ServiceError("invalid_spec", "The label must be text of at most 200 characters.",
                                        {"label": ["Text of at most 200 characters."]})
        run = await database_sync_to_async(services.create_run)(
            owner=self.user, data=content["spec"], label=label.strip())
        await self.follow(run.pk)
        payload = await database_sync_to_async(services.start_run)(run_id=run.pk)
        await self.send_json({"type": "started", "run": payload})

    def _still_active(self) -> bool:
        return Run.objects.filter(pk=self.run_id, status__in=Run.ACTIVE).exists()

    async def follow(self, run_id: int):
        if self.run_id is not None:
            await self.channel_layer.group_discard(f"run-{self.run_id}", self.channel_name)
        self.run_id = run_id
        self.position, self.ended, self.live, self.held = -1, False, True, []
        # Joined before the run is queued: every published step reaches this socket.
        await self.channel_layer.group_add(f"run-{run_id}", self.channel_name)

    async def after_finished(self):
        # The socket may launch again; the finished run's leftovers are ignored by run_id.
        await self.channel_layer.group_discard(f"run-{self.run_id}", self.channel_name)
        self.run_id = None

    async def after_deleted(self):
        # "deleted" said it; the launch socket stays open to start another run
        await self.after_finished()


class WatchConsumer(RunStreamConsumer):
    """/ws/runs/<id>/: the run, its stored steps, live steps, finished; owner's controls."""

    message_types = {"subscribe", *CONTROLS}

    async def connect(self):
        if not getattr(self.user, "is_authenticated", False):
            await self.close()
            return
        await self.accept()
        wanted = self.scope["url_route"]["kwargs"]["run_id"]
        run = await database_sync_to_async(services.get_run_for)(self.user, wanted)
        if run is None:
            # Someone else's run looks exactly like a missing one: said, then closed for good.
            await self.send_error("not_found", f"There is no run {wanted} of yours.")
            await self.close(code=GONE)
            return
        self.run_id = run.pk
        await self.channel_layer.group_add(f"run-{run.pk}", self.channel_name)
        payload = await _run_dict_or_none(run.pk)
        if payload is None:  # deleted in between
            await self.say_deleted()
            return
        await self.send_json({"type": "run", "run": payload})
        self.live = False  # hold live events until the replay has been sent
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if "after" in query:
            try:
                after = _after(int(query["after"][-1]))
            except (ValueError, BadMessage):
                await self.send_error("bad_message", "`after` in the URL must be a whole number >= -1.",
                                      {"after": ["Expected a whole number >= -1."]})
                after = -1
            await self.replay(after)
        else:
            self.replay_token = object()
            self.loop.call_later(REPLAY_GRACE, self._replay_due, self.replay_token)

    def _replay_due(self, token):
        if getattr(self, "replay_token", None) is token:
            asyncio.ensure_future(self.channel_layer.send(self.channel_name, {"type": "watch.replay"}))

    async def watch_replay(self, event):
        # Only if no "subscribe" came first (that one cleared the token and replayed already).
        if getattr(self, "replay_token", None) is not None:
            self.replay_token = None
            await self.replay(-1)

    async def disconnect(self, code):
        self.replay_token = None
        if self.run_id is not None:
            await self.channel_layer.group_discard(f"run-{self.run_id}", self.channel_name)

    async def after_deleted(self):
        self.replay_token = None
        await self.channel_layer.group_discard(f"run-{self.run_id}", self.channel_name)
        self.run_id = None
        await self.close(code=GONE)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.run_id is None:
            await self.send_error("not_found", "There is no such run of yours on this socket.")
            return
        await super().receive(text_data, bytes_data, **kwargs)

    async def on_subscribe(self, content):
        after = _after(content.get("after"))
        self.replay_token = None
        await self.replay(after)
