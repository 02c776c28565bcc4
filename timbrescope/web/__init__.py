"""``timbrescope serve``: the page and the HTTP API over one ``Recognizer`` (FastAPI + uvicorn).

- ``web.app``      ``create_app(ServeSettings)``: routes, upload limit, JSON errors; ``serve``: uvicorn on a bound socket
- ``web.jobs``     ``JobQueue``: a fixed pool of inference threads behind a bounded queue
- ``web.library``  ``Library``: a served folder, every request path confined to its root
- ``web.static``   the page (HTML, CSS, JavaScript; no CDN)
"""

from timbrescope.web.app import ServeSettings, create_app, serve

__all__ = ["ServeSettings", "create_app", "serve"]
