"""The two sockets of PROTOCOL: /ws/runs/ (launch and control) and /ws/runs/<id>/ (watch).

Thin: every write goes through runs.services. Workers and services publish to the group
"run-<id>" (the events are listed in runs/publishing.py). Each socket forwards each step once,
in seq order, with no gap: it joins the group before it reads stored steps, drops live steps it
has already sent, and fills any gap from the database (steps are stored before they are
published, so the database always has them). Steps go out light; only the newest step of each
"steps" message carries its bulky fields (population, line search): what a page draws.
A deleted run's watchers hear "deleted"; a watch socket is then closed with code 4404 (as is
one that asks for a run that is not there), which tells a client not to reconnect.

What a socket sends is bounded: replies quote a client's input clipped (runs.optim.echo), a
replay is read from the database at the pace the client reads (runs/socket_backlog.py), and a
client that lets more than OPTSITE_SOCKET_BACKLOG bytes wait for it is dropped (code 4429).
A socket opened with an API token is closed (code 4401) once the token is revoked (runs/tokens.py).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from runs import publishing, services, socket_backlog, studies, tokens
from runs.encoding import dumps
from runs.models import Run
from runs.optim.echo import bounded_errors, clip, shown
from runs.optim.jsoninput import InputError, loads
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
# The close code for a client that let more than OPTSITE_SOCKET_BACKLOG bytes wait for it: it may
# reconnect with ?after=<the last seq it has>.
SLOW = 4429
# How long a dropped client has to read up to the close frame before its connection is cut.
CLOSE_WITHIN = 10.0
# How often a paced replay looks whether the client has read what waits for it.
PACE = 0.02
# Ids and seqs are database integers (signed 64-bit): anything larger names nothing.
MAX_INT = 2**63 - 1


class BadMessage(Exception):
    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


def read_message(text_data, message_types) -> tuple[str, dict]:
    """(type, message) of a frame a client sent; BadMessage in words for anything else."""
    if text_data is None:
        raise BadMessage("Send JSON text frames, not binary ones.")
    try:
        content = loads(text_data)
    except InputError as exc:
        raise BadMessage(f"That message is not acceptable JSON: {exc}.") from None
    if not isinstance(content, dict):
        raise BadMessage("A message must be a JSON object with a \"type\".")
    kind = content.get("type")
    if not isinstance(kind, str) or kind not in message_types:
        names = ", ".join(sorted(message_types))
        raise BadMessage(f"Unknown message type {shown(kind)}; this socket takes: {names}.",
                         {"type": [f"One of: {names}."]})
    return kind, content


def _after(value, field: str = "after") -> int:
    """A client's `after`: the last seq it has, -1 (or null/absent) for none."""
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= MAX_INT:
        raise BadMessage(f"`{field}` must be a whole number from -1 to {MAX_INT} (the last seq you have), "
                         f"not {shown(value)}.", {field: ["Expected a whole number >= -1."]})
    return value


