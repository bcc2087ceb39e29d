"""Sync orchestration: per-agent steps and the `SyncService` that runs them."""
