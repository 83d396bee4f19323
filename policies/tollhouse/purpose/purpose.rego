# Purpose limitation: a known purpose, declared by a role allowed to declare it,
# within the purpose's fair-use caps.
package tollhouse.purpose

definition := data.taxonomy.purposes[input.purpose]

violations contains "purpose.unknown" if not definition

violations contains "role.unknown" if not input.partner.role in data.taxonomy.roles

violations contains "purpose.not_allowed_for_role" if {
	definition
	not input.partner.role in definition.roles
}

# The fair-use duration cap bounds a consent (agreements between businesses run longer).
# The consent service refuses such consents at grant time; this is the second line.
violations contains "purpose.duration_exceeded" if duration_exceeded

duration_exceeded if {
	starts_at_ns := data.tollhouse.lib.timestamps.to_ns(input.consent.starts_at)
	span := data.tollhouse.consent.expires_at_ns - starts_at_ns
	span > definition.fair_use.max_duration_days * data.tollhouse.lib.timestamps.ns_per_day
}

# Optional request facts, given by the caller when it knows them.
violations contains "fair_use.fetches_exceeded" if {
	input.request.fetches_today >= definition.fair_use.fetches_per_day
}

violations contains "fair_use.data_range_exceeded" if {
	input.request.data_range_days > definition.fair_use.max_data_range_days
}

# No violation above (the common case; release.rego computes `violations` only when this
# fails).
clear if {
	definition
	input.partner.role in data.taxonomy.roles
	input.partner.role in definition.roles
	not duration_exceeded
	not input.request.fetches_today >= definition.fair_use.fetches_per_day
	not input.request.data_range_days > definition.fair_use.max_data_range_days
}

identity_needed if definition.identity_needed == true

# Identifier categories the recipient may see in clear even when identity is not needed
# (the lender's own collateral is found by VIN).
default linkable := set()

linkable := {category | some category in definition.linkable_categories}