def _run_id(text: str) -> int | None:
    """The run id of a watch path, or None when the path names no run that can exist."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_INT else None


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


def _authenticated(scope) -> bool:
    return getattr(scope.get("user"), "is_authenticated", False)


class BoundedSocket(AsyncJsonWebsocketConsumer):
    """A socket whose every reply is bounded, and whose client may not fall too far behind."""

    async def websocket_connect(self, message):
        self.dropped = False  # dropped for being too slow: nothing more is sent
        self.backlog = socket_backlog.of(self.base_send)
        self.backlog_limit = settings.OPTSITE_SOCKET_BACKLOG
        if self.scope.get("token") is not None:  # opened with a token: told when it is revoked
            self.groups = [*self.groups, tokens.group_of(self.scope["token"])]
        await super().websocket_connect(message)

    async def send(self, text_data=None, bytes_data=None, close=False):
        if self.dropped:
            return
        queued = self.queued()
        if queued is None and self.backlog is not None:
            return  # closing: nothing more can reach the client (and autobahn would raise)
        if text_data is not None and queued is not None and queued + len(text_data) > self.backlog_limit:
            await self.drop(queued)
            return
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    def queued(self) -> int | None:
        return None if self.backlog is None else self.backlog.queued()

    async def drop(self, queued: int):
        """Too much waits for this client: forget what it has not begun to receive (a reconnect
        with ?after= reads it from the database), say why, and close."""
        self.dropped = True
        forgotten = self.backlog.forget_unsent(close_within=CLOSE_WITHIN)
        log.warning("dropped a socket whose client did not read: %d bytes waited for it, %d of them "
                    "forgotten (%s)", queued, forgotten, clip(self.scope.get("path", ""), 80))
        mib = self.backlog_limit / 2**20
        await super().send(text_data=dumps({
            "type": "error", "code": "limit", "errors": {},
            "message": f"More than {mib:g} MiB waited to be sent to this socket: the client did not read "
                       f"fast enough. Reconnect with ?after=<the last seq you have> to go on."}))
        # A client that does not read even the close frame within CLOSE_WITHIN is cut off, and what
        # still waited for it freed.
        await self.close(code=SLOW)

    async def room(self) -> bool:
        """Wait until the client has read what waits for it down to half the limit; False if the
        socket is closing (or was dropped) meanwhile."""
        while not self.dropped:
            if self.backlog is None:
                return True
            queued = self.backlog.queued()
            if queued is None:
                return False
            if queued <= self.backlog_limit // 2:
                return True
            await asyncio.sleep(PACE)
        return False

    async def send_error(self, code: str, message: str, errors: dict | None = None):
        # whatever a validator said: a reply never grows with the input
        await self.send_json({"type": "error", "code": code, "message": clip(message),
                              "errors": bounded_errors(errors) or {}})

    @classmethod
    async def encode_json(cls, content):
        return dumps(content)

    async def websocket_receive(self, message):
        if self.backlog is not None:
            self.backlog.pace_reading()
        if not await self.token_holds():  # a message is answered only while its token holds
            return
        await super().websocket_receive(message)

    async def token_revoked(self, event):
        await self.token_holds()

    async def token_holds(self) -> bool:
        """False, once said in words and the socket closed, if this socket's token is revoked
        (always True for a session's socket)."""
        refusal = await tokens.socket_refusal(self.scope)
        if refusal is None:
            return True
        if not self.dropped:
            await self.send_error("unauthorized", refusal)
            self.dropped = True  # nothing more is sent (a replay under way stops)
            await self.close(code=tokens.REFUSED)
        return False

    async def send_json(self, content, close=False):
        # AsyncJsonWebsocketConsumer's own would send past the bound above
        await self.send(text_data=await self.encode_json(content), close=close)


class NoSuchSocket(BoundedSocket):
    """Every other /ws/ path: refused in words, never a server error."""

    async def connect(self):
        if not _authenticated(self.scope):
            await self.close()  # before accept: the handshake answers 403, as for the real sockets
            return
        await self.accept()
        await self.send_error("not_found", f"There is no socket at {shown(self.scope.get('path', ''))}; "
                              "the sockets are /ws/runs/, /ws/runs/<id>/ and /ws/runs/external/.")
        await self.close(code=GONE)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        pass  # it is closing


class RunStreamConsumer(BoundedSocket):
    """Relays one run's group to the socket: steps once each, in order; status; finished.

    While a replay is being read (a task, one at a time per socket), the group's events wait in
    `held`, small: a "steps" event only as the seq it reaches (the database has the steps).
    """

    run_id: int | None = None

    async def websocket_connect(self, message):
        self.position = -1  # the last seq sent on this socket
        self.live = True  # False while a replay is being read: events wait in `held`
        self.held: list[dict] = []
        self.ended = False  # "finished" sent and no status since
        self.stated: dict | None = None  # the last Run this socket sent (run, started, status, finished)
        self.replaying: asyncio.Task | None = None
        self.loop = asyncio.get_running_loop()
        publishing.remember_loop(self.loop)
        await super().websocket_connect(message)

    @property
    def user(self):
        return self.scope.get("user")

    # -- incoming frames: nothing a client sends may crash the consumer --
    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            kind, content = read_message(text_data, self.message_types)
            await getattr(self, f"on_{kind}")(content)
        except BadMessage as exc:
            await self.send_error("bad_message", exc.message, exc.errors)
        except services.ServiceError as exc:
            await self.send_error(exc.code, exc.message, exc.errors)
        except Exception:
            log.exception("socket message failed")
            await self.send_error("bad_message", "The server could not handle that message.")

    async def control(self, action: str):
        if self.run_id is None:
            raise services.ServiceError("conflict", f"There is no run on this socket to {action}.")
        accepted, run = await database_sync_to_async(services.control_run)(
            user=self.user, run_id=self.run_id, action=action)
        if not accepted:  # nothing changed: say how things stand, in the stream's order
            answer = {"type": "control.answer", "run_id": self.run_id, "run": run}
            if not self._hold(answer):
                await self.relay_answer(answer)

    async def on_stop(self, content):
        await self.control("stop")

    async def on_pause(self, content):
        await self.control("pause")

    async def on_resume(self, content):
        await self.control("resume")

    # -- the group's events: relayed now, or held while a replay is being read --
    def _hold(self, event) -> bool:
        if event.get("run_id") != self.run_id:
            return True  # an old run's leftovers
        if self.live:
            return False
        if event["type"] == "run.steps":  # only where it reaches: the steps are read back when due
            upto = event["first"] + len(event["steps"]) - 1
            if self.held and self.held[-1]["type"] == "run.steps":
                self.held[-1]["upto"] = max(self.held[-1]["upto"], upto)
            else:
                self.held.append({"type": "run.steps", "run_id": event["run_id"], "upto": upto})
        else:
            self.held.append(event)
        return True

    async def run_steps(self, event):
        if not self._hold(event):
            await self.relay_steps(event)

    async def run_status(self, event):
        if not self._hold(event):
            await self.relay_status(event)

    async def run_finished(self, event):
        if not self._hold(event):
            await self.relay_finished(event)

    async def relay(self, event):
        await getattr(self, "relay_" + event["type"].split(".", 1)[1])(event)

    async def relay_steps(self, event):
        if "upto" in event:  # held: read back from the database
            await self.send_stored(upto=event["upto"])
            return
        first, texts = event["first"], event["steps"]
        last = first + len(texts) - 1
        if last <= self.position:
            return
        queued = self.queued()
        if first > self.position + 1 or (queued is not None and queued > self.backlog_limit // 2):
            # a message was lost (full channel), or the client is behind: the database has them,
            # read at the client's pace while the group's events keep being taken
            self.begin_replay(None, upto=last)
            return
        skip = self.position + 1 - first
        # one event is one message (runs/publishing.py cut it), its newest step complete
        await self.send_steps(texts[skip:] if skip > 0 else texts, last, committed=event.get("committed"))

    async def relay_status(self, event):
        run = event["run"]
        if run["status"] in Run.ACTIVE:
            self.ended = False
        await self.say("status", run)

    async def relay_finished(self, event):
        run = event["run"]
        if run["n_steps"] - 1 > self.position:
            await self.send_stored(upto=run["n_steps"] - 1)
        if not self.ended:
            self.ended = True
            await self.say("finished", run)
            await self.after_finished()

    async def relay_answer(self, event):
        """The answer to a control that changed nothing. The run was read from the database, which
        may be ahead of the stream (steps and statuses published, not yet relayed): it is said only
        once the steps before it are sent and if this socket has said the same status, else this
        socket's own last word stands (what changed follows in order)."""
        run = event["run"]
        if self.stated is not None and self.stated["status"] != run["status"]:
            await self.say("status", self.stated)
            return
        if run["n_steps"] - 1 > self.position:
            await self.send_stored(upto=run["n_steps"] - 1)
        await self.say("status", run)

    async def say(self, kind: str, run: dict):
        self.stated = run
        await self.send_json({"type": kind, "run": run})

    async def after_finished(self):
        pass

    async def run_deleted(self, event):
        if event.get("run_id") == self.run_id:
            await self.say_deleted()

    async def say_deleted(self):
        """The run is gone: say so at once (not held back by a replay: nothing of it is left to send)."""
        self.cancel_replay()
        self.held = []
        self.live = True
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
        """The stored steps after those sent, up to `upto`, a chunk of rows at a time, each message
        only once the client has read most of what waits for it."""
        while upto is None or self.position < upto:
            if not await self.room():
                return
            messages = await _stored(self.run_id, self.position, upto)
            if not messages:
                return
            for last, texts in messages:
                if not await self.room():
                    return
                await self.send_steps(texts, last)

    # -- replays: one at a time per socket --
    def begin_replay(self, after: int | None, upto: int | None = None):
        """Stored steps after `after`, then live ones (a task, so that the group's events keep
        being taken meanwhile); a replay under way is given up for this one. after=None: from
        where the socket is, up to `upto` (a client that fell behind, a lost message)."""
        self.cancel_replay()
        self.live = False
        self.replaying = asyncio.ensure_future(self.replay(after, upto))

    def cancel_replay(self):
        task, self.replaying = self.replaying, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def replay(self, after: int | None, upto: int | None = None):
        """Group joined first, duplicates dropped; the held events follow in their order."""
        try:
            if after is None:
                await self.send_stored(upto=upto)
            else:
                self.position = after
                self.ended = False
                run = await _run_dict_or_none(self.run_id)  # status read BEFORE the steps: if ended, all are stored
                if run is None:  # deleted meanwhile
                    await self.say_deleted()
                    return
                await self.send_stored(upto=run["n_steps"] - 1)
                if run["status"] not in Run.ACTIVE:
                    self.ended = True
                    await self.say("finished", run)
            while self.held and not self.dropped:
                await self.relay(self.held.pop(0))
            self.live = True  # no await since `held` was found empty: nothing can slip in between
        except asyncio.CancelledError:
            raise
        except Exception:
            self.live = True
            if self.backlog is not None and self.queued() is None:
                return  # the client went away meanwhile
            log.exception("replaying run %s failed", self.run_id)
            await self.send_error("bad_message", "The server could not replay the run; subscribe again.")
        finally:
            if self.replaying is asyncio.current_task():
                self.replaying = None

    async def websocket_disconnect(self, message):
        self.cancel_replay()
        await super().websocket_disconnect(message)


class LaunchConsumer(RunStreamConsumer):
    """/ws/runs/: start one run at a time, watch it live, control it; launch and control studies."""

    message_types = {"start", "study", "study_control", *CONTROLS}

    async def connect(self):
        if not _authenticated(self.scope):
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
        label = services.check_label(content.get("label") or "")
        run = await database_sync_to_async(services.create_run)(owner=self.user, data=content["spec"], label=label)
        await self.follow(run.pk)
        payload = await database_sync_to_async(services.start_run)(run_id=run.pk)
        await self.say("started", payload)

    def _still_active(self) -> bool:
        return Run.objects.filter(pk=self.run_id, status__in=Run.ACTIVE).exists()

    # Studies: launched and controlled here, their many runs watched on their own sockets (or
    # their summary over HTTP); this socket's own run is not touched.
    async def on_study(self, content):
        if "spec" not in content:
            raise services.ServiceError("invalid_spec", "A study message needs a \"spec\".",
                                        {"spec": ["This field is required."]})
        await self.send_json({"type": "study", "study": await database_sync_to_async(self._create_study)(content["spec"])})

    def _create_study(self, spec) -> dict:
        return studies.study_to_dict(studies.create_study(owner=self.user, data=spec))

    async def on_study_control(self, content):
        action = content.get("action")
        if action not in CONTROLS:
            raise BadMessage(f"A study_control message needs an \"action\": one of {', '.join(sorted(CONTROLS))}.",
                             {"action": [f"One of: {', '.join(sorted(CONTROLS))}."]})
        study = await database_sync_to_async(studies.control_study)(
            user=self.user, study_id=content.get("study"), action=action)
        await self.send_json({"type": "study", "study": study})

    async def follow(self, run_id: int):
        if self.run_id is not None:
            await self.channel_layer.group_discard(f"run-{self.run_id}", self.channel_name)
        self.run_id = run_id
        self.position, self.ended, self.live, self.held, self.stated = -1, False, True, [], None
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
        if not _authenticated(self.scope):
            await self.close()
            return
        await self.accept()
        wanted = self.scope["url_route"]["kwargs"]["run_id"]
        run_id = _run_id(wanted)
        run = None if run_id is None else await database_sync_to_async(services.get_run_for)(self.user, run_id)
        if run is None:
            # Someone else's run looks exactly like a missing one: said, then closed for good.
            await self.send_error("not_found", f"There is no run {clip(wanted, 40)} of yours.")
            await self.close(code=GONE)
            return
        self.run_id = run.pk
        await self.channel_layer.group_add(f"run-{run.pk}", self.channel_name)
        payload = await _run_dict_or_none(run.pk)
        if payload is None:  # deleted in between
            await self.say_deleted()
            return
        await self.say("run", payload)
        self.live = False  # hold live events until the replay has been sent
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if "after" in query:
            try:
                after = _after(int(query["after"][-1]))
            except (ValueError, BadMessage):
                await self.send_error("bad_message", "`after` in the URL must be a whole number >= -1.",
                                      {"after": ["Expected a whole number >= -1."]})
                after = -1
            self.begin_replay(after)
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
            self.begin_replay(-1)

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
        self.begin_replay(after)
