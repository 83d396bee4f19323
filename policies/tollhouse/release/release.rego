# The release decision: allow only when no request-level rule objects and at least one
# field survives; otherwise every field is dropped. Deny by default.
package tollhouse.release

import data.tollhouse.agreement
import data.tollhouse.consent
import data.tollhouse.cross_border
import data.tollhouse.fields
import data.tollhouse.lib.timestamps
import data.tollhouse.purpose

input_violations contains "input.invalid_now" if not timestamps.now_ns

input_violations contains "dataset.no_fields" if count(fields.dataset_fields) == 0

request_violations := (((input_violations | agreement.violations) | consent.violations) | purpose.violations) | cross_border.violations

nothing_released contains "release.nothing_released" if {
	count(fields.dataset_fields) > 0
	not fields.any_released
}

default allow := false

allow if {
	count(request_violations) == 0
	fields.any_released
}

# A denied request reports why it was denied; field-level reasons (which follow from the
# denial, e.g. no category is granted by a withdrawn consent) only when the request passed.
reasons := sort(request_violations) if count(request_violations) > 0
else := sort(fields.reasons | nothing_released)

obligations := fields.obligations if allow
else := all_dropped

# (A comprehension in the head of a rule with a body trips regorus' scheduler: keep it apart.)
all_dropped := {name: "drop" | some name, _ in fields.dataset_fields}

decision := {
	"allow": allow,
	"obligations": obligations,
	"reasons": reasons,
}
