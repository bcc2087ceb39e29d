"""A throwaway real Synapse on 127.0.0.1 (needs the ``[contract]`` extra: matrix-synapse).

- ``server``: :class:`SynapseServer`, which generates a config, starts and stops Synapse and
  offers a few admin reads;
- ``config``: the rewrite of Synapse's generated ``homeserver.yaml`` into a test config.
"""

from app.testing.synapse.server import (
    SynapseError,
    SynapseServer,
    free_port,
    synapse_available,
    synapse_python,
)

__all__ = ["SynapseError", "SynapseServer", "free_port", "synapse_available", "synapse_python"]
