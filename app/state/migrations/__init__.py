"""Versioned PostgreSQL schema: each migration is applied once, in order, at start.

A migration is never edited once released: a change is a new, higher version. The applied
versions are rows of `letta_matrix_sync_schema`; a database holding a version this code does
not know was upgraded by a newer release, and is refused rather than written with old rules.
"""

from __future__ import annotations

SCHEMA_TABLE = "letta_matrix_sync_schema"

BOOTSTRAP = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# The records are kept as `json` (not `jsonb`): it stores the text as written, so keys keep
# their order; `seq` keeps the order records were first saved in. A round trip through the
# database gives back the same files.
_V1 = """
CREATE TABLE letta_matrix_sync_mappings (
    agent_id text PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    data json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE letta_matrix_sync_tokens (
    user_id text PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    access_token text NOT NULL,
    device_id text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE letta_matrix_sync_space (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    data json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

# The replicas' lease: `token` is the fencing token, raised by every replica that becomes
# leader; a store write commits only while the token it was opened with is still current.
_V2 = """
CREATE TABLE letta_matrix_sync_lease (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    token bigint NOT NULL,
    holder text,
    acquired_at timestamptz
);
INSERT INTO letta_matrix_sync_lease (singleton, token) VALUES (true, 0)
"""

# The homeserver view (`app.matrix.view`): a cache of what the admin's /sync said, and the
# token it has moved on to since it was written (see `Store.save_view_token`).
_V3 = """
CREATE TABLE letta_matrix_sync_view (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    data json NOT NULL,
    position json,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

# The leader's heartbeat: renewed on every look at the lease, on the database's clock. A
# leader that stops renewing (paused, hung, frozen with its session still open) is replaced
# once it is older than the lease's time to live.
# Its time to live is the leader's own, written when it takes the lease: every standby judges
# the heartbeat by the same measure, whatever its own setting.
_V4 = """
ALTER TABLE letta_matrix_sync_lease
    ADD COLUMN renewed_at timestamptz,
    ADD COLUMN ttl_seconds double precision
"""

MIGRATIONS: tuple[tuple[int, str], ...] = ((1, _V1), (2, _V2), (3, _V3), (4, _V4))
LATEST = MIGRATIONS[-1][0]
