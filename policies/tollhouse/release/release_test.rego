package tollhouse.release_test

import data.tollhouse.release
import data.tollhouse.testing

test_allow_with_obligations if {
	release.decision == {
		"allow": true,
		"obligations": {
			"name": "keep",
			"vin": "keep",
			"income": "keep",
			"card": "encrypt_for_recipient",
			"id_number": "encrypt_for_recipient",
		},
		"reasons": [],
	} with input as testing.base_input
}

test_deny_by_default_on_empty_input if {
	d := release.decision with input as {}
	d.allow == false
	d.obligations == {}
	"input.invalid_now" in d.reasons
	"dataset.no_fields" in d.reasons
	"purpose.unknown" in d.reasons
	"consent.missing" in d.reasons
	"agreement.missing" in d.reasons
}

test_deny_unknown_purpose if {
	d := release.decision with input as data.tollhouse.testing.with_input({"purpose": "curiosity"})
	d.allow == false
	"purpose.unknown" in d.reasons
}

test_deny_unknown_role if {
	d := release.decision with input as data.tollhouse.testing.with_input({"partner": {"role": "broker"}})
	d.allow == false
	"role.unknown" in d.reasons
}

test_denied_decision_drops_every_field if {
	d := release.decision with input as data.tollhouse.testing.with_input({"consent": {"status": "withdrawn"}})
	d.allow == false
	d.obligations == {"name": "drop", "vin": "drop", "income": "drop", "card": "drop", "id_number": "drop"}
	d.reasons == ["consent.withdrawn"]
}

test_deny_when_nothing_released if {
	d := release.decision with input as data.tollhouse.testing.with_fields(testing.base_input, {"face": "biometric"})
	d.allow == false
	d.obligations == {"face": "drop"}
	"release.nothing_released" in d.reasons
}

test_unknown_category_alone_denies if {
	d := release.decision with input as data.tollhouse.testing.with_fields(testing.base_input, {"face": "faceprint"})
	d.allow == false
	"category.unknown" in d.reasons
}

test_partial_release_explains_drops if {
	d := release.decision with input as data.tollhouse.testing.with_input({"consent": {"sensitive": false}})
	d.allow == true
	d.obligations.card == "drop"
	d.reasons == ["sensitive.no_separate_consent"]
}

test_invalid_now if {
	d := release.decision with input as data.tollhouse.testing.with_input({"now": "2026-02-01"})
	d.allow == false
	"input.invalid_now" in d.reasons
}

test_cross_border_denies if {
	d := release.decision with input as data.tollhouse.testing.with_input({"subject": {"jurisdiction": "DE"}})
	d.allow == false
	d.reasons == ["cross_border.no_consent", "cross_border.not_in_agreement"]
}

test_reasons_are_sorted_and_unique if {
	d := release.decision with input as {}
	d.reasons == sort({r | some r in d.reasons})
}
