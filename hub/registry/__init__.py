"""Partners, their OAuth clients and keys, datasets and data-sharing agreements.

Public surface (``hub.registry.service``): partner registration, secret rotation with a grace
period, keys by JWKS document or URL (``jwks.JwksFetcher``, SSRF-guarded by ``netguard``),
suspension; dataset declaration with JSON Schema and additive versions; agreement proposal
(checked by the policies), acceptance, rejection, suspension, resumption, termination, expiry,
deletion attestation, each transition an append-only history row; ``ensure_in_force`` for the
release pipeline. ``cli`` is ``tollhouse partners``.
"""
