package tollhouse.consent_test

import data.tollhouse.consent
import data.tollhouse.testing

test_active_consent_has_no_violations if {
	count(consent.violations) == 0 with input as testing.base_input
}

test_missing_consent_object if {
	consent.violations == {"consent.missing"} with input as object.remove(testing.base_input, ["consent"])
}

test_status_reasons if {
	every status, reason in {
		"missing": "consent.missing",
		"paused": "consent.paused",
		"withdrawn": "consent.withdrawn",
		"revoked": "consent.revoked",
		"expired": "consent.expired",
		"bogus": "consent.status_unknown",
	} {
		consent.violations == {reason} with input as data.tollhouse.testing.with_input({"consent": {"status": status}})
	}
}

test_status_absent_is_unknown if {
	consent.violations == {"consent.status_unknown"} with input as json.remove(testing.base_input, ["consent/status"])
}

test_expired_by_time if {
	consent.violations == {"consent.expired"} with input as data.tollhouse.testing.with_input({"consent": {"expires_at": "2026-02-01T00:00:00Z"}})
}

test_not_yet_expired if {
	count(consent.violations) == 0 with input as data.tollhouse.testing.with_input({"consent": {"expires_at": "2026-02-01T00:00:01Z"}})
}

test_null_expiry_never_expires if {
	count(consent.violations) == 0 with input as data.tollhouse.testing.with_input({"consent": {"expires_at": null}})
}

test_invalid_expiry if {
	consent.violations == {"consent.invalid_expiry"} with input as data.tollhouse.testing.with_input({"consent": {"expires_at": "soon"}})
}

test_absent_expiry_is_invalid if {
	consent.violations == {"consent.invalid_expiry"} with input as json.remove(testing.base_input, ["consent/expires_at"])
}

test_granted_categories if {
	consent.granted == {"identity", "vehicle_identifier", "income", "financial_account", "identity_document"} with input as testing.base_input
}

test_nothing_granted_unless_active if {
	count(consent.granted) == 0 with input as data.tollhouse.testing.with_input({"consent": {"status": "paused"}})
}

test_sensitive_granted if {
	consent.sensitive_granted with input as testing.base_input
	not consent.sensitive_granted with input as data.tollhouse.testing.with_input({"consent": {"sensitive": false}})
	not consent.sensitive_granted with input as data.tollhouse.testing.with_input({"consent": {"sensitive": "yes"}})
	not consent.sensitive_granted with input as data.tollhouse.testing.with_input({"consent": {"status": "withdrawn"}})
}

test_cross_border_granted if {
	consent.cross_border_granted with input as data.tollhouse.testing.with_input({"consent": {"cross_border": true}})
	not consent.cross_border_granted with input as testing.base_input
	not consent.cross_border_granted with input as data.tollhouse.testing.with_input({"consent": {"cross_border": true, "status": "paused"}})
}
