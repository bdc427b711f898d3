"""One process of the local pool (started by runs/pool.py): `python -m runs.pool_worker FD`.

It talks to the web process over the socket FD (multiprocessing's Connection: pickled tuples
between two processes of this project, never anything read from outside):
  in:  ("drive", run_id)  ("control", run_id)  ("exit",)
  out: ("ready", holder)  ("event", event)  ("done", run_id, outcome)
Events are sent after the commit that stored them; the web process relays them to the sockets.
When the web process goes away (EOF) or asks it to exit, the run it drives is written and let go
as interrupted, and the process ends.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading


def main(fd: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optsite.settings")
    django.setup()
    database = os.environ.get("OPTSITE_POOL_DATABASE")
    if database:  # the web process's database file (tests run on a test database)
        from django.conf import settings

        settings.DATABASES["default"]["NAME"] = database

    from django.conf import settings

    os.nice(settings.OPTSITE_WORKER_NICE)

    from multiprocessing.connection import Connection

    from runs.worker import Worker

    conn = Connection(fd)
    worker = Worker("pool")
    send_lock = threading.Lock()
    jobs: queue.Queue = queue.Queue()

    def send(message) -> None:
        with send_lock:
            conn.send(message)

    def shut_down(*_):
        worker.interrupt()
        jobs.put(None)

    def publish(event) -> None:
        try:
            send(("event", event))
        except OSError:  # the web process is gone: what the event carries is stored already
            shut_down()

    def listen() -> None:
        try:
            while True:
                message = conn.recv()
                if message[0] == "drive":
                    jobs.put(message[1])
                elif message[0] == "control":
                    worker.nudge(message[1])
                elif message[0] == "exit":
                    break
        except (EOFError, OSError):
            pass  # the web process is gone
        shut_down()

    # Ctrl-C in a terminal reaches the whole process group: the web process decides for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, shut_down)
    threading.Thread(target=listen, name="optsite-pool-listen", daemon=True).start()
    try:
        send(("ready", worker.holder))
    except OSError:  # the web process went away while this one started: nothing to do
        return
    while (run_id := jobs.get()) is not None:
        outcome = worker.drive(run_id, publish)
        try:
            send(("done", run_id, outcome))
        except OSError:
            break


if __name__ == "__main__":
    main(int(sys.argv[1]))
