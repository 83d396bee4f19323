"""Plain-words labels for the taxonomy's categories and purposes and for consent statuses.

The strings are msgids of the portal's catalogs (marked with ``N_``), translated where shown.
"""

from __future__ import annotations

from hub.portal.i18n import N_

CATEGORY_LABELS: dict[str, str] = {
    "identity": N_("your name and date of birth"),
    "contact": N_("your phone number, e-mail and address"),
    "identity_document": N_("your ID document numbers"),
    "biometric": N_("your face, fingerprint or voice data"),
    "vehicle": N_("your car's make, model and mileage"),
    "vehicle_identifier": N_("your car's VIN and licence plate"),
    "location_precise": N_("your precise location and trips"),
    "location_coarse": N_("your city or region"),
    "driving_behaviour": N_("how you drive (scores, braking, mileage)"),
    "financial_account": N_("your bank card and account numbers"),
    "credit": N_("your credit score and history"),
    "income": N_("your income and employment"),
    "loan": N_("your loan (decision, balance, repayments)"),
    "sales": N_("your car purchase (price, dealer, date)"),
    "insurance": N_("your insurance policies"),
    "claim": N_("your insurance claims"),
    "free_text": N_("free-text notes about you"),
    "service_history": N_("your car's workshop visits and repairs"),
    "warranty": N_("your warranty registrations"),
}

PURPOSE_LABELS: dict[str, str] = {
    "credit_assessment": N_("assess your credit"),
    "loan_origination": N_("set up and pay out your car loan"),
    "collateral_monitoring": N_("keep an eye on the financed car"),
    "fraud_prevention": N_("prevent fraud"),
    "ubi_pricing": N_("price insurance from how you drive"),
    "claims_handling": N_("handle your insurance claim"),
    "gap_insurance": N_("check your loan for GAP cover"),
    "warranty": N_("register and service your warranty"),
    "recall": N_("tell you about safety recalls"),
    "regulatory_reporting": N_("prepare anonymous statistics for the regulator"),
    "sales_reporting": N_("report car sales to the manufacturer"),
    "marketing": N_("send you offers"),
}

STATUS_LABELS: dict[str, str] = {
    "requested": N_("waiting for your answer"),
    "active": N_("active"),
    "paused": N_("paused"),
    "withdrawn": N_("withdrawn"),
    "revoked": N_("revoked by the hub"),
    "expired": N_("expired"),
    "denied": N_("denied"),
}
