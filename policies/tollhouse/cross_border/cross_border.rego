# Cross-border transfer: the recipient's jurisdiction differs from the subject's (or either
# is unknown); it needs both the agreement's clause and the subject's separate consent.
package tollhouse.cross_border

import data.tollhouse.consent

violations contains "cross_border.not_in_agreement" if {
	not domestic
	not input.agreement.cross_border == true
}

violations contains "cross_border.no_consent" if {
	not domestic
	not consent.cross_border_granted
}

domestic if {
	is_string(input.partner.jurisdiction)
	input.partner.jurisdiction == input.subject.jurisdiction
}
