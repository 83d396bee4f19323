# The data subject's consent for (recipient, purpose): its state, categories and expiry,
# plus the separate consents for sensitive data and for cross-border transfer.
package tollhouse.consent

import data.tollhouse.lib.timestamps

known_statuses := {"active", "paused", "withdrawn", "revoked", "expired", "missing"}

violations contains "consent.missing" if not is_object(input.consent)

violations contains "consent.missing" if input.consent.status == "missing"

violations contains "consent.paused" if input.consent.status == "paused"

violations contains "consent.withdrawn" if input.consent.status == "withdrawn"

violations contains "consent.revoked" if input.consent.status == "revoked"

violations contains "consent.expired" if input.consent.status == "expired"

violations contains "consent.status_unknown" if {
	is_object(input.consent)
	not input.consent.status in known_statuses
}

violations contains "consent.expired" if {
	timestamps.now_ns >= expires_at_ns
}

# expires_at must be present: a timestamp, or null for a consent without an end date.
violations contains "consent.invalid_expiry" if {
	is_object(input.consent)
	not valid_expiry
}

valid_expiry if input.consent.expires_at == null

valid_expiry if expires_at_ns

expires_at_ns := data.tollhouse.lib.timestamps.to_ns(input.consent.expires_at)

active if input.consent.status == "active"

default granted := set()

granted := listed_categories if active

listed_categories := {category | some category in input.consent.categories}

sensitive_granted if {
	active
	input.consent.sensitive == true
}

cross_border_granted if {
	active
	input.consent.cross_border == true
}
