"""Plain-words labels for the taxonomy's categories and purposes and for consent statuses.

The strings are msgids of the portal's catalogs (marked with ``N_``), translated where shown.
"""

from __future__ import annotations

from collections.abc import Callable

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

#: Plain-words names of the fields of the datasets the hub knows (the demo ecosystem's);
#: a field without one is named by its data category.
FIELD_LABELS: dict[str, str] = {
    "address": N_("address"),
    "amount_cny": N_("amount (CNY)"),
    "annual_premium_cny": N_("annual premium (CNY)"),
    "applicant_name": N_("applicant's name"),
    "application_id": N_("loan application number"),
    "applied_on": N_("application date"),
    "approved_amount_cny": N_("approved amount (CNY)"),
    "balance_band": N_("outstanding balance (range)"),
    "birth_date": N_("date of birth"),
    "build_date": N_("build date"),
    "buyer_id_number": N_("buyer's ID number"),
    "buyer_mobile": N_("buyer's mobile number"),
    "buyer_name": N_("buyer's name"),
    "cost_cny": N_("cost (CNY)"),
    "coverage": N_("coverage"),
    "deal_date": N_("purchase date"),
    "decided_on": N_("decision date"),
    "delinquency": N_("overdue repayments"),
    "description": N_("description"),
    "distance_km": N_("distance driven (km)"),
    "down_payment_cny": N_("down payment (CNY)"),
    "end_date": N_("end date"),
    "harsh_braking_score": N_("harsh braking score"),
    "id_number": N_("ID number"),
    "incident_date": N_("incident date"),
    "last_lat": N_("last known position (latitude)"),
    "last_lon": N_("last known position (longitude)"),
    "lender": N_("lender"),
    "lien_id": N_("vehicle mortgage number"),
    "lien_status": N_("vehicle mortgage status"),
    "make": N_("make"),
    "mobile": N_("mobile number"),
    "model": N_("model"),
    "model_year": N_("model year"),
    "monthly_income_cny": N_("monthly income (CNY)"),
    "msrp_cny": N_("list price (CNY)"),
    "night_driving_share": N_("share of night driving"),
    "notes": N_("notes"),
    "odometer_km": N_("odometer (km)"),
    "opened_on": N_("loan start date"),
    "outcome": N_("decision"),
    "payout_iban": N_("payout bank account (IBAN)"),
    "period": N_("period"),
    "plate": N_("licence plate"),
    "policy_id": N_("policy number"),
    "powertrain": N_("powertrain"),
    "premium_band": N_("premium (range)"),
    "price_cny": N_("price (CNY)"),
    "principal_cny": N_("loan principal (CNY)"),
    "rate_band": N_("interest rate (range)"),
    "reason_code": N_("reason for the decision"),
    "remarks": N_("remarks"),
    "repayment_card": N_("repayment bank card"),
    "service_date": N_("service date"),
    "service_type": N_("kind of service"),
    "start_date": N_("start date"),
    "status": N_("status"),
    "term_months": N_("term (months)"),
    "trade_in_value_cny": N_("trade-in value (CNY)"),
    "trips": N_("number of trips"),
    "vin": N_("VIN (vehicle identification number)"),
}

#: Partner roles, as a consent addressed to every partner of a role names them.
ROLE_LABELS: dict[str, str] = {
    "oem": N_("car maker"),
    "dealer": N_("dealer"),
    "lender": N_("lender"),
    "insurer": N_("insurer"),
}

RIGHTS_STATUS_LABELS: dict[str, str] = {
    "requested": N_("received"),
    "in_progress": N_("being handled"),
    "completed": N_("done"),
    "rejected": N_("refused"),
}

RIGHTS_KIND_LABELS: dict[str, str] = {
    "correction": N_("Correction"),
    "erasure": N_("Erasure of all my data"),
}


def field_label(name: str, category: str | None, gettext: Callable[[str], str]) -> str:
    """A field in plain words: its own label, else its category's, else its name."""
    if name in FIELD_LABELS:
        return gettext(FIELD_LABELS[name])
    if category in CATEGORY_LABELS:
        return gettext(CATEGORY_LABELS[category])
    return name
