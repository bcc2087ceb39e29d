"""Who the library acts as on the homeserver."""
