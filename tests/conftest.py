"""Shared fixtures: users alice and charlie, logged-in clients, authenticated WebSocket communicators."""

import gc
import multiprocessing
import os
import threading
import time

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

# The live server of the browser tests is started in a child process; forking after async tests
# have run leaves it hanging, so always spawn.
multiprocessing.set_start_method("spawn", force=True)

# No run monitor in tests (here or in a spawned live server): it would interrupt the runs that
# tests create by hand. tests/test_recovery.py drives the sweep directly.
os.environ["OPTSITE_RUN_MONITOR"] = "0"
settings.OPTSITE_RUN_MONITOR = False
# Runs execute in the local pool of this process (and of the live server's), as in the default
# mode; three workers, so that a test's few runs rarely wait for one another.
os.environ["OPTSITE_WORKERS"] = "3"
settings.OPTSITE_WORKERS = 3

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session", autouse=True)
def collected_static(django_test_environment):
    """Pages link hashed static names (optsite/staticstorage.py): collect them before any server starts."""
    from optsite.staticstorage import collect_if_stale

    collect_if_stale()


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", "alice@example.org", PASSWORD)


@pytest.fixture
def charlie(db):
    return get_user_model().objects.create_user("charlie", "charlie@example.org", PASSWORD)


@pytest.fixture
def alice_client(alice):
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def charlie_client(charlie):
    client = Client()
    client.force_login(charlie)
    return client


def session_cookie(user) -> str:
    """A real session for `user`, as the browser would send it."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def communicator(path: str, user=None, origin: str = "http://localhost") -> WebsocketCommunicator:
    """A WebsocketCommunicator on the real ASGI application (auth and origin checks included)."""
    from optsite.asgi import application

    # As a browser on http://localhost sends them: the Origin is judged against the Host (optsite/origins.py).
    headers = [(b"host", b"localhost"), (b"origin", origin.encode())]
    if user is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_cookie(user)}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture
def workers():
    """Runs go to this process's local pool; every run a test left going is stopped after it,
    and the pool is idle again before the next test (whose database is a fresh one)."""
    from runs import dispatch, services
    from runs.models import Run

    yield dispatch
    for run_id in Run.objects.filter(status__in=Run.ACTIVE).values_list("pk", flat=True):
        assert services.stop_run_and_wait(run_id=run_id, timeout=60), f"run {run_id} did not stop"
    pool = dispatch._pool
    deadline = time.monotonic() + 60
    while pool is not None and not pool.idle():
        assert time.monotonic() < deadline, "the local pool did not become idle"
        time.sleep(0.02)


@pytest.fixture
def fast_passwords(settings):
    """A cheap password hasher for tests that make users but never check a password over HTTP."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def no_thread_left():
    """The steppers that run scipy in a thread (runs/optim/minimize.py, global_methods.py) leave
    none behind: the test fails if a thread outlives it."""
    before = threading.active_count()
    yield
    if threading.active_count() > before:
        gc.collect()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before, "a scipy thread outlived the test"
