# Shared test inputs. A *_test.rego file: loaded only when the Rego tests run.
package tollhouse.testing

# A lender assessing credit, domestic, everything in order: allowed.
base_input := {
	"partner": {"id": "ptn_lender", "role": "lender", "jurisdiction": "CN"},
	"purpose": "credit_assessment",
	"agreement": {
		"id": "agr_1",
		"status": "active",
		"recipient": "ptn_lender",
		"purpose": "credit_assessment",
		"valid_from": "2026-01-01T00:00:00Z",
		"valid_until": "2026-03-01T00:00:00Z",
		"fields": ["name", "vin", "income", "card", "id_number"],
		"cross_border": false,
	},
	"dataset": {
		"id": "ds_deals",
		"provider": "ptn_dealer",
		"fields": {
			"name": "identity",
			"vin": "vehicle_identifier",
			"income": "income",
			"card": "financial_account",
			"id_number": "identity_document",
		},
	},
	"consent": {
		"status": "active",
		"categories": ["identity", "vehicle_identifier", "income", "financial_account", "identity_document"],
		"expires_at": "2026-12-31T00:00:00Z",
		"sensitive": true,
		"cross_border": false,
	},
	"subject": {"jurisdiction": "CN"},
	"now": "2026-02-01T00:00:00Z",
}

# An insurer pricing usage-based insurance: identity not needed, VIN linkable.
ubi_input := with_fields(ubi_patched, {
	"vin": "vehicle_identifier",
	"gps": "location_precise",
	"score": "driving_behaviour",
	"city": "location_coarse",
	"model": "vehicle",
})

ubi_patched := object.union(base_input, {
	"partner": {"id": "ptn_insurer", "role": "insurer", "jurisdiction": "CN"},
	"purpose": "ubi_pricing",
	"agreement": {
		"recipient": "ptn_insurer",
		"purpose": "ubi_pricing",
		"fields": ["vin", "gps", "score", "city", "model"],
	},
	"dataset": {"id": "ds_telematics", "provider": "ptn_oem"},
	"consent": {"categories": ["vehicle_identifier", "location_precise", "driving_behaviour", "location_coarse", "vehicle"]},
})

with_input(patch) := object.union(base_input, patch)

# object.union merges nested objects; the dataset's field map is replaced instead.
with_fields(inp, fields) := object.union(json.remove(inp, ["dataset/fields"]), {"dataset": {"fields": fields}})
