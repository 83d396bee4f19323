# The data-sharing agreement: active, in force, made with this recipient, for this purpose.
package tollhouse.agreement

violations contains "agreement.missing" if not is_object(input.agreement)

violations contains "agreement.inactive" if not input.agreement.status == "active"

violations contains "agreement.not_recipient" if not made_with_partner

violations contains "agreement.purpose_mismatch" if not covers_purpose

violations contains "agreement.invalid_period" if not valid_from_ns

violations contains "agreement.invalid_period" if not valid_until_ns

violations contains "agreement.not_yet_valid" if {
	data.tollhouse.lib.timestamps.now_ns < valid_from_ns
}

violations contains "agreement.expired" if {
	data.tollhouse.lib.timestamps.now_ns >= valid_until_ns
}

# No violation above (the common case; release.rego computes `violations` only when this
# fails). The conditions are written out rather than referring to made_with_partner and
# covers_purpose: each rule evaluated costs ~2 us in regorus.
clear if {
	input.agreement.status == "active"
	is_string(input.partner.id)
	input.agreement.recipient == input.partner.id
	object.get(input.agreement, "purpose", input.purpose) == input.purpose
	now_ns := data.tollhouse.lib.timestamps.now_ns
	valid_from_ns <= now_ns
	now_ns < valid_until_ns
}

valid_from_ns := ns if {
	ns := input.times_ns[input.agreement.valid_from]
	is_number(ns)
}

else := data.tollhouse.lib.timestamps.to_ns(input.agreement.valid_from)

valid_until_ns := ns if {
	ns := input.times_ns[input.agreement.valid_until]
	is_number(ns)
}

else := data.tollhouse.lib.timestamps.to_ns(input.agreement.valid_until)

made_with_partner if {
	is_string(input.partner.id)
	input.agreement.recipient == input.partner.id
}

# The agreement names its purpose; when it does not, the hub resolved it by purpose already.
covers_purpose if {
	is_object(input.agreement)
	object.get(input.agreement, "purpose", input.purpose) == input.purpose
}

fields := {field | some field in input.agreement.fields}
