"""The HTTP server: an OpenAI-compatible chat API, a native API over the index and a web
UI, all answered from one open index (``reasonrag serve``)."""

from reasonrag.server.app import create_app
from reasonrag.server.security import check_bind

__all__ = ["check_bind", "create_app"]
