package tollhouse.explain_test

import data.tollhouse.explain
import data.tollhouse.testing

test_explain if {
	e := explain.explanation with input as data.tollhouse.testing.with_input({"consent": {"sensitive": false}})
	e.decision.allow == true
	e.field_reasons.card == ["sensitive.no_separate_consent"]
	e.fair_use.fetches_per_day == 5000
}

test_explain_unknown_purpose_has_no_fair_use if {
	e := explain.explanation with input as data.tollhouse.testing.with_input({"purpose": "curiosity"})
	e.fair_use == null
}

test_reasons_by_field if {
	inp := data.tollhouse.testing.with_input({"agreement": {"fields": ["name"]}, "consent": {"categories": ["identity", "income"]}})
	explain.reasons_by_field.name == [] with input as inp
	explain.reasons_by_field.vin == ["consent.category_not_granted", "minimisation.field_not_in_agreement"] with input as inp
	explain.reasons_by_field.income == ["minimisation.field_not_in_agreement"] with input as inp
}
