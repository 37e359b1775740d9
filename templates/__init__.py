"""Chat templates shipped with foxagent (the package ``foxagent.templates``)."""
