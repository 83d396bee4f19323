# The data-sharing agreement: active, in force, made with this recipient, for this purpose.
package tollhouse.agreement

import data.tollhouse.lib.timestamps

violations contains "agreement.missing" if not is_object(input.agreement)

violations contains "agreement.inactive" if not input.agreement.status == "active"

violations contains "agreement.not_recipient" if not made_with_partner

violations contains "agreement.purpose_mismatch" if not covers_purpose

violations contains "agreement.invalid_period" if not valid_from_ns

violations contains "agreement.invalid_period" if not valid_until_ns

violations contains "agreement.not_yet_valid" if {
	timestamps.now_ns < valid_from_ns
}

violations contains "agreement.expired" if {
	timestamps.now_ns >= valid_until_ns
}

valid_from_ns := data.tollhouse.lib.timestamps.to_ns(input.agreement.valid_from)

valid_until_ns := data.tollhouse.lib.timestamps.to_ns(input.agreement.valid_until)

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
