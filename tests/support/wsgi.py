"""Call a WSGI application the way gunicorn does, without a server."""

from __future__ import annotations

import io

from django.core import signals
from django.db import close_old_connections


def wsgi_call(app, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """Returns (status, headers, content). Like the test client, the request keeps the
    test's database connection (close_old_connections is off while it runs)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        **(headers or {}),
    }
    answer = {}

    def start_response(line, response_headers, exc_info=None):
        answer["status"], answer["headers"] = int(line.split()[0]), dict(response_headers)

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        content = b"".join(app(environ, start_response))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], content
