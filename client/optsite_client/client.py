"""`Client(url, token)`: the server's JSON API and its sockets, as the owner of a personal token."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from .errors import BadAnswer, Invalid, NotFound, Unauthorized, Unreachable, from_message
from .http import Http, expect
from .runs import Run, RunHandle, Step
from .sockets import GONE, Dropped, Refused, Socket
from .spool import MEMORY_LIMIT, SPOOL_LIMIT, default_spool_dir

Study = dict[str, Any]  # the server's Study object (docs/protocol.md, "Studies")

MAX_PAGE = 10_000  # the server's largest steps page
STUDY_ACTIONS = ("pause", "resume", "stop")


def _whole(value: Any, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise Invalid(f"{name} must be a whole number of at least {lo}, not {value!r}.", "bad_request",
                      {name: [f"A whole number >= {lo}."]})
    return value


class Client:
    """One optsite server, used as the owner of `token` (made on the server's /accounts/tokens/).

    `url` is where the site is served, e.g. "http://127.0.0.1:8000"; `timeout` (seconds) bounds
    each HTTP request and each wait on a socket for anything at all (the server pings every 20 s);
    a live run's socket that drops is reconnected for up to `reconnect_timeout` seconds.
    Every refusal raises an OptsiteError subclass in the server's words (optsite_client.errors).

    `minimize` and `differential_evolution` keep an external run's unacknowledged steps in
    memory up to `memory_limit` bytes (encoded), then in a spool under `spool_dir` (default: the
    user's cache directory, optsite/spool) up to `spool_limit` bytes per run.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 30, reconnect_timeout: float = 60,
                 spool_dir: str | os.PathLike | None = None, memory_limit: int = MEMORY_LIMIT,
                 spool_limit: int = SPOOL_LIMIT):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be the site's http:// or https:// address, not {url!r}.")
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token must be a personal API token (opt_...), made on the site's /accounts/tokens/.")
        self.url = url.rstrip("/")
        self.token = token.strip()
        self.timeout = timeout
        self.reconnect_timeout = reconnect_timeout
        self.http = Http(self.url, self.token, timeout)
        self.spool_dir = Path(spool_dir) if spool_dir is not None else default_spool_dir()
        self.memory_limit = _whole(memory_limit, "memory_limit", 1)
        self.spool_limit = _whole(spool_limit, "spool_limit", 1)

    def __repr__(self) -> str:
        return f"Client({self.url!r}, '{self.token[:12]}…')"

    # -- catalogues --
    def problems(self) -> list[dict[str, Any]]:
        """The test problems: name, title, params, dims, default bounds, known minimum, ..."""
        return expect(self.http.get("/api/problems/"), list, "problem list")

    def methods(self) -> list[dict[str, Any]]:
        """The methods and their options (type, default, limits, choices)."""
        return expect(self.http.get("/api/methods/"), list, "method list")

    # -- runs over HTTP --
    def runs(self, limit: int | None = None) -> list[Run]:
        """Your runs, newest first (at most `limit` of them)."""
        query = {} if limit is None else {"limit": _whole(limit, "limit", 1)}
        return expect(self.http.get("/api/runs/", **query), list, "run list")

    def run(self, run_id: int) -> Run:
        """One run of yours (NotFound for a missing one or someone else's)."""
        return expect(self.http.get(f"/api/runs/{_whole(run_id, 'run_id', 1)}/"), dict, "run")

    def steps(self, run_id: int, after: int = -1, *, bulky: bool = False,
              page_size: int = MAX_PAGE) -> Iterator[Step]:
        """The stored steps with seq > `after`, in order, read a page of `page_size` at a time
        (light steps; complete ones with `bulky=True`). The first page is read at once, so that
        a missing run raises here; the others as the iterator reaches them."""
        run_id = _whole(run_id, "run_id", 1)
        _whole(after, "after", -1)
        page_size = _whole(page_size, "page_size", 1)
        first = self._steps_page(run_id, after, page_size, bulky)
        return self._pages(run_id, first, page_size, bulky)

    def _steps_page(self, run_id: int, after: int, size: int, bulky: bool) -> tuple[list[Step], bool]:
        page = expect(self.http.get(f"/api/runs/{run_id}/steps/", after=after, limit=size,
                                    **({"bulky": 1} if bulky else {})), dict, "steps page")
        return expect(page.get("steps"), list, "steps page's steps"), bool(page.get("more"))

    def _pages(self, run_id: int, page: tuple[list[Step], bool], size: int, bulky: bool) -> Iterator[Step]:
        steps, more = page
        while True:
            yield from steps
            if not more or not steps:
                return
            after = expect(steps[-1].get("seq"), int, "step's seq")
            steps, more = self._steps_page(run_id, after, size, bulky)

    def step(self, run_id: int, seq: int | None = None) -> Step:
        """One complete step (bulky fields included); the newest stored one with `seq=None`."""
        run_id = _whole(run_id, "run_id", 1)
        where = "latest" if seq is None else _whole(seq, "seq", 0)
        answer = expect(self.http.get(f"/api/runs/{run_id}/steps/{where}/"), dict, "step answer")
        return expect(answer.get("step"), dict, "step")

    def export_json(self, run_id: int) -> dict[str, Any]:
        """The run's export: {"format", "version", "exported", "run", "result", "summary", "steps"},
        every step complete."""
        return expect(self.http.get(f"/runs/{_whole(run_id, 'run_id', 1)}/export.json"), dict, "export")

    def steps_csv(self, run_id: int) -> str:
        """The steps as CSV text: one header row, one row per step (docs/protocol.md, "CSV")."""
        return self.http.text(f"/runs/{_whole(run_id, 'run_id', 1)}/steps.csv")

    # -- runs over sockets --
    def launch(self, spec: dict[str, Any], label: str = "") -> RunHandle:
        """Start a run of `spec` (as the site's form or `GET /api/methods/` describe it) and return
        its handle once the server has queued it. Invalid (with `.errors` by field) or Limit if
        refused."""
        message: dict[str, Any] = {"type": "start", "spec": spec}
        if label:
            message["label"] = label
        try:
            json.dumps(message, allow_nan=False)
        except (TypeError, ValueError) as bad:
            raise Invalid(f"The spec cannot be sent as JSON: {bad}.", "invalid_spec", {"spec": [str(bad)]}) from None
        sock = self._socket("/ws/runs/")
        early: list[dict[str, Any]] = []
        try:
            sock.send(message)
            while True:
                answer = sock.recv()
                if answer["type"] == "error":
                    raise from_message(answer)
                if answer["type"] == "started":
                    break
                early.append(answer)
        except Dropped as dropped:
            sock.close()
            raise Unreachable(f"The socket closed before the server said the run had started ({dropped.why}); "
                              "client.runs() shows whether it did.") from None
        except BaseException:
            sock.close()
            raise
        handle = RunHandle(self, sock, expect(answer.get("run"), dict, "started message's run"))
        for other in early:
            handle._take(other)
        return handle

    def watch(self, run_id: int, after: int = -1) -> RunHandle:
        """A handle on a run of yours (live or ended): its `steps()` start after seq `after`.
        NotFound for a missing run or someone else's."""
        run_id, after = _whole(run_id, "run_id", 1), _whole(after, "after", -1)
        sock = self._socket(f"/ws/runs/{run_id}/?after={after}")
        try:
            first = sock.recv()
        except BadAnswer:
            sock.close()
            raise
        except Dropped as dropped:
            if dropped.code == GONE:
                raise NotFound(f"There is no run {run_id} of yours.") from None
            raise Unreachable(f"The socket of run {run_id} closed at once ({dropped.why}).") from None
        if first["type"] == "error":
            sock.close()
            raise from_message(first)
        if first["type"] != "run":
            sock.close()
            raise BadAnswer(f"The watch socket of run {run_id} began with a {first['type']!r} message, "
                            "not the run.")
        return RunHandle(self, sock, expect(first.get("run"), dict, "run message's run"), received=after)

    def _open(self, path: str) -> Socket:
        """A socket, or Refused (an HTTP answer to the handshake) or Dropped (no connection)."""
        return Socket(self.url, path, self.token, self.timeout)

    def _socket(self, path: str) -> Socket:
        """A socket, or an OptsiteError in words."""
        try:
            return self._open(path)
        except Refused as refused:
            status = refused.status
        except Dropped as dropped:
            raise Unreachable(f"Could not open the socket {path} of {self.url}: {dropped.why}.") from None
        self._refused(path, status)  # outside the except: the handshake's exception is not chained on

    def _refused(self, path: str, status: int) -> NoReturn:
        if status not in (401, 403):
            raise BadAnswer(f"The server answered the handshake of the socket {path} with HTTP {status}, "
                            f"not a socket: is {self.url} an optsite site?")
        self.http.get("/api/runs/", limit=1)  # the JSON API says why in words
        raise Unauthorized(f"The server refused the socket {path} (HTTP {status}), though its JSON API "
                           "takes the token.", "forbidden")

    # -- your own function, computed here (external.py) --
    def minimize(self, fun: Callable, x0: Any, args: tuple = (), method: str = "L-BFGS-B", jac: Any = None,
                 hess: Any = None, bounds: Any = None, options: dict[str, Any] | None = None, *, label: str = "",
                 title: str | None = None, callback: Callable | None = None,
                 deliver_timeout: float = 60.0) -> Any:
        """`scipy.optimize.minimize(fun, x0, args, method, jac, hess, bounds, options=options,
        callback=callback)`, computed in this thread by optsite's steppers (scipy's numbers) and
        streamed live to the server as an external run; scipy's OptimizeResult, plus `run_id`,
        `run_url` and `delivered`. Stop and Pause pressed on the run's page act between steps.
        Invalid or Limit (before any step) if the spec is refused; the server being away stops
        nothing (docs/client.md, "Your function, your process")."""
        from .external import minimize_spec, run
        data, functions = minimize_spec(fun, x0, args, method, jac, hess, bounds, options, title)
        return run(self, data, functions, label=label, callback=callback, deliver_timeout=deliver_timeout)

    def differential_evolution(self, func: Callable, bounds: Any, args: tuple = (), *, label: str = "",
                               title: str | None = None, callback: Callable | None = None,
                               deliver_timeout: float = 60.0, **options: Any) -> Any:
        """`scipy.optimize.differential_evolution(func, bounds, args, callback=callback, **options)`
        (options: strategy, maxiter, popsize, tol, mutation, recombination, seed or rng, polish,
        init, atol, updating, x0), computed here and streamed as `minimize` is."""
        from .external import de_spec, run
        data, functions = de_spec(func, bounds, args, options, title)
        return run(self, data, functions, label=label, callback=callback, deliver_timeout=deliver_timeout)

    def deliver_pending(self, timeout: float = 60.0) -> list[Run]:
        """Send what earlier optimizations could not deliver to this server (their spools in
        `spool_dir`): each run is continued (or opened) and ended; returns the Runs delivered.
        What still cannot be delivered stays, with a DeliveryWarning saying why."""
        from .external import deliver_pending
        return deliver_pending(self, timeout)

    # -- studies --
    def studies(self) -> list[Study]:
        """Your studies, newest first."""
        return expect(self.http.get("/api/studies/"), list, "study list")

    def create_study(self, spec: dict[str, Any]) -> Study:
        """Create and queue a study (docs/protocol.md, "Studies"); Invalid with `.errors` keyed by
        the study's fields, or Limit."""
        answer = expect(self.http.post("/api/studies/", spec), dict, "study answer")
        return expect(answer.get("study"), dict, "study")

    def study(self, study_id: int) -> Study:
        """One study of yours, with `run_list` (per run: id, config, repeat, seed, status, ...)."""
        return expect(self.http.get(f"/api/studies/{_whole(study_id, 'study_id', 1)}/"), dict, "study")

    def study_summary(self, study_id: int, budgets: list[int] | None = None,
                      since: str | None = None) -> dict[str, Any]:
        """The study's aggregates (docs/studies.md); with `since` equal to the current version,
        just {"study", "version", "unchanged": True}."""
        query: dict[str, Any] = {}
        if budgets:
            query["budgets"] = ",".join(str(_whole(b, "budgets", 1)) for b in budgets)
        if since is not None:
            query["since"] = since
        return expect(self.http.get(f"/api/studies/{_whole(study_id, 'study_id', 1)}/summary/", **query),
                      dict, "study summary")

    def control_study(self, study_id: int, action: str) -> Study:
        """"pause", "resume" or "stop" every run of the study that can take it; Conflict when none can."""
        if action not in STUDY_ACTIONS:
            raise Invalid(f"A study takes {', '.join(STUDY_ACTIONS)}, not {action!r}.", "bad_request",
                          {"action": [f"One of: {', '.join(STUDY_ACTIONS)}."]})
        answer = expect(self.http.post(f"/api/studies/{_whole(study_id, 'study_id', 1)}/{action}/"), dict,
                        "study answer")
        return expect(answer.get("study"), dict, "study")
