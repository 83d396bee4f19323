package tollhouse.fields_test

import data.tollhouse.fields
import data.tollhouse.testing

test_all_fields_released_when_everything_allows if {
	fields.obligations == {
		"name": "keep",
		"vin": "keep",
		"income": "keep",
		"card": "encrypt_for_recipient",
		"id_number": "encrypt_for_recipient",
	} with input as testing.base_input
	count(data.tollhouse.explain.category_violations) == 0 with input as testing.base_input
	count(fields.reasons) == 0 with input as testing.base_input
}

test_unknown_category_is_dropped if {
	inp := data.tollhouse.testing.with_fields(
		data.tollhouse.testing.with_input({"agreement": {"fields": ["face"]}, "consent": {"categories": ["faceprint"]}}),
		{"face": "faceprint"},
	)
	fields.obligations.face == "drop" with input as inp
	["faceprint", "category.unknown"] in data.tollhouse.explain.category_violations with input as inp
}

test_non_string_category_is_unknown if {
	inp := data.tollhouse.testing.with_input({"dataset": {"fields": {"odd": 7}}})
	[7, "category.unknown"] in data.tollhouse.explain.category_violations with input as inp
}

test_field_not_in_agreement if {
	inp := data.tollhouse.testing.with_input({"agreement": {"fields": ["name"]}})
	fields.obligations.vin == "drop" with input as inp
	"vin" in fields.not_in_agreement with input as inp
	"minimisation.field_not_in_agreement" in fields.reasons with input as inp
	fields.obligations.name == "keep" with input as inp
}

test_agreement_without_fields_drops_all if {
	inp := json.remove(testing.base_input, ["agreement/fields"])
	result := fields.obligations with input as inp
	count(result) == 5
	every _, action in result {
		action == "drop"
	}
}

test_field_not_needed_for_purpose if {
	inp := data.tollhouse.testing.with_fields(
		data.tollhouse.testing.with_input({"agreement": {"fields": ["trips"]}, "consent": {"categories": ["driving_behaviour"]}}),
		{"trips": "driving_behaviour"},
	)
	fields.obligations.trips == "drop" with input as inp
	data.tollhouse.explain.category_violations == {["driving_behaviour", "minimisation.field_not_needed"]} with input as inp
}

test_category_not_consented if {
	inp := data.tollhouse.testing.with_input({"consent": {"categories": ["identity"]}})
	fields.obligations == {
		"name": "keep",
		"vin": "drop",
		"income": "drop",
		"card": "drop",
		"id_number": "drop",
	} with input as inp
	["income", "consent.category_not_granted"] in data.tollhouse.explain.category_violations with input as inp
}

test_consent_not_active_grants_no_category if {
	inp := data.tollhouse.testing.with_input({"consent": {"status": "paused"}})
	result := fields.obligations with input as inp
	count(result) == 5
	every _, action in result {
		action == "drop"
	}
}

test_sensitive_without_separate_consent if {
	inp := data.tollhouse.testing.with_input({"consent": {"sensitive": false}})
	fields.obligations.card == "drop" with input as inp
	fields.obligations.id_number == "drop" with input as inp
	fields.obligations.name == "keep" with input as inp
	["financial_account", "sensitive.no_separate_consent"] in data.tollhouse.explain.category_violations with input as inp
	["identity_document", "sensitive.no_separate_consent"] in data.tollhouse.explain.category_violations with input as inp
}

test_identity_not_needed_deidentifies if {
	fields.obligations == {
		"vin": "keep",
		"gps": "generalize",
		"score": "keep",
		"city": "keep",
		"model": "keep",
	} with input as testing.ubi_input
}

test_identity_not_needed_mapping if {
	inp := data.tollhouse.testing.with_fields(
		data.tollhouse.testing.with_input({
			"partner": {"role": "regulator"},
			"purpose": "regulatory_reporting",
			"agreement": {"purpose": "regulatory_reporting", "fields": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]},
			"consent": {"categories": ["identity", "identity_document", "vehicle_identifier", "financial_account", "contact", "free_text", "location_precise", "income", "biometric", "loan"]},
		}),
		{
			"a": "identity", "b": "identity_document", "c": "vehicle_identifier", "d": "financial_account",
			"e": "contact", "f": "free_text", "g": "location_precise", "h": "income", "i": "biometric", "j": "loan",
		},
	)
	fields.deidentifications == {
		"identity": "pseudonymize",
		"identity_document": "pseudonymize",
		"vehicle_identifier": "pseudonymize",
		"financial_account": "pseudonymize",
		"contact": "mask",
		"free_text": "mask",
		"location_precise": "generalize",
		"income": "generalize",
		"biometric": "drop",
		"loan": "keep",
	} with input as inp
	fields.category_obligations.loan == "keep" with input as inp
	fields.category_obligations.identity == "drop" with input as inp
}

test_no_deidentification_when_identity_needed if {
	fields.deidentifications == {} with input as testing.base_input
	fields.category_obligations.identity == "keep" with input as testing.base_input
	fields.category_obligations.financial_account == "encrypt_for_recipient" with input as testing.base_input
}

test_linkable_identifier_stays_in_clear if {
	not fields.deidentifications.vehicle_identifier with input as testing.ubi_input
	fields.deidentifications.location_precise == "generalize" with input as testing.ubi_input
	fields.category_obligations.vehicle_identifier == "keep" with input as testing.ubi_input
}

test_biometric_dropped_when_identity_not_needed if {
	inp := object.union(testing.ubi_input, {"dataset": {"fields": {"face": "biometric"}}})
	["biometric", "minimisation.identity_not_needed"] in data.tollhouse.explain.category_violations with input as inp
	fields.obligations.face == "drop" with input as inp
}

test_dataset_fields_default_empty if {
	fields.dataset_fields == {} with input as {}
	fields.dataset_fields == {} with input as {"dataset": {"fields": ["a"]}}
}

test_every_category_is_well_formed if {
	every _, category in data.taxonomy.categories {
		is_boolean(category.sensitive)
		category.when_identity_not_needed in {"keep", "drop", "mask", "pseudonymize", "generalize"}
	}
	every name in {"location_precise", "identity_document", "financial_account", "biometric"} {
		data.taxonomy.categories[name].sensitive == true
	}
}

test_any_released if {
	fields.any_released with input as testing.base_input
	not fields.any_released with input as data.tollhouse.testing.with_input({"agreement": {"fields": []}})
	not fields.any_released with input as data.tollhouse.testing.with_input({"consent": {"categories": []}})
}

test_obligations_per_category_apply_to_every_field_of_it if {
	inp := data.tollhouse.testing.with_fields(
		data.tollhouse.testing.with_input({"agreement": {"fields": ["a", "b", "c"]}}),
		{"a": "identity", "b": "identity", "c": "identity", "d": "identity"},
	)
	fields.obligations == {"a": "keep", "b": "keep", "c": "keep", "d": "drop"} with input as inp
	fields.category_obligations == {"identity": "keep"} with input as inp
}
