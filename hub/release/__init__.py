"""The release pipeline: consent -> policy -> field protection -> egress guard -> audit."""
