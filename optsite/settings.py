"""optsite settings: one file, everything that differs between machines comes from the environment."""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from optsite.env import env_bool, env_int, env_list, env_origins
from optsite.origins import host_of

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

# Where browsers reach the site (scheme://host[:port], comma separated), e.g. the public URL
# behind a reverse proxy. It says whether the site is served over HTTPS and which origins may
# post forms (CSRF) and open sockets (optsite/origins.py); unset, the site is what it is asked as.
OPTSITE_PUBLIC_URL = env_origins("OPTSITE_PUBLIC_URL")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [host_of(o) for o in OPTSITE_PUBLIC_URL] or ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS") + OPTSITE_PUBLIC_URL
# Origins other than the site's own that may open logged-in sockets (each scheme, host and port).
OPTSITE_ALLOWED_ORIGINS = env_origins("OPTSITE_ALLOWED_ORIGINS") + CSRF_TRUSTED_ORIGINS

# HTTPS: on by default when the public URL is https and DEBUG is off; each part can be set alone.
OPTSITE_HTTPS = env_bool("OPTSITE_HTTPS", bool(OPTSITE_PUBLIC_URL) and all(
    o.startswith("https://") for o in OPTSITE_PUBLIC_URL)) and not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", OPTSITE_HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", OPTSITE_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", OPTSITE_HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if OPTSITE_HTTPS else 0)
# Both bind more than this site (every subdomain; browsers' built-in lists): never on by default.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Reverse proxies in front of daphne. Only then are their headers believed: X-Forwarded-Proto for
# "this request came over HTTPS", and X-Forwarded-For (the entry the outermost proxy wrote, the
# OPTSITE_PROXIES-th from the right) for the client's address that the throttles go by.
OPTSITE_PROXIES = env_int("OPTSITE_PROXIES", 0, minimum=0, maximum=10)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if OPTSITE_PROXIES else None

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
    "csp",
    "axes",
    "runs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "runs.tokens.BearerTokenMiddleware",  # `Authorization: Bearer` on the JSON endpoints, without CSRF
    "optsite.login_required.LoginRequiredMiddleware",  # Django's, with a `next` that always fits
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last: turns a lockout into the login page that says when to try again (optsite/throttle.py)
    "axes.middleware.AxesMiddleware",
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
# "throttle" holds the sign-up counters: in the process in the default mode (one web process),
# in Redis for the scale-out, shared by every web process. "default" stays in each process.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"},
}
RATELIMIT_USE_CACHE = "throttle"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failed logins (django-axes, optsite/throttle.py): after OPTSITE_LOGIN_FAILURES failures within
# the cool-off, the address (and, by default, the account) is locked out for the cool-off, which
# each attempt meanwhile starts anew. Locking the account stops a guesser who changes addresses,
# at the price that such a guesser locks its owner out too: OPTSITE_LOGIN_LOCKOUT=address locks
# addresses only. Failures are forgotten a cool-off after the last one, not at a success, which
# would hand a guesser new tries whenever the owner logs in.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("OPTSITE_LOGIN_FAILURES", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("OPTSITE_LOGIN_COOLOFF", 900, minimum=1))
_LOCKOUT = {"address": ["ip_address"], "address,account": ["ip_address", "username"]}
try:
    AXES_LOCKOUT_PARAMETERS = _LOCKOUT[",".join(env_list("OPTSITE_LOGIN_LOCKOUT", ["address", "account"]))]
except KeyError:
    raise ImproperlyConfigured("OPTSITE_LOGIN_LOCKOUT must be 'address,account' or 'address'") from None
