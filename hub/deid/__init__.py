"""De-identification: identifier validation, transforms, and the Presidio egress guard.

Modules (import what you need; importing this package loads neither Presidio nor spaCy):

* :mod:`hub.deid.identifiers` - validators and canonical forms (VIN, PRC ID, plates, mobiles,
  cards, IBAN).
* :mod:`hub.deid.patterns` - validated finders for identifiers in English and Chinese free text.
* :mod:`hub.deid.transforms` - mask / generalize / suppress, and ``apply_transform``.
* :mod:`hub.deid.guard` - ``EgressGuard.scan_and_redact`` over Presidio, engines built lazily.
* :mod:`hub.deid.corpus` - a generated, labelled corpus for precision/recall measurements.
* :mod:`hub.deid.errors` - the typed errors.
"""
