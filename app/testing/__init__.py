"""Test kit for code that uses this library: fake servers, a sync harness and pytest fixtures."""
