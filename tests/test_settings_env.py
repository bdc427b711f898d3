"""Settings from the environment are parsed strictly: a typo fails loudly at start-up."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from optsite.env import env_bool, env_int, env_list


@pytest.mark.parametrize("raw, expected", [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                           ("0", False), ("false", False), ("No", False), ("", False)])
def test_booleans_accept_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("OPTSITE_FLAG", raw)
    assert env_bool("OPTSITE_FLAG", not expected) is expected


def test_a_boolean_typo_is_refused_with_its_name(monkeypatch):
    monkeypatch.setenv("DEBUG", "treu")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='treu' is not a boolean"):
        env_bool("DEBUG", False)


def test_unset_values_take_the_default(monkeypatch):
    monkeypatch.delenv("OPTSITE_UNSET", raising=False)
    assert env_bool("OPTSITE_UNSET", True) is True
    assert env_int("OPTSITE_UNSET", 7) == 7
    assert env_list("OPTSITE_UNSET", ["a"]) == ["a"]


def test_integers_are_checked_for_form_and_minimum(monkeypatch):
    monkeypatch.setenv("OPTSITE_N", " 12 ")
    assert env_int("OPTSITE_N", 1) == 12
    monkeypatch.setenv("OPTSITE_N", "1e3")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env_int("OPTSITE_N", 1)
    monkeypatch.setenv("OPTSITE_N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("OPTSITE_N", 5, minimum=1)
    monkeypatch.setenv("OPTSITE_N", "20")
    with pytest.raises(ImproperlyConfigured, match="at most 19"):
        env_int("OPTSITE_N", 10, maximum=19)


def test_host_lists_are_comma_separated_and_trimmed(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "example.org, lab.local ,,")
    assert env_list("ALLOWED_HOSTS", []) == ["example.org", "lab.local"]


def _settings_in_subprocess(env: dict, expr: str) -> str:
    """Evaluate `expr` against freshly loaded settings with `env` set, as a new server would."""
    import os
    import subprocess
    import sys

    code = f"import django; django.setup(); from django.conf import settings; print({expr})"
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "optsite.settings", **env}
    out = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_database_url_and_redis_url_select_the_backends():
    env = {"DATABASE_URL": "postgres://u:p@127.0.0.1:5432/optsite", "REDIS_URL": "redis://127.0.0.1:6390/0"}
    expr = "settings.DATABASES['default']['ENGINE'], settings.CHANNEL_LAYERS['default']['BACKEND']"
    assert _settings_in_subprocess(env, expr) == (
        "django.db.backends.postgresql channels_redis.core.RedisChannelLayer"
    )


def test_defaults_are_sqlite_in_the_project_root_and_the_in_memory_layer():
    expr = "settings.DATABASES['default']['NAME'], settings.CHANNEL_LAYERS['default']['BACKEND']"
    out = _settings_in_subprocess({"DATABASE_URL": "", "REDIS_URL": ""}, expr)
    assert "db.sqlite3" in out and "channels.layers.InMemoryChannelLayer" in out


SECURE_SITE = {"DEBUG": "0", "OPTSITE_PUBLIC_URL": "https://optsite.example.org",
               "SECRET_KEY": "a-long-random-production-key-0123456789-abcdefghijklmnopqrstuvwxyz"}


def _check_deploy(env: dict) -> str:
    import os
    import subprocess
    import sys

    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "optsite.settings", **env}
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], env=full_env, capture_output=True,
                          text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_a_site_served_over_https_passes_check_deploy_without_a_warning():
    out = _check_deploy({**SECURE_SITE, "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1", "SECURE_HSTS_PRELOAD": "1"})
    assert "System check identified no issues" in out, out


def test_https_turns_on_redirect_hsts_and_secure_cookies_by_itself():
    expr = ("settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE, "
            "settings.CSRF_COOKIE_SECURE, settings.ALLOWED_HOSTS, settings.CSRF_TRUSTED_ORIGINS, "
            "settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD")
    assert _settings_in_subprocess(SECURE_SITE, expr) == (
        "True 31536000 True True ['optsite.example.org'] ['https://optsite.example.org'] False False")
    # what binds more than this site stays the deployer's choice: the check says so
    out = _check_deploy(SECURE_SITE)
    assert "security.W005" in out and "security.W021" in out
    assert not any(f"security.W0{n}" in out for n in ("04", "08", "12", "16"))


def test_each_https_setting_can_be_set_alone():
    env = {**SECURE_SITE, "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "60", "SESSION_COOKIE_SECURE": "no"}
    expr = "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE"
    assert _settings_in_subprocess(env, expr) == "False 60 False True"


def test_plain_http_and_debug_keep_https_off():
    expr = "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE"
    assert _settings_in_subprocess({"OPTSITE_PUBLIC_URL": "http://lab.local:8000", "DEBUG": "0"}, expr) == "False 0 False"
    assert _settings_in_subprocess({**SECURE_SITE, "DEBUG": "1"}, expr) == "False 0 False"


def test_the_proxy_header_is_believed_only_behind_a_configured_proxy():
    expr = "settings.SECURE_PROXY_SSL_HEADER"
    assert _settings_in_subprocess({"OPTSITE_PROXIES": ""}, expr) == "None"
    assert _settings_in_subprocess({"OPTSITE_PROXIES": "1"}, expr) == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_a_malformed_origin_stops_the_start():
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "optsite.settings", "OPTSITE_PUBLIC_URL": "optsite.example.org"}
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "OPTSITE_PUBLIC_URL: 'optsite.example.org' is not an origin such as https://optsite.example.org" in done.stderr
