"""Stock tools shipped with foxagent."""
