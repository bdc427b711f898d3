"""A client of a running server, as any outside program would be: HTTP with a cookie jar, and
WebSockets (websocket-client) whose messages a thread reads into a queue."""

import http.cookiejar
import json
import queue
import socket
import threading
import time
import urllib.parse
import urllib.request

import websocket


def _base(server) -> str:
    """http://host:port, of a URL or of an object that has it as `.http`."""
    return server if isinstance(server, str) else server.http


class Client:
    """Logged in once on one server (a URL http://host:port, or an object with `.http`); the
    session lives in the database, so it is good on every server process that shares it."""

    def __init__(self, server, username: str, password: str):
        base = _base(server)
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(base + "/accounts/login/", timeout=10).read()
        form = {"username": username, "password": password, "csrfmiddlewaretoken": self.cookie("csrftoken")}
        with self.opener.open(base + "/accounts/login/", data=urllib.parse.urlencode(form).encode(),
                              timeout=10) as reply:
            assert reply.url.endswith("/runs/"), f"login failed: ended at {reply.url}"
        assert self.cookie("sessionid")

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def get(self, server, path: str):
        with self.opener.open(_base(server) + path, timeout=10) as reply:
            return json.loads(reply.read())

    def socket(self, server, path: str) -> "Socket":
        name = getattr(server, "name", None) or _base(server)
        return Socket(_base(server), path, f"sessionid={self.cookie('sessionid')}", name)

    def raw(self, server, path: str, rcvbuf: int | None = None) -> websocket.WebSocket:
        """A socket nobody reads until the test does (`rcvbuf`: a small receive buffer, so that
        what the client does not read waits in the server rather than in this machine's kernel)."""
        base = _base(server)
        options = () if rcvbuf is None else ((socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf),)
        return websocket.create_connection(base.replace("http://", "ws://", 1) + path, origin=base,
                                           cookie=f"sessionid={self.cookie('sessionid')}", timeout=30,
                                           sockopt=options)

    def handshake(self, server, path: str) -> "Handshake":
        return handshake(server, path, f"sessionid={self.cookie('sessionid')}")


class Handshake:
    """How a server answered a WebSocket handshake: `status` (101 if accepted), then, if accepted,
    the messages it sent and the close code it ended with (None: it did not close by itself)."""

    def __init__(self, status: int, messages: list[dict] | None = None, close_code: int | None = None):
        self.status, self.messages, self.close_code = status, messages or [], close_code

    def __repr__(self):
        return f"Handshake(status={self.status}, messages={self.messages}, close_code={self.close_code})"


def handshake(server, path: str, cookie: str | None = None, timeout: float = 10.0) -> Handshake:
    """Open a socket on `path`, read what the server says until it closes (or `timeout`)."""
    base = _base(server)
    try:
        conn = websocket.create_connection(base.replace("http://", "ws://", 1) + path, origin=base,
                                           cookie=cookie, timeout=timeout)
    except websocket.WebSocketBadStatusException as exc:
        return Handshake(exc.status_code)
    messages, code = [], None
    try:
        while True:
            opcode, data = conn.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                break
            if opcode == websocket.ABNF.OPCODE_TEXT:
                messages.append(json.loads(data))
    except websocket.WebSocketTimeoutException:
        pass
    except (websocket.WebSocketConnectionClosedException, ConnectionError) as exc:
        messages.append({"type": "closed", "why": repr(exc)})  # cut off without a close frame
    finally:
        conn.close()
    return Handshake(101, messages, code)


class Socket:
    """A WebSocket whose messages a thread reads into a queue (no back-pressure on the server)."""

    def __init__(self, base: str, path: str, cookie: str, name: str):
        self.name = name
        ws_base = base.replace("http://", "ws://", 1)
        self.conn = websocket.create_connection(ws_base + path, origin=base, cookie=cookie, timeout=10)
        self.conn.settimeout(None)
        self.inbox: queue.Queue = queue.Queue()
        self.received: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                opcode, data = self.conn.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    self.inbox.put((time.monotonic(), {"type": "closed", "code": code, "why": "close frame"}))
                    return
                if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                    self.inbox.put((time.monotonic(), json.loads(data)))
        except Exception as exc:  # closed without a close frame (by us, or the server went away)
            self.inbox.put((time.monotonic(), {"type": "closed", "code": None, "why": repr(exc)}))

    def send(self, message: dict) -> None:
        self.conn.send(json.dumps(message))

    def send_text(self, text: str) -> None:
        """A frame exactly as given (not necessarily JSON)."""
        self.conn.send(text)

    def send_bytes(self, data: bytes) -> None:
        self.conn.send_binary(data)

    def next(self, timeout: float = 20.0) -> tuple[float, dict]:
        try:
            at, message = self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no message in {timeout} s; last: "
                                 f"{[brief(m) for m in self.received[-3:]]}") from None
        self.received.append(message)
        return at, message

    def until(self, kind: str, timeout: float = 20.0, **match) -> tuple[float, list[dict]]:
        """Messages up to and including the first of type `kind` whose run has these fields."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            at, message = self.next(max(0.01, deadline - time.monotonic()))
            got.append(message)
            assert message["type"] not in ("closed", "error") or kind == message["type"], message
            if message["type"] == kind and all(message.get("run", {}).get(k) == v for k, v in match.items()):
                return at, got

    def until_seq(self, seq: int, timeout: float = 30.0) -> None:
        """Read until step `seq` has arrived."""
        deadline = time.monotonic() + timeout
        while not seqs(self.received) or seqs(self.received)[-1] < seq:
            _, message = self.next(max(0.01, deadline - time.monotonic()))
            assert message["type"] not in ("closed", "error", "finished"), message

    def quiet(self, seconds: float) -> list[dict]:
        """What arrives in the next `seconds` (expected: nothing)."""
        got, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.inbox.get(timeout=left)[1])
            except queue.Empty:
                break
        self.received += got
        return got

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass


BULKY = ("population", "population_energies", "line_search")


def steps(messages: list[dict]) -> list[dict]:
    """The light steps received (the newest of each message also carries its bulky fields:
    left out here, so that these compare with the stored, light steps of the API)."""
    return [{**s, "extra": {k: v for k, v in s["extra"].items() if k not in BULKY}}
            for m in messages if m["type"] == "steps" for s in m["steps"]]


def seqs(messages: list[dict]) -> list[int]:
    return [s["seq"] for s in steps(messages)]


def no_elapsed(step: dict) -> dict:
    return {k: v for k, v in step.items() if k != "elapsed"}


def read_all(conn: websocket.WebSocket) -> tuple[list[dict], int | None]:
    """Everything a raw socket receives until the server closes it: (messages, close code)."""
    messages = []
    try:
        while True:
            opcode, data = conn.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return messages, (int.from_bytes(data[:2], "big") if len(data) >= 2 else None)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                messages.append(json.loads(data))
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return messages, None


def brief(message: dict) -> dict:
    """A message without its steps' contents (for failure reports)."""
    if message.get("type") == "steps":
        return {**message, "steps": [s["seq"] for s in message["steps"]]}
    return message
