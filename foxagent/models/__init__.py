"""Model backends: one module per way of reaching FoxBrain."""

from foxagent.models._base import Model

__all__ = ["Model"]
