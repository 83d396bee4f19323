package tollhouse.agreement_test

import data.tollhouse.agreement
import data.tollhouse.testing

test_valid_agreement_has_no_violations if {
	count(agreement.violations) == 0 with input as testing.base_input
}

test_missing_agreement if {
	v := agreement.violations with input as object.remove(testing.base_input, ["agreement"])
	"agreement.missing" in v
	"agreement.inactive" in v
	"agreement.not_recipient" in v
	"agreement.invalid_period" in v
}

test_inactive_agreement if {
	v := agreement.violations with input as data.tollhouse.testing.with_input({"agreement": {"status": "suspended"}})
	v == {"agreement.inactive"}
}

test_status_missing_is_inactive if {
	"agreement.inactive" in agreement.violations with input as json.remove(testing.base_input, ["agreement/status"])
}

test_other_recipient if {
	v := agreement.violations with input as data.tollhouse.testing.with_input({"agreement": {"recipient": "ptn_other"}})
	v == {"agreement.not_recipient"}
}

test_recipient_without_partner_id if {
	"agreement.not_recipient" in agreement.violations with input as json.remove(testing.base_input, ["partner/id"])
}

test_purpose_mismatch if {
	v := agreement.violations with input as data.tollhouse.testing.with_input({"agreement": {"purpose": "marketing"}})
	v == {"agreement.purpose_mismatch"}
}

test_purpose_may_be_omitted if {
	count(agreement.violations) == 0 with input as json.remove(testing.base_input, ["agreement/purpose"])
}

test_not_yet_valid if {
	v := agreement.violations with input as data.tollhouse.testing.with_input({"now": "2025-12-31T23:59:59Z"})
	v == {"agreement.not_yet_valid"}
}

test_valid_from_is_inclusive if {
	count(agreement.violations) == 0 with input as data.tollhouse.testing.with_input({"now": "2026-01-01T00:00:00Z"})
}

test_expired_at_valid_until if {
	v := agreement.violations with input as data.tollhouse.testing.with_input({"now": "2026-03-01T00:00:00Z"})
	v == {"agreement.expired"}
}

test_invalid_period if {
	v := agreement.violations with input as data.tollhouse.testing.with_input({"agreement": {"valid_until": "next year"}})
	v == {"agreement.invalid_period"}
}

test_null_valid_until_is_invalid if {
	"agreement.invalid_period" in agreement.violations with input as data.tollhouse.testing.with_input({"agreement": {"valid_until": null}})
}

test_fields_set if {
	agreement.fields == {"name", "vin", "income", "card", "id_number"} with input as testing.base_input
}
