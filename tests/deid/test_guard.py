"""The egress guard: nothing the decision did not allow leaves in free text."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from hub.deid.corpus import generate_corpus
from hub.deid.guard import (
    ALL_ENTITIES,
    EgressGuard,
    build_analyzer,
    configure_offline,
    entities_for_categories,
)
from hub.demo.population import generate_population

TARGETS = ("VIN", "PRC_ID", "CN_PLATE", "CN_MOBILE", "CREDIT_CARD")


def _digits(s: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", s).upper()


def _leaks(value: str, text: str) -> bool:
    """Whether ``value`` survives in ``text``, also with its separators removed."""
    return value in text or _digits(value) in _digits(text)


def _population_texts(limit: int | None = None) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    pop = generate_population(seed=7, consumers=200)
    items = [(c.description, c.planted) for c in pop.claims]
    items += [(s.remarks, s.planted) for s in pop.service_records]
    items += [(d.notes, d.planted) for d in pop.sales_deals if d.notes]
    planted_first = sorted(items, key=lambda item: not item[1])
    return planted_first[:limit] if limit else planted_first


def _assert_nothing_leaks(
    guard: EgressGuard, items: list[tuple[str, tuple[tuple[str, str], ...]]]
) -> None:
    results = guard.scan_and_redact([t for t, _ in items], allowed_entities=())
    for (_, planted), result in zip(items, results, strict=True):
        for entity, value in planted:
            assert not _leaks(value, result.text), (entity, result.text)
            assert result.findings, entity


def test_record_free_text_never_releases_identifiers(guard: EgressGuard) -> None:
    items = _population_texts(limit=80)
    assert sum(len(p) for _, p in items) > 60
    _assert_nothing_leaks(guard, items)


@pytest.mark.slow
def test_whole_population_free_text_never_releases_identifiers(guard: EgressGuard) -> None:
    _assert_nothing_leaks(guard, _population_texts())


def test_allowed_entities_pass_others_are_counted(guard: EgressGuard) -> None:
    text = (
        "Claimant ID 11010519491231002X, VIN 1M8GDM9AXKP042788, plate 粤B·D12345, "
        "call 138 0013 8000 or james.smith@gmail.com, card 6222 0212 3456 7890 128."
    )
    [none] = guard.scan_and_redact([text], allowed_entities=())
    assert none.findings == {
        "PRC_ID": 1, "VIN": 1, "CN_PLATE": 1, "CN_MOBILE": 1, "EMAIL_ADDRESS": 1, "CREDIT_CARD": 1
    }  # fmt: skip
    assert "<PRC_ID>" in none.text and "11010519491231002X" not in none.text
    [some] = guard.scan_and_redact([text], allowed_entities={"VIN", "CN_PLATE"})
    assert "1M8GDM9AXKP042788" in some.text and "粤B·D12345" in some.text
    assert "VIN" not in some.findings and "CN_PLATE" not in some.findings
    assert "138 0013 8000" not in some.text
    [everything] = guard.scan_and_redact([text], allowed_entities=ALL_ENTITIES)
    assert everything.text == text and everything.findings == {}


def test_chinese_text(guard: EgressGuard) -> None:
    text = (
        "车主王伟先生，电话13800138000，车牌沪A·D12345，"
        "车架号LGXE74CM3RA501871，工单号202512068269596569。"
    )
    [r] = guard.scan_and_redact([text], allowed_entities=())
    assert r.text == (
        "车主<PERSON>先生，电话<CN_MOBILE>，车牌<CN_PLATE>，车架号<VIN>，工单号202512068269596569。"
    )


def test_look_alikes_survive(guard: EgressGuard) -> None:
    text = (
        "Repair order 202512068269596569, part 5Q0-615-301-H, order number 13800138000, "
        "invoice ref 6222021234567890128, old VIN 1M8GDM9A1KP042788."
    )
    [r] = guard.scan_and_redact([text], allowed_entities=("PERSON", "LOCATION"))
    assert r.text == text and r.findings == {}


def test_prefilter_skips_presidio_on_clean_text(guard: EgressGuard) -> None:
    clean = ["常规保养：更换机油机滤，刹车片剩余约六成。", "oil changed, tyres rotated.", ""]
    results = guard.scan_and_redact(clean, allowed_entities=())
    assert [r.text for r in results] == clean
    assert not any(r.presidio_used for r in results)
    # English with capitalised words needs NER unless names and places are allowed
    [r] = guard.scan_and_redact(["Windscreen cracked."], allowed_entities=())
    assert r.presidio_used
    [r] = guard.scan_and_redact(["Windscreen cracked."], allowed_entities=("PERSON", "LOCATION"))
    assert not r.presidio_used


def test_mask_redaction_is_format_preserving() -> None:
    masking = EgressGuard(redaction="mask")
    [r] = masking.scan_and_redact(["车牌粤B·D12345，电话138 0013 8000。"], allowed_entities=())
    assert r.text == "车牌粤B·****45，电话138 **** 8000。"


def test_categories_map_to_entities() -> None:
    assert entities_for_categories(["vehicle_identifier", "contact"]) >= {
        "VIN", "CN_PLATE", "CN_MOBILE", "PHONE_NUMBER", "EMAIL_ADDRESS"
    }  # fmt: skip
    assert entities_for_categories(["sales", "unknown"]) == frozenset()


def test_offline_configuration() -> None:
    configure_offline()
    import tldextract.tldextract as tld

    assert not tld.TLD_EXTRACTOR.suffix_list_urls
    assert tld.TLD_EXTRACTOR.extract_str("a@mail.example.co.uk").suffix == "co.uk"


def test_corpus_precision_and_recall(guard: EgressGuard) -> None:
    corpus = generate_corpus(seed=5, size=300)
    analysed = guard.analyze([c.text for c in corpus])
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    for item, (spans, _) in zip(corpus, analysed, strict=True):
        for g in item.gold:
            hit = any(s.start < g.end and g.start < s.end and s.entity == g.entity for s in spans)
            (tp if hit else fn)[g.entity] += 1
        for s in spans:
            if not any(s.start < g.end and g.start < s.end for g in item.gold):
                fp[s.entity] += 1
    for entity in TARGETS:
        assert tp[entity] / (tp[entity] + fn[entity]) >= 0.99, entity
        assert tp[entity] / (tp[entity] + fp[entity]) >= 0.95, entity


@pytest.mark.slow
def test_custom_recognizers_inside_presidio() -> None:
    analyzer = build_analyzer(custom=True)
    text = "车架号LGXE74CM3RA501871，身份证11010519491231002X，车牌粤B·D12345。"
    found = {r.entity_type for r in analyzer.analyze(text, language="zh") if r.score >= 0.5}
    assert {"VIN", "PRC_ID", "CN_PLATE"} <= found


def test_allowed_identifier_is_not_redacted_as_something_else(guard: EgressGuard) -> None:
    text = "Owner James Smith, VIN 1M8GDM9AXKP042788 (WBA JU210 series)."
    [r] = guard.scan_and_redact([text], allowed_entities={"VIN"})
    assert "1M8GDM9AXKP042788" in r.text and "James Smith" not in r.text
