"""Data-subject rights requests (issue 5): correction of a record's field, routed to the
partner that provides the record, and erasure of everything the hub holds about the consumer
(crypto-shredding). Each request keeps an append-only status history.

Public surface: :mod:`hub.rights.service` (the functions), :mod:`hub.rights.models` (the
tables), :mod:`hub.rights.schemas` (the partner API's shapes), :mod:`hub.rights.errors`.
"""
