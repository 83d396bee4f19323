package tollhouse.cross_border_test

import data.tollhouse.cross_border
import data.tollhouse.testing

abroad := data.tollhouse.testing.with_input({"subject": {"jurisdiction": "DE"}})

test_domestic_needs_nothing if {
	count(cross_border.violations) == 0 with input as testing.base_input
	cross_border.domestic with input as testing.base_input
}

test_abroad_needs_agreement_and_consent if {
	cross_border.violations == {"cross_border.not_in_agreement", "cross_border.no_consent"} with input as abroad
}

test_abroad_with_agreement_only if {
	cross_border.violations == {"cross_border.no_consent"} with input as object.union(abroad, {"agreement": {"cross_border": true}})
}

test_abroad_with_consent_only if {
	cross_border.violations == {"cross_border.not_in_agreement"} with input as object.union(abroad, {"consent": {"cross_border": true}})
}

test_abroad_with_both if {
	count(cross_border.violations) == 0 with input as object.union(abroad, {"agreement": {"cross_border": true}, "consent": {"cross_border": true}})
}

test_unknown_jurisdiction_counts_as_abroad if {
	not cross_border.domestic with input as json.remove(testing.base_input, ["subject/jurisdiction"])
	not cross_border.domestic with input as json.remove(testing.base_input, ["partner/jurisdiction"])
	"cross_border.no_consent" in cross_border.violations with input as json.remove(testing.base_input, ["subject"])
}
