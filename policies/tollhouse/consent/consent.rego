# The data subject's consent for (recipient, purpose): its state, categories and expiry,
# plus the separate consents for sensitive data and for cross-border transfer.
package tollhouse.consent

# The reason each known status other than active denies with.
status_reasons := {
	"missing": "consent.missing",
	"paused": "consent.paused",
	"withdrawn": "consent.withdrawn",
	"revoked": "consent.revoked",
	"expired": "consent.expired",
}

known_statuses := {"active", "paused", "withdrawn", "revoked", "expired", "missing"}

violations contains "consent.missing" if not is_object(input.consent)

violations contains status_reasons[input.consent.status]

violations contains "consent.status_unknown" if {
	is_object(input.consent)
	not input.consent.status in known_statuses
}

violations contains "consent.expired" if {
	data.tollhouse.lib.timestamps.now_ns >= expires_at_ns
}

# expires_at must be present: a timestamp, or null for a consent without an end date.
violations contains "consent.invalid_expiry" if {
	is_object(input.consent)
	not valid_expiry
}

# No violation above (the common case; release.rego computes `violations` only when this
# fails): active and not expired, without an end date or with a valid one.
clear if {
	input.consent.status == "active"
	input.consent.expires_at == null
}

clear if {
	input.consent.status == "active"
	data.tollhouse.lib.timestamps.now_ns < expires_at_ns
}

valid_expiry if input.consent.expires_at == null

valid_expiry if expires_at_ns

expires_at_ns := ns if {
	ns := input.times_ns[input.consent.expires_at]
	is_number(ns)
}

else := data.tollhouse.lib.timestamps.to_ns(input.consent.expires_at)

active if input.consent.status == "active"

default granted := set()

granted := listed if {
	active
	listed := {category | some category in input.consent.categories}
}

sensitive_granted if {
	active
	input.consent.sensitive == true
}

cross_border_granted if {
	active
	input.consent.cross_border == true
}
