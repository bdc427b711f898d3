"""Static files as served in production: content-hashed names, gzip and brotli copies.

`collectstatic` (run by `make serve` and by the test session) writes them to STATIC_ROOT; WhiteNoise
then serves each hashed file with a year-long, immutable cache and picks the compressed copy the
browser accepts. The pages' ES modules import each other by relative path, so those import
statements are rewritten to the hashed names too: a changed module changes every URL that leads to
it, and nothing stale is ever taken from a cache.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    # Every `import … from "./x.js"` is rewritten, comments included: a module whose comment shows
    # an import of itself never settles ("Max post-process passes exceeded").
    support_js_module_import_aggregation = True
    # A module worker's script, `new URL("./x.js", import.meta.url)`, is hashed like an import.
    patterns = CompressedManifestStaticFilesStorage.patterns + ((
        "*.js",
        ((r"""(?P<matched>new URL\(["'](?P<url>[./].*?)["'],\s*import\.meta\.url\))""",
          """new URL("%(url)s", import.meta.url)"""),),
    ),)


def collect_if_stale() -> bool:
    """Run collectstatic when a source file is newer than the manifest (tests and benchmarks call
    this before they start servers; `make serve` has the same rule). True if it collected."""
    from pathlib import Path

    from django.conf import settings
    from django.contrib.staticfiles import finders
    from django.core.management import call_command

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    built = manifest.stat().st_mtime if manifest.exists() else 0.0
    newest = max(
        (Path(storage.path(path)).stat().st_mtime for finder in finders.get_finders() for path, storage in finder.list([])),
        default=0.0,
    )
    if built >= newest:
        return False
    call_command("collectstatic", interactive=False, clear=True, verbosity=0)
    return True


if __name__ == "__main__":  # python -m optsite.staticstorage: what the benchmarks run before a server starts
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optsite.settings")
    django.setup()
    collect_if_stale()
