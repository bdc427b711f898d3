from django.urls import path

from runs import consumers

websocket_urlpatterns: list = [
    path("ws/runs/", consumers.LaunchConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", consumers.WatchConsumer.as_asgi()),
]
