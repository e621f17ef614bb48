"""Fan-out across gateway instances: per-session event streams, call leases, presence, commands."""
