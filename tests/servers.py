"""Real Redis and PostgreSQL servers for tests, started on loopback in a temporary folder.

Each is a context manager that yields a URL and stops the server (and removes its files) after.
Nothing here uses a system service: the tests start what they need, as CI would.
"""

import contextlib
import glob
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time


@contextlib.contextmanager
def sqlite_write_lock(path, timeout: float = 30.0):
    """Another writer holding SQLite's write lock (as a backup or a long migration would)."""
    holder = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


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


class Daphne:
    """`daphne optsite.asgi:application` with its own worker pool on a throwaway SQLite file, as in
    production (DEBUG=0), its log in a file; users made with createsuperuser. A context manager."""

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def __init__(self, users: dict[str, str], env: dict | None = None, workers: int = 2):
        import sys

        self.python = sys.executable
        self.users, self.extra_env, self.workers = users, env or {}, workers
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Daphne":
        self.tmp = tempfile.mkdtemp(prefix="optsite-daphne-")
        self.db = os.path.join(self.tmp, "db.sqlite3")
        self.log_path = os.path.join(self.tmp, "daphne.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTSITE_") and k not in ("REDIS_URL",)}
        env.update({"DJANGO_SETTINGS_MODULE": "optsite.settings", "DATABASE_URL": f"sqlite:///{self.db}",
                    "ALLOWED_HOSTS": "127.0.0.1,localhost", "DEBUG": "0", "PYTHONUNBUFFERED": "1",
                    "SECRET_KEY": "optsite-live-test-key-not-secret-0123456789abcdefghijklmnopq",
                    "OPTSITE_WORKERS": str(self.workers), "OPTSITE_RUN_MONITOR": "0",
                    "OPTSITE_MAX_CONCURRENT_RUNS": "50", **self.extra_env})
        self.env = env
        try:
            subprocess.run([self.python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=self.ROOT, env=env,
                           check=True, capture_output=True, timeout=120)
            for name, password in self.users.items():
                subprocess.run([self.python, "manage.py", "createsuperuser", "--noinput", "--username", name,
                                "--email", f"{name}@example.org"], cwd=self.ROOT, check=True, capture_output=True,
                               env={**env, "DJANGO_SUPERUSER_PASSWORD": password}, timeout=120)
            self.port = free_port()
            daphne = os.path.join(os.path.dirname(self.python), "daphne")
            self._log = open(self.log_path, "wb")
            self.process = subprocess.Popen([daphne, "-b", "127.0.0.1", "-p", str(self.port),
                                             "optsite.asgi:application"], cwd=self.ROOT, env=env,
                                            stdout=self._log, stderr=subprocess.STDOUT)
            wait_for_port(self.port, timeout=60, process=self.process)
        except BaseException:
            self.__exit__()
            raise
        self.http = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            _stop(self.process)
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def query(self, sql: str, *args) -> list[tuple]:
        import sqlite3

        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=20) as con:
            return con.execute(sql, args).fetchall()
