# The release decision: allow only when no request-level rule objects and at least one
# field survives; otherwise every field is dropped. Deny by default.
package tollhouse.release

input_violations contains "input.invalid_now" if not data.tollhouse.lib.timestamps.now_ns

input_violations contains "dataset.no_fields" if count(data.tollhouse.fields.dataset_fields) == 0

# Rules are evaluated on demand (every cross-package reference is a full `data.` path: regorus
# evaluates a whole module when it is reached through an import alias), so the common case
# costs only the cheap `clear` checks: each is true only when its package has no violation
# (tests/policy/test_fast_path.py), and the violation sets are computed only when one of them
# fails.
request_violations := set() if {
	data.tollhouse.lib.timestamps.now_ns
	count(data.tollhouse.fields.dataset_fields) > 0
	data.tollhouse.agreement.clear
	data.tollhouse.consent.clear
	data.tollhouse.purpose.clear
	data.tollhouse.cross_border.clear
}

else := violations if {
	# A string where a list belongs (agreement.fields, consent.categories) is an evaluation
	# error on regorus whatever else the request fails on, as when every rule ran each time.
	data.tollhouse.agreement.fields
	data.tollhouse.consent.granted
	violations := (((input_violations | data.tollhouse.agreement.violations) | data.tollhouse.consent.violations) | data.tollhouse.purpose.violations) | data.tollhouse.cross_border.violations
}

# A denied request reports why it was denied; field-level reasons (which follow from the
# denial, e.g. no category is granted by a withdrawn consent) only when the request passed.
reasons := sort(request_violations) if count(request_violations) > 0
else := sort(data.tollhouse.fields.reasons) if data.tollhouse.fields.any_released
else := sort(data.tollhouse.fields.reasons | {"release.nothing_released"})

default allow := false

allow if {
	count(request_violations) == 0
	data.tollhouse.fields.any_released
}

# Allowed: the fields' obligations; denied: every field dropped. (One rule for both answers,
# not an `obligations` rule besides: each rule evaluated costs ~2 us in regorus.)
decision := {"allow": true, "obligations": data.tollhouse.fields.obligations, "reasons": reasons} if allow

else := {"allow": false, "obligations": all_dropped, "reasons": reasons}

# (A comprehension in the head of a rule with a body trips regorus' scheduler: keep it apart.)
all_dropped := {name: "drop" | some name, _ in data.tollhouse.fields.dataset_fields}
