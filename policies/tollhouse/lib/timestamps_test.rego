package tollhouse.lib.timestamps_test

import data.tollhouse.lib.timestamps

test_to_ns_accepts_utc_offsets_and_fractions if {
	data.tollhouse.lib.timestamps.to_ns("2026-02-01T00:00:00Z") == 1769904000000000000
	data.tollhouse.lib.timestamps.to_ns("2026-02-01T08:00:00+08:00") == 1769904000000000000
	data.tollhouse.lib.timestamps.to_ns("2026-02-01T00:00:00.123456789Z") == 1769904000123456789
}

test_to_ns_undefined_for_other_shapes if {
	not data.tollhouse.lib.timestamps.to_ns("2026-02-01")
	not data.tollhouse.lib.timestamps.to_ns("2026-02-01 00:00:00Z")
	not data.tollhouse.lib.timestamps.to_ns("2026-02-01t00:00:00Z")
	not data.tollhouse.lib.timestamps.to_ns("2026-02-01T00:00:00")
	not data.tollhouse.lib.timestamps.to_ns(1767225600)
	not data.tollhouse.lib.timestamps.to_ns(null)
}

test_to_ns_parses_offsets if {
	data.tollhouse.lib.timestamps.to_ns("2026-02-01T08:00:00+08:00") == data.tollhouse.lib.timestamps.to_ns("2026-02-01T00:00:00Z")
}

test_to_ns_undefined_for_garbage if {
	not data.tollhouse.lib.timestamps.to_ns("yesterday")
}

test_now_ns_from_input if {
	timestamps.now_ns == 1769904000000000000 with input as {"now": "2026-02-01T00:00:00Z"}
}

test_now_ns_undefined_when_missing if {
	not timestamps.now_ns with input as {}
}
