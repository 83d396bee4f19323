# For POST /v1/decisions/explain: the decision plus why each field got its obligation and
# the purpose's fair-use caps. A package of its own, so the decision path never computes it
# (regorus evaluates a whole module when another package refers to one of its rules).
package tollhouse.explain

import data.tollhouse.fields
import data.tollhouse.purpose
import data.tollhouse.release

explanation := {
	"decision": release.decision,
	"field_reasons": reasons_by_field,
	"fair_use": fair_use,
}

default fair_use := null

fair_use := purpose.definition.fair_use

# [category, reason] pairs.
category_violations := {[category, reason] |
	some reason, blocked in fields.category_reasons
	some category in blocked
}

not_in_agreement := fields.not_in_agreement

reasons_by_field := {name: field_reasons(name, category) | some name, category in fields.dataset_fields}

field_reasons(name, category) := sort(array.concat(
	[violation[1] | some violation in category_violations; violation[0] == category],
	[reason | name in not_in_agreement; reason := "minimisation.field_not_in_agreement"],
))
