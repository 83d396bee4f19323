"""Imports every model module so that ``Base.metadata`` describes the whole database."""

from __future__ import annotations

import consent.models
import hub.audit.models
import hub.auth.models
import hub.crypto.models
import hub.portal.models
import hub.ratelimit.models
import hub.records.models
import hub.registry.models
import hub.regulator.models
import hub.rights.models
from hub.store.base import Base

MODEL_MODULES = (
    consent.models,
    hub.audit.models,
    hub.auth.models,
    hub.crypto.models,
    hub.portal.models,
    hub.ratelimit.models,
    hub.records.models,
    hub.registry.models,
    hub.regulator.models,
    hub.rights.models,
)

metadata = Base.metadata
