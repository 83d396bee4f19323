# Timestamps: RFC 3339 strings such as "2026-02-01T00:00:00Z" or "...08:00:00.5+08:00".
#
# to_ns first checks the shape cheaply (regex.match recompiles its pattern on every call in
# regorus, ~60 us each): strings of the wrong shape are undefined, so deny reasons, identical
# on OPA and regorus. A string of the right shape that still does not parse (month 13) makes
# time.parse_rfc3339_ns fail: an evaluation error on regorus (the hub denies), undefined on
# OPA (the policy denies). Either way nothing is released. The check is written into to_ns
# rather than called as a function of its own: a function call costs ~1.5 us in regorus, and
# to_ns runs four times a decision.
#
# `input.times_ns` (optional) maps timestamp strings of the input to their instants in ns, as
# time.parse_rfc3339_ns gives them: the embedded engine fills it in (hub.policy.embedded, a
# Python parse costs a fraction of a regorus one), other callers may leave it out. The four
# instants a decision compares (now, valid_from, valid_until, expires_at) are looked up there
# first, each in its own rule (no function call), and parsed only when missing.
package tollhouse.lib.timestamps

ns_per_day := 86400000000000

to_ns(value) := time.parse_rfc3339_ns(value) if {
	is_string(value)
	count(value) >= 20
	substring(value, 4, 1) == "-"
	substring(value, 7, 1) == "-"
	substring(value, 10, 1) == "T"
	substring(value, 13, 1) == ":"
	substring(value, 16, 1) == ":"
}

now_ns := ns if {
	ns := input.times_ns[input.now]
	is_number(ns)
}

else := to_ns(input.now)
