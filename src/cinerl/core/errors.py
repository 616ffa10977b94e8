"""The two kinds of failure a user sees: their input is wrong (exit 2), or something is not here.

`Unavailable` is one family for "cannot run on this machine": a backend, a model's weights or
an LLM. Each carries a `kind` so the CLI and the report can say which, and the message says why
(the missing file, package or setting). Nothing ever fakes the missing thing.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user caused and can fix; the CLI prints the message and exits with code 2."""


class Unavailable(RuntimeError):
    """Something cannot run here (missing weights, package or server); the message says why."""

    kind = "unavailable"


class BackendUnavailable(Unavailable):
    """A video or image backend cannot run here."""

    kind = "backend"


class ModelUnavailable(Unavailable):
    """A model's weights or package are missing."""

    kind = "model"


class LLMUnavailable(Unavailable):
    """No LLM answered (server down, model missing)."""

    kind = "llm"
