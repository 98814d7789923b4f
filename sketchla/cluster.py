"""Former home of the scheduler resolution, now :mod:`sketchla.executor`.

Kept only so that code written against ``sketchla.cluster`` keeps working
until it uses the top-level names (``sketchla.client_context``,
``sketchla.get_client``); nothing in sketchla imports it.
"""
from .executor import LOCAL_SCHEDULERS, client_context, get_client

__all__ = ["client_context", "get_client", "LOCAL_SCHEDULERS"]
