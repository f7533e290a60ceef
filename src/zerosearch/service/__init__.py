"""The HTTP search service: any zerosearch engine behind Search-R1's ``/retrieve`` interface.

``create_app(engine, settings)`` builds the FastAPI app; ``zerosearch serve`` runs it. Modules: ``settings``
(limits, token, batching), ``schemas`` (request/response JSON), ``core`` (limits, cache, noise), ``batcher``
(micro-batching), ``metrics`` (prometheus_client registry), ``readiness`` (the /ready probe of the backend),
``server`` (uvicorn in the foreground or a thread).
Importing this package pulls in FastAPI, so the CLI imports it inside its command.
"""

from zerosearch.service.app import create_app
from zerosearch.service.server import ServerThread, run_server
from zerosearch.service.settings import ServiceSettings

__all__ = ["ServerThread", "ServiceSettings", "create_app", "run_server"]
