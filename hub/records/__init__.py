"""Data subjects and the records providers publish about them (encrypted at rest)."""
