# Per-field obligations: minimisation, consent per category, separate consent for sensitive
# categories, de-identification where identity is not needed.
#
# Everything but agreement membership depends on a field's category only, so the rules are
# evaluated once per distinct category and then mapped onto the fields (a decision costs
# per category, not per field).
#
# Written for regorus' evaluator (the hot path of every decision): another package's rules
# are referred to by full path (through an import alias regorus evaluates the whole module)
# and, like this package's rules, bound to local variables before a loop (a rule reference
# inside a comprehension is resolved again on every iteration); no function is called per
# field or per category; conditions are set algebra.
package tollhouse.fields

default dataset_fields := {}

dataset_fields := input.dataset.fields if is_object(input.dataset.fields)

dataset_categories := {category | some category in dataset_fields}

# The agreement's fields and (below) the purpose's categories as sets, written out rather than
# referring to agreement.fields or a rule of purpose: each rule evaluated costs ~2 us.
not_in_agreement := object.keys(dataset_fields) - {field | some field in input.agreement.fields}

# The categories each field-level rule drops (every field of theirs), by reason id: one
# rule, cheaper than a rule per reason.
category_reasons := {
	"category.unknown": dataset_categories - object.keys(data.taxonomy.categories),
	"minimisation.field_not_needed": dataset_categories - {category | some category in data.tollhouse.purpose.definition.categories},
	"consent.category_not_granted": dataset_categories - data.tollhouse.consent.granted,
	"sensitive.no_separate_consent": sensitive_blocked_categories,
	"minimisation.identity_not_needed": identity_dropped_categories,
}

unknown_categories := category_reasons["category.unknown"]

not_needed_categories := category_reasons["minimisation.field_not_needed"]

not_granted_categories := category_reasons["consent.category_not_granted"]

default sensitive_blocked_categories := set()

sensitive_blocked_categories := sensitive_categories if not data.tollhouse.consent.sensitive_granted

sensitive_categories := found if {
	known := data.taxonomy.categories
	found := {category | some category in dataset_categories; known[category].sensitive == true}
}

default identity_dropped_categories := set()

identity_dropped_categories := found if {
	not data.tollhouse.purpose.identity_needed
	actions := deidentifications
	found := {category | some category in dataset_categories; actions[category] == "drop"}
}

# A reason for each rule that drops some field.
reasons := by_category | by_agreement if {
	by_category := {reason | some reason, dropped in category_reasons; count(dropped) > 0}
	by_agreement := {reason | count(not_in_agreement) > 0; reason := "minimisation.field_not_in_agreement"}
}

# The de-identification a dataset category gets when the purpose does not need identity
# (none when it does; linkable categories stay in clear).
default deidentifications := {}

deidentifications := actions if {
	not data.tollhouse.purpose.identity_needed
	linkable := data.tollhouse.purpose.linkable
	known := data.taxonomy.categories
	actions := {category: known[category].when_identity_not_needed |
		some category in dataset_categories
		not category in linkable
	}
}

# Per dataset category: blocked ones drop; a kept one is de-identified if identity is not
# needed (unless its de-identification is keep), else encrypted to the recipient if
# sensitive, else kept as is.
category_obligations := result if {
	blocked := union({dropped | some dropped in category_reasons})
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
	result := object.union_n([deidentified, dropped, encrypted, unchanged])
}

# Each field gets its category's obligation, unless the agreement does not cover it (a field
# costs ~11 k instructions in this comprehension).
obligations := result if {
	actions := category_obligations
	by_category := {name: actions[category] | some name, category in object.remove(dataset_fields, not_in_agreement)}
	result := object.union(by_category, {name: "drop" | some name in not_in_agreement})
}

# Some field leaves the hub in some form (stops at the first one found): a field the
# agreement covers whose category is not dropped, as in `obligations`, without building it.
any_released if {
	actions := category_obligations
	excluded := not_in_agreement
	some name, category in dataset_fields
	not name in excluded
	actions[category] != "drop"
}
