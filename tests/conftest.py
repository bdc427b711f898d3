"""Shared fixtures: users alice and charlie, logged-in clients, authenticated WebSocket communicators."""

import multiprocessing
import os

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

# The live server of the browser tests is started in a child process; forking after async tests
# have run leaves it hanging, so always spawn.
multiprocessing.set_start_method("spawn", force=True)

# No orphan-run monitor in tests (here or in a spawned live server): it would mark the runs that
# tests create by hand `interrupted`. tests/test_services.py drives the sweep directly.
os.environ["OPTSITE_RUN_MONITOR"] = "0"
settings.OPTSITE_RUN_MONITOR = False

PASSWORD = "correct horse battery staple"


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

    headers = [(b"origin", origin.encode())]
    if user is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_cookie(user)}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture
def executors():
    """Every executor thread a test started has ended (stopped if need be) when it is over."""
    from runs import executor

    yield executor
    stuck = executor.shutdown_all(timeout=60)
    assert not stuck, f"executor threads of runs {stuck} did not end"


@pytest.fixture
def fast_passwords(settings):
    """A cheap password hasher for tests that make users but never check a password over HTTP."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
