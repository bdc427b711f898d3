from django.urls import path, re_path

from runs import consumers, external_socket

websocket_urlpatterns: list = [
    path("ws/runs/", consumers.LaunchConsumer.as_asgi()),
    # before the watch pattern, which would take "external" for a run id
    path("ws/runs/external/", external_socket.ExternalConsumer.as_asgi()),
    # any segment: the consumer says "not found" for one that names no run (abc, -1, 10^20)
    re_path(r"^ws/runs/(?P<run_id>[^/]+)/$", consumers.WatchConsumer.as_asgi()),
    re_path(r"", consumers.NoSuchSocket.as_asgi()),  # every other path: refused in words, never a 500
]
