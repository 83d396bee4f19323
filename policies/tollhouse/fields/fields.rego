# Per-field obligations: minimisation, consent per category, separate consent for sensitive
# categories, de-identification where identity is not needed.
#
# Everything but agreement membership depends on a field's category only, so the rules are
# evaluated once per distinct category and then mapped onto the fields (a decision costs
# per category, not per field).
#
# Written for regorus' evaluator (the hot path of every decision): another package's rules
# and this package's rules are bound to local variables before a loop (a rule reference
# inside a comprehension is resolved again on every iteration); no function is called per
# field or per category; conditions are set algebra.
package tollhouse.fields

import data.tollhouse.agreement
import data.tollhouse.consent
import data.tollhouse.purpose

categories := data.taxonomy.categories

default dataset_fields := {}

dataset_fields := input.dataset.fields if is_object(input.dataset.fields)

dataset_categories := {category | some category in dataset_fields}

not_in_agreement := object.keys(dataset_fields) - agreement.fields

# Categories that drop every field of theirs, one set per rule.
unknown_categories := dataset_categories - object.keys(categories)

not_needed_categories := dataset_categories - purpose.needed

not_granted_categories := dataset_categories - consent.granted

default sensitive_blocked_categories := set()

sensitive_blocked_categories := sensitive_categories if not consent.sensitive_granted

sensitive_categories := found if {
	known := categories
	found := {category | some category in dataset_categories; known[category].sensitive == true}
}

default identity_dropped_categories := set()

identity_dropped_categories := found if {
	not purpose.identity_needed
	actions := deidentifications
	found := {category | some category in dataset_categories; actions[category] == "drop"}
}

blocked_categories := (((unknown_categories | not_needed_categories) | not_granted_categories) | sensitive_blocked_categories) | identity_dropped_categories

# A reason for each rule that drops some field (one comprehension: cheaper than a rule each).
reasons := {reason |
	some reason, dropped in {
		"category.unknown": unknown_categories,
		"minimisation.field_not_needed": not_needed_categories,
		"consent.category_not_granted": not_granted_categories,
		"sensitive.no_separate_consent": sensitive_blocked_categories,
		"minimisation.identity_not_needed": identity_dropped_categories,
		"minimisation.field_not_in_agreement": not_in_agreement,
	}
	count(dropped) > 0
}

# The de-identification a dataset category gets when the purpose does not need identity
# (none when it does; linkable categories stay in clear).
default deidentifications := {}

deidentifications := actions if {
	not purpose.identity_needed
	linkable := purpose.linkable
	known := categories
	actions := {category: known[category].when_identity_not_needed |
		some category in dataset_categories
		not category in linkable
	}
}

# Per dataset category: blocked ones drop; a kept one is de-identified if identity is not
# needed (unless its de-identification is keep), else encrypted to the recipient if
# sensitive, else kept as is.
category_obligations := result if {
	blocked := blocked_categories
	kept := dataset_categories - blocked
	deidentified := {category: action |
		some category, action in deidentifications
		action != "keep"
		category in kept
	}
	rest := kept - object.keys(deidentified)
	sensitive := rest & sensitive_categories
	dropped := {category: "drop" | some category in blocked}
	encrypted := {category: "encrypt_for_recipient" | some category in sensitive}
	unchanged := {category: "keep" | some category in rest - sensitive}
	result := object.union(object.union(deidentified, dropped), object.union(encrypted, unchanged))
}

# Each field gets its category's obligation, unless the agreement does not cover it.
obligations := result if {
	actions := category_obligations
	by_category := {name: actions[category] | some name, category in dataset_fields}
	result := object.union(by_category, {name: "drop" | some name in not_in_agreement})
}

# Some field leaves the hub in some form (stops at the first one found).
any_released if {
	some action in obligations
	action != "drop"
}
