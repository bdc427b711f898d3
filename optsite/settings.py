"""optsite settings: one file, everything that differs between machines comes from the environment."""

import os
import secrets
from pathlib import Path

import dj_database_url

from optsite.env import env_bool, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent


def _secret_key() -> str:
    # A fresh checkout must start with nothing to configure, yet sessions must survive restarts:
    # keep a generated key in an ignored file unless SECRET_KEY is given.
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "runs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "optsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "optsite.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets pages read while a run writes; IMMEDIATE avoids lock upgrades failing mid-transaction.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Live-server browser tests run the app in another process: the test database must be a file.
    # OPTSITE_TEST_DB lets two test runs on one checkout use different files.
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("OPTSITE_TEST_DB") or str(BASE_DIR / ".test-db.sqlite3")}

def channel_layers(redis_url: str) -> dict:
    """The channel layers for a Redis URL, or the in-memory layer when it is empty."""
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1500}}}
    # redis-py 8 reads with a 5 s socket timeout by default, which cuts channels-redis's 5 s
    # blocking BZPOPMIN and tears down idle sockets (django/channels_redis#422): allow longer than
    # the blocking read, so a dead Redis is still noticed.
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 15}], "capacity": 1500},
        }
    }


REDIS_URL = os.environ.get("REDIS_URL", "").strip()
CHANNEL_LAYERS = channel_layers(REDIS_URL)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/runs/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `collectstatic` writes hashed, compressed copies here (make serve and the test session run it);
# pages then link the hashed names, which WhiteNoise serves with a year-long immutable cache.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or str(BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "optsite.staticstorage.StaticStorage"},
}
# With DEBUG the pages link plain names, served straight from the apps' folders and re-read on change.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Pages only ever link the hashed names: collect (and compress) nothing else.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Run limits (PROTOCOL: defaults admit at least these; beyond a cap the answer is `limit`).
OPTSITE_MAX_DIM = env_int("OPTSITE_MAX_DIM", 200, minimum=1)
OPTSITE_MAX_MAXITER = env_int("OPTSITE_MAX_MAXITER", 20_000, minimum=1)
OPTSITE_MAX_POPSIZE = env_int("OPTSITE_MAX_POPSIZE", 100, minimum=1)
OPTSITE_MAX_EVALUATIONS = env_int("OPTSITE_MAX_EVALUATIONS", 10_000_000, minimum=1)
OPTSITE_MAX_CONCURRENT_RUNS = env_int("OPTSITE_MAX_CONCURRENT_RUNS", 4, minimum=1)
# Workers (runs/dispatch.py). Without REDIS_URL the server starts this many worker processes
# itself (0: one per CPU); with it, runs are Celery tasks on the queue "runs".
OPTSITE_WORKERS = env_int("OPTSITE_WORKERS", 0, minimum=0)
# The pool's processes run at this niceness: a solver that keeps every core busy then yields to the
# web process (sockets, pages, controls) and to a browser on the same machine; alone, it loses nothing.
OPTSITE_WORKER_NICE = env_int("OPTSITE_WORKER_NICE", 10, minimum=0, maximum=19)
# Runs interrupted by a dead worker or server continue by themselves (at most this many times).
OPTSITE_AUTO_RESUME = env_bool("OPTSITE_AUTO_RESUME", True)
OPTSITE_MAX_AUTO_RESUMES = env_int("OPTSITE_MAX_AUTO_RESUMES", 10, minimum=0)
# Every server process sweeps runs whose worker's lease expired (runs/recovery.py); tests turn it off.
OPTSITE_RUN_MONITOR = env_bool("OPTSITE_RUN_MONITOR", True)
# A run's write that fails for the storage's sake (database locked, disk full or read-only, I/O
# error: runs/storage_faults.py) is tried again for this many seconds, the wait between tries
# starting at OPTSITE_STORAGE_RETRY_WAIT_MS and doubling up to 5 s; then the run is let go as
# interrupted, to resume from its last stored checkpoint.
OPTSITE_STORAGE_RETRY_SECONDS = env_int("OPTSITE_STORAGE_RETRY_SECONDS", 120, minimum=0)
OPTSITE_STORAGE_RETRY_WAIT_MS = env_int("OPTSITE_STORAGE_RETRY_WAIT_MS", 500, minimum=1)
# SQLite: how long a write waits for another's lock before it counts as a storage fault.
OPTSITE_SQLITE_BUSY_TIMEOUT = env_int("OPTSITE_SQLITE_BUSY_TIMEOUT", 20, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"]["timeout"] = OPTSITE_SQLITE_BUSY_TIMEOUT

# Celery (scale-out mode only): long tasks, one at a time per worker process, acknowledged when
# done. A task is only a wake-up call: the run's lease in the database decides who drives it, so
# a duplicate or late delivery changes nothing.
CELERY_BROKER_URL = REDIS_URL or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
# A busy worker takes no second wake-up: it would wait there behind a run lasting hours while
# another worker is free.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_DISABLE_PREFETCH = True
# A broker outage does not cut runs short: their leases and steps live in the database, and a
# wake-up the broker delivers again meanwhile finds its run taken.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "runs"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"runs": {"handlers": ["console"], "level": os.environ.get("OPTSITE_LOG_LEVEL", "INFO")}},
}
