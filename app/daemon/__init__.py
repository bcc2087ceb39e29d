"""`letta-matrix-sync run`: the sync as a service (interval, webhook, health, metrics)."""
