"""Static files: hashed names, a long immutable cache, compressed copies, modules that import hashed names."""

import re

import pytest

pytestmark = pytest.mark.django_db

PAGES = ["/runs/", "/runs/new/", "/accounts/login/"]
STATIC_URL = re.compile(r'(?:src|href)="(/static/[^"]+)"')
HASHED = re.compile(r"\.[0-9a-f]{12}\.(?:js|css|svg)$")


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def static_urls(client, page: str) -> list[str]:
    html = client.get(page).content.decode()
    return STATIC_URL.findall(html)


def test_pages_link_hashed_names_only(alice_client):
    for page in PAGES:
        urls = static_urls(alice_client, page)
        assert urls, page
        for url in urls:
            assert HASHED.search(url), f"{page} links {url} without a content hash"
            assert alice_client.get(url).status_code == 200, url


def test_hashed_files_are_cached_for_good_and_served_compressed(alice_client):
    plotly = next(u for u in static_urls(alice_client, "/runs/new/") if "plotly" in u)
    plain = alice_client.get(plotly)
    raw = body(plain)
    assert len(raw) > 1_000_000
    assert "immutable" in plain["Cache-Control"] and "max-age=315360000" in plain["Cache-Control"]
    for encoding in ("br", "gzip"):
        packed = alice_client.get(plotly, HTTP_ACCEPT_ENCODING=encoding)
        assert packed["Content-Encoding"] == encoding
        assert len(body(packed)) < len(raw) / 3, encoding
        assert "Accept-Encoding" in packed["Vary"]


def test_modules_import_each_other_by_hashed_name(alice_client):
    """A changed module changes the URL of every module that imports it, so no stale copy is used."""
    seen, todo = set(), [u for u in static_urls(alice_client, "/runs/new/") if u.endswith(".js") and "/runs/" in u]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        text = body(alice_client.get(url)).decode()
        for target in re.findall(r'from\s+"(\./[^"]+)"', text):
            assert HASHED.search(target), f"{url} imports {target} by its plain name"
            todo.append(url.rsplit("/", 1)[0] + "/" + target[2:])
    assert len(seen) >= 4  # new.js, the run view, plots, api, format …
    for url in seen:
        assert alice_client.get(url).status_code == 200, url
