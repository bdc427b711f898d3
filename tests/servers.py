"""Real Redis and PostgreSQL servers for tests, started on loopback in a temporary folder.

Each is a context manager that yields a URL and stops the server (and removes its files) after.
Nothing here uses a system service: the tests start what they need, as CI would.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _serving(argv: list[str], port: int):
    """Run a server process until the block ends; the block starts once the port answers."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=process)
        yield process
    finally:
        _stop(process)


def redis_binary() -> str | None:
    return shutil.which("redis-server")


@contextlib.contextmanager
def redis_server():
    binary = redis_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed (make test installs Debian's redis-server)")
    port = free_port()
    with _serving([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], port):
        yield f"redis://127.0.0.1:{port}/0"


def postgres_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return os.path.dirname(found[-1]) if found else None


@contextlib.contextmanager
def postgres_server():
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (make test installs Debian's postgresql)")
    root = tempfile.mkdtemp(prefix="optsite-pg-")
    # PostgreSQL refuses to run as root: run it as the postgres user the Debian package creates.
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(root, "data")
    port = free_port()
    subprocess.run(
        [*as_user, f"{bindir}/initdb", "-D", data, "-U", "optsite", "-A", "trust", "--no-sync"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with _serving([*as_user, f"{bindir}/postgres", "-D", data, "-p", str(port), "-k", root,
                       "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"], port):
            yield f"postgres://optsite@127.0.0.1:{port}/postgres"
    finally:
        shutil.rmtree(root, ignore_errors=True)
