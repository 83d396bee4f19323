"""Consent records and their lifecycle: the first gate of every release.

This package uses only the hub's shared storage base types (``hub.store.base``); it knows
nothing else of the hub. The hub asks it one question per page: what is each subject's consent
state for this recipient and purpose right now (:func:`consent.service.consent_states`).
"""