AXES_CLIENT_IP_CALLABLE = "optsite.throttle.client_address"
AXES_LOCKOUT_CALLABLE = "optsite.throttle.login_locked_out"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# Sign-ups (django-ratelimit on the cache): at most this many accounts per address per window.
OPTSITE_SIGNUPS_PER_ADDRESS = env_int("OPTSITE_SIGNUPS_PER_ADDRESS", 5, minimum=1)
OPTSITE_SIGNUP_WINDOW = env_int("OPTSITE_SIGNUP_WINDOW", 3600, minimum=1)
# Refused API tokens (runs/tokens.py, on the same cache): past this many from one address within
# the window, its token requests answer 429 until the window ends.
OPTSITE_TOKEN_FAILURES = env_int("OPTSITE_TOKEN_FAILURES", 20, minimum=1)
OPTSITE_TOKEN_WINDOW = env_int("OPTSITE_TOKEN_WINDOW", 900, minimum=1)

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
# L-BFGS-B's maxcor costs memory and checkpoint bytes with its square; any run's checkpoint
# (rewritten with every batch of steps) is held to OPTSITE_MAX_CHECKPOINT_BYTES.
OPTSITE_MAX_MAXCOR = env_int("OPTSITE_MAX_MAXCOR", 500, minimum=1)
OPTSITE_MAX_CHECKPOINT_BYTES = env_int("OPTSITE_MAX_CHECKPOINT_BYTES", 64 * 2 ** 20, minimum=2 ** 16)
OPTSITE_MAX_CONCURRENT_RUNS = env_int("OPTSITE_MAX_CONCURRENT_RUNS", 4, minimum=1)
# Active runs (queued, running, paused) of all users together: sign-ups cannot multiply the queue.
OPTSITE_MAX_ACTIVE_RUNS = env_int("OPTSITE_MAX_ACTIVE_RUNS", 100, minimum=1)
# Studies (runs/studies.py): runs one study makes, a user's studies with runs to go, and the study
# runs to go of all users together (their runs do not count against the caps above).
OPTSITE_MAX_STUDY_RUNS = env_int("OPTSITE_MAX_STUDY_RUNS", 200, minimum=1)
OPTSITE_MAX_ACTIVE_STUDIES = env_int("OPTSITE_MAX_ACTIVE_STUDIES", 2, minimum=1)
OPTSITE_MAX_ACTIVE_STUDY_RUNS = env_int("OPTSITE_MAX_ACTIVE_STUDY_RUNS", 2000, minimum=1)
# Bytes a WebSocket may have waiting for its client (runs/consumers.py): steps go out only while less
# than half of it waits (the rest are read from the database at the client's pace); a socket whose
# answers would pass it is dropped (close code 4429).
OPTSITE_SOCKET_BACKLOG = env_int("OPTSITE_SOCKET_BACKLOG", 8 * 1024 * 1024, minimum=2 * 1024 * 1024)
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

# Content-Security-Policy (django-csp): scripts, styles, fonts and connections only from the site
# itself, no inline script. Two exceptions, both for styles and neither able to run code:
# - style attributes ('unsafe-inline' in style-src-attr): KaTeX's HTML (katex.renderToString) is
#   markup full of style="height: …", and the templates give runs' colours and a few sizes so;
# - empty <style> elements (the hash of ""): Plotly creates one and fills it through the CSSOM
#   (insertRule), which the policy does not govern; any <style> with text in it is refused.
# Bootstrap's icons and Plotly's image export are data: URLs.
_EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", _EMPTY_STYLE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],  # the map's raster (maprender.js)
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Mail, for password reset. Without EMAIL_HOST it goes to the console, where no user can read
# it, so the pages then offer no password reset (OPTSITE_PASSWORD_RESET turns it on regardless).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "").strip()
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "").strip() or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "").strip() or "optsite <webmaster@localhost>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
OPTSITE_PASSWORD_RESET = env_bool("OPTSITE_PASSWORD_RESET", bool(EMAIL_HOST))

# Everything worth reading goes to the process's stderr, with DEBUG on or off: server errors with
# their tracebacks (django.request), daphne's and channels' own errors, failed logins (axes) and
# the runs' loggers. Django's default sends 500s with DEBUG off only to ADMINS by mail.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "refusal": {"()": "optsite.logformat.WithoutTraceback", "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
        "refusals": {"class": "logging.StreamHandler", "formatter": "refusal"},
    },
    # One handler, at the root: daphne's command line puts its own there, which would print
    # every line twice beside a handler of our own on each logger.
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "django": {"level": "WARNING"},  # without Django's own handlers (mail to ADMINS, DEBUG only)
        "django.request": {"level": "ERROR"},  # 4xx are answers in words, not faults
        # requests refused as suspicious: one line each, no traceback (they are answers, not faults)
        "django.security": {"handlers": ["refusals"], "level": "WARNING", "propagate": False},
        "daphne": {"level": "INFO"},  # where it listens
        "runs": {"level": os.environ.get("OPTSITE_LOG_LEVEL", "INFO")},
        # channels, axes (failed logins and lockouts) and the rest: warnings and errors, at the root
    },
}
