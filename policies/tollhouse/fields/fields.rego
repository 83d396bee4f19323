# Per-field obligations: minimisation, consent per category, separate consent for sensitive
# categories, de-identification where identity is not needed.
#
# Everything but agreement membership depends on a field's category only, so the rules are
# evaluated once per distinct category and then mapped onto the fields (a decision costs
# per category, not per field).
package tollhouse.fields

import data.tollhouse.agreement
import data.tollhouse.consent
import data.tollhouse.purpose

categories := data.taxonomy.categories

default dataset_fields := {}

dataset_fields := input.dataset.fields if is_object(input.dataset.fields)

dataset_categories := {category | some category in dataset_fields}

not_in_agreement := object.keys(dataset_fields) - agreement.fields

# Other packages' values bound once here: regorus re-resolves cross-package references
# inside loops.
needed := purpose.needed

granted := consent.granted

sensitive_granted := consent.sensitive_granted

identity_needed := purpose.identity_needed

linkable := purpose.linkable

# Categories that drop every field of theirs, one set per rule (set algebra, not loops:
# this is the hot path of every decision).
unknown_categories := dataset_categories - object.keys(categories)

not_needed_categories := dataset_categories - needed

not_granted_categories := dataset_categories - granted

default sensitive_blocked_categories := set()

sensitive_blocked_categories := sensitive_categories if not sensitive_granted

sensitive_categories := {category | some category in dataset_categories; categories[category].sensitive == true}

default identity_dropped_categories := set()

identity_dropped_categories := deidentified_drops if not identity_needed

deidentified_drops := {category | some category in dataset_categories; deidentification(category) == "drop"}

blocked_categories := (((unknown_categories | not_needed_categories) | not_granted_categories) | sensitive_blocked_categories) | identity_dropped_categories

reasons contains "category.unknown" if count(unknown_categories) > 0

reasons contains "minimisation.field_not_needed" if count(not_needed_categories) > 0

reasons contains "consent.category_not_granted" if count(not_granted_categories) > 0

reasons contains "sensitive.no_separate_consent" if count(sensitive_blocked_categories) > 0

reasons contains "minimisation.identity_not_needed" if count(identity_dropped_categories) > 0

reasons contains "minimisation.field_not_in_agreement" if count(not_in_agreement) > 0

# The de-identification a category gets when the purpose does not need identity.
deidentification(category) := action if {
	not identity_needed
	not category in linkable
	action := categories[category].when_identity_not_needed
}

# A kept field's transform: de-identify if identity is not needed, else encrypt sensitive
# categories to the recipient, else keep as is.
transform(category) := action if {
	action := deidentification(category)
	action != "keep"
} else := "encrypt_for_recipient" if {
	categories[category].sensitive == true
} else := "keep"

category_obligations := object.union(
	{category: "drop" | some category in blocked_categories},
	{category: transform(category) | some category in dataset_categories - blocked_categories},
)

by_category := {name: category_obligations[category] | some name, category in dataset_fields}

obligations := object.union(by_category, {name: "drop" | some name in not_in_agreement})

# Some field leaves the hub in some form.
any_released if count({action | some action in obligations} - {"drop"}) > 0
