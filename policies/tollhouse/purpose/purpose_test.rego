package tollhouse.purpose_test

import data.tollhouse.purpose
import data.tollhouse.testing

test_known_purpose_and_role if {
	count(purpose.violations) == 0 with input as testing.base_input
}

test_unknown_purpose if {
	purpose.violations == {"purpose.unknown"} with input as data.tollhouse.testing.with_input({"purpose": "curiosity"})
}

test_missing_purpose if {
	"purpose.unknown" in purpose.violations with input as object.remove(testing.base_input, ["purpose"])
}

test_role_not_allowed if {
	purpose.violations == {"purpose.not_allowed_for_role"} with input as data.tollhouse.testing.with_input({"partner": {"role": "dealer"}})
}

test_unknown_role if {
	purpose.violations == {"role.unknown", "purpose.not_allowed_for_role"} with input as data.tollhouse.testing.with_input({"partner": {"role": "broker"}})
}

test_every_purpose_is_well_formed if {
	every name, purpose in data.taxonomy.purposes {
		count(purpose.roles) > 0
		every role in purpose.roles {
			role in data.taxonomy.roles
		}
		every category in purpose.categories {
			data.taxonomy.categories[category]
		}
		every category in purpose.linkable_categories {
			category in purpose.categories
		}
		is_boolean(purpose.identity_needed)
		purpose.fair_use.max_duration_days > 0
		purpose.fair_use.max_data_range_days > 0
		purpose.fair_use.fetches_per_day > 0
	}
}

test_consent_duration_exceeded if {
	v := purpose.violations with input as data.tollhouse.testing.with_input({"consent": {"starts_at": "2026-01-01T00:00:00Z", "expires_at": "2026-04-02T00:00:00Z"}})
	v == {"purpose.duration_exceeded"}
}

test_consent_duration_at_cap_is_fine if {
	count(purpose.violations) == 0 with input as data.tollhouse.testing.with_input({"consent": {"starts_at": "2026-01-01T00:00:00Z", "expires_at": "2026-04-01T00:00:00Z"}})
}

test_long_agreement_is_fine if {
	count(purpose.violations) == 0 with input as data.tollhouse.testing.with_input({"agreement": {"valid_until": "2029-01-01T00:00:00Z"}})
}

test_fetches_exceeded if {
	purpose.violations == {"fair_use.fetches_exceeded"} with input as data.tollhouse.testing.with_input({"request": {"fetches_today": 5000}})
	count(purpose.violations) == 0 with input as data.tollhouse.testing.with_input({"request": {"fetches_today": 4999}})
}

test_data_range_exceeded if {
	purpose.violations == {"fair_use.data_range_exceeded"} with input as data.tollhouse.testing.with_input({"request": {"data_range_days": 731}})
	count(purpose.violations) == 0 with input as data.tollhouse.testing.with_input({"request": {"data_range_days": 730}})
}

test_identity_needed if {
	purpose.identity_needed with input as testing.base_input
	not purpose.identity_needed with input as testing.ubi_input
}

test_linkable if {
	purpose.linkable == {"vehicle_identifier"} with input as testing.ubi_input
	count(purpose.linkable) == 0 with input as testing.base_input
}

test_fair_use if {
	purpose.definition.fair_use.fetches_per_day == 5000 with input as testing.base_input
}
