# Cross-border transfer: the recipient's jurisdiction differs from the subject's (or either
# is unknown); it needs both the agreement's clause and the subject's separate consent.
package tollhouse.cross_border

violations contains "cross_border.not_in_agreement" if {
	not domestic
	not input.agreement.cross_border == true
}

violations contains "cross_border.no_consent" if {
	not domestic
	not data.tollhouse.consent.cross_border_granted
}

# No violation above (the common case; release.rego computes `violations` only when this
# fails): domestic (written out: a rule reference costs more), or both clauses present.
clear if {
	is_string(input.partner.jurisdiction)
	input.partner.jurisdiction == input.subject.jurisdiction
}

clear if {
	input.agreement.cross_border == true
	data.tollhouse.consent.cross_border_granted
}

domestic if {
	is_string(input.partner.jurisdiction)
	input.partner.jurisdiction == input.subject.jurisdiction
}
