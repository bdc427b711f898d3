"""ASGI entry point: HTTP through Django, WebSockets through Channels with the session's user, or
a token's (runs/tokens.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optsite.settings")
# Set up Django (apps, models) before anything imports a consumer.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from optsite.origins import OriginValidator  # noqa: E402
from runs import dispatch, monitor  # noqa: E402
from runs.routing import websocket_urlpatterns  # noqa: E402
from runs.tokens import TokenSocketMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Scheme, host and port of the page's origin, not only its host (optsite/origins.py);
        # a handshake with a token is its owner's, whatever the session says.
        "websocket": OriginValidator(AuthMiddlewareStack(TokenSocketMiddleware(URLRouter(websocket_urlpatterns)))),
    }
)

# The worker pool (default mode) gets ready before the first run comes; the monitor resumes what
# the last server left and sweeps runs whose worker's lease expired.
dispatch.start()
monitor.start()
