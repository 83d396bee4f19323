"""De-identification benchmark: precision/recall per entity type and throughput.

Compares the egress guard (validated finders + Presidio with its own recognizers, pre-filter,
batches) with Presidio out of the box (English spaCy model, predefined recognizers only) on the
generated labelled corpus of :mod:`hub.deid.corpus`. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_deid.py [--size 2000] [--seed 11]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hub.deid.corpus import LabelledText, generate_corpus
from hub.deid.guard import EgressGuard, build_analyzer
from hub.deid.patterns import Span

if TYPE_CHECKING:  # imported lazily, so the script also runs as a file
    from bench.common import Report

TARGETS = ("VIN", "PRC_ID", "CN_PLATE", "CN_MOBILE", "CREDIT_CARD")
REPORTED = (*TARGETS, "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON", "LOCATION",
            "GPS_COORDINATE")  # fmt: skip
# A predicted type that counts as a hit for a gold type (a CN mobile reported as PHONE_NUMBER is
# still found and redacted).
COMPATIBLE = {
    "CN_MOBILE": {"CN_MOBILE", "PHONE_NUMBER"},
    "PHONE_NUMBER": {"PHONE_NUMBER", "CN_MOBILE"},
}


def score(
    corpus: Sequence[LabelledText], predictions: Sequence[Sequence[Span]]
) -> tuple[dict[str, Counter[str]], int, int]:
    """Per type TP/FP/FN, plus gold spans leaked (not fully covered by any prediction)."""
    counts: dict[str, Counter[str]] = {}
    leaked = total = 0
    for item, spans in zip(corpus, predictions, strict=True):
        used: set[int] = set()
        for g in item.gold:
            total += 1
            ok = COMPATIBLE.get(g.entity, {g.entity})
            hit = next(
                (i for i, s in enumerate(spans)
                 if i not in used and s.entity in ok and s.start < g.end and g.start < s.end),
                None,
            )  # fmt: skip
            c = counts.setdefault(g.entity, Counter())
            if hit is None:
                c["fn"] += 1
            else:
                used.add(hit)
                c["tp"] += 1
            covered: set[int] = set()
            for s in spans:
                covered.update(range(max(s.start, g.start), min(s.end, g.end)))
            if len(covered) < g.end - g.start:
                leaked += 1
        for i, s in enumerate(spans):
            if i in used:
                continue
            overlaps_gold = any(
                s.entity in COMPATIBLE.get(g.entity, {g.entity})
                and s.start < g.end
                and g.start < s.end
                for g in item.gold
            )
            if not overlaps_gold:
                counts.setdefault(s.entity, Counter())["fp"] += 1
    return counts, leaked, total


def table(name: str, counts: dict[str, Counter[str]], leaked: int, total: int) -> None:
    print(f"\n{name}")
    print(f"  {'entity':<16}{'gold':>6}{'tp':>6}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>8}")
    others = sorted(set(counts) - set(REPORTED))
    for entity in (*REPORTED, *others):
        c = counts.get(entity, Counter())
        gold = c["tp"] + c["fn"]
        predicted = c["tp"] + c["fp"]
        p = f"{c['tp'] / predicted:.3f}" if predicted else "-"
        r = f"{c['tp'] / gold:.3f}" if gold else "-"
        flag = ""
        if entity in TARGETS and gold:
            good = c["tp"] / gold >= 0.99 and (not predicted or c["tp"] / predicted >= 0.95)
            flag = "  ok" if good else "  BELOW GOAL"
        print(f"  {entity:<16}{gold:>6}{c['tp']:>6}{c['fp']:>6}{c['fn']:>6}{p:>11}{r:>8}{flag}")
    print(f"  gold spans left (partly) unredacted: {leaked} of {total}")


def rate(label: str, n: int, fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    best = n / min(times)
    print(f"  {label:<58}{best:>10.0f} texts/s  (median {n / statistics.median(times):.0f})")
    return best


def collect(quick: bool = False) -> Report:
    """The figures for ``python -m bench``: recall per target type (guard vs Presidio built-in,
    score >= 0.5), the guard's cost per text against Presidio alone on the same texts, and the
    free-text pipeline figures of :mod:`bench.bench_freetext` (same engines)."""
    from bench.common import Report

    corpus = generate_corpus(seed=11, size=150 if quick else 600)
    texts = [c.text for c in corpus]
    guard = EgressGuard(batch_size=64)
    from presidio_analyzer import BatchAnalyzerEngine

    batch = BatchAnalyzerEngine(analyzer_engine=build_analyzer(builtin_only=True))
    guard_pred = [spans for spans, _ in guard.analyze(texts)]
    base_raw = batch.analyze_iterator(texts, language="en", batch_size=64)
    base_pred = [
        [Span(r.entity_type, r.start, r.end, float(r.score)) for r in found if r.score >= 0.5]
        for found in base_raw
    ]
    g_counts, g_leaked, total = score(corpus, guard_pred)
    b_counts, b_leaked, _ = score(corpus, base_pred)
    report = Report(details={"corpus": len(corpus), "gold": total})
    for entity in TARGETS:
        g, b = g_counts.get(entity, Counter()), b_counts.get(entity, Counter())
        gold = g["tp"] + g["fn"]
        if not gold:
            continue
        recall, base_recall = g["tp"] / gold, b["tp"] / gold
        precision = g["tp"] / (g["tp"] + g["fp"]) if g["tp"] + g["fp"] else 1.0
        report.add(
            "deid", f"recall {entity}", recall, "", base_recall, "Presidio built-in recall",
            "≥ 0.99 (precision ≥ 0.95)", recall >= 0.99 and precision >= 0.95,
            note=f"precision {precision:.3f}",
        )  # fmt: skip
    report.add(
        "deid", "gold spans left unredacted", g_leaked, "spans", b_leaked,
        "Presidio built-in", "0", g_leaked == 0, note=f"of {total}",
    )  # fmt: skip
    guard_rate = rate("guard.scan_and_redact", len(texts), lambda: guard.scan_and_redact(texts, ()))
    base_rate = rate(
        "Presidio alone", len(texts), lambda: batch.analyze_iterator(texts, "en", batch_size=64)
    )
    report.add(
        "deid", "guard cost per text", 1e3 / guard_rate, "ms", 1e3 / base_rate,
        "Presidio BatchAnalyzer alone", "≤ 1.2× Presidio", 1e3 / guard_rate <= 1.2e3 / base_rate,
    )  # fmt: skip
    clean = [c.text for c in corpus if not c.gold and not any(ch.isdigit() for ch in c.text)]
    clean_zh = [t for t in clean if not t.isascii()]
    if clean_zh:
        many = clean_zh * max(1, (300 if quick else 1000) // len(clean_zh))
        g_rate = rate("guard, clean Chinese text", len(many),
                      lambda: guard.scan_and_redact(many, allowed_entities=()))  # fmt: skip
        b_rate = rate(
            "Presidio alone, same clean text", len(many),
            lambda: batch.analyze_iterator(many, language="en", batch_size=64),
        )  # fmt: skip
        report.add(
            "deid", "pre-filter cost per clean text", 1e3 / g_rate, "ms", 1e3 / b_rate,
            "Presidio alone, same texts", "≤ 0.1× Presidio", g_rate >= 10 * b_rate,
        )  # fmt: skip
    # records/s through the whole pipeline with a free-text field, on the engines loaded above
    from bench.bench_freetext import measure

    report.details["free_text"] = measure(guard, batch, 200 if quick else 600, report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    corpus = generate_corpus(seed=args.seed, size=args.size)
    texts = [c.text for c in corpus]
    en = sum(c.language == "en" for c in corpus)
    print(f"corpus: {len(corpus)} texts ({en} English, {len(corpus) - en} Chinese), "
          f"{sum(len(c.gold) for c in corpus)} planted identifiers, seed {args.seed}, "
          f"mean length {statistics.mean(len(t) for t in texts):.0f} chars")  # fmt: skip

    t0 = time.perf_counter()
    guard = EgressGuard(batch_size=args.batch)
    guard.analyze(texts[:4])
    print(f"guard engines loaded in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    baseline = build_analyzer(builtin_only=True)
    from presidio_analyzer import BatchAnalyzerEngine

    batch = BatchAnalyzerEngine(analyzer_engine=baseline)
    print(f"baseline engine loaded in {time.perf_counter() - t0:.1f} s")

    guard_pred = [spans for spans, _ in guard.analyze(texts)]
    presidio_used = sum(used for _, used in guard.analyze(texts))
    base_raw = batch.analyze_iterator(texts, language="en", batch_size=args.batch)
    base_pred = [[Span(r.entity_type, r.start, r.end, float(r.score)) for r in found]
                 for found in base_raw]  # fmt: skip

    table("egress guard (threshold 0.5)", *score(corpus, guard_pred))
    table("Presidio, built-in recognizers only (score > 0)", *score(corpus, base_pred))
    base_05 = [[s for s in spans if s.score >= 0.5] for spans in base_pred]
    table("Presidio, built-in recognizers only (score >= 0.5)", *score(corpus, base_05))

    print(f"\nthroughput (one process, batch {args.batch}; best of 3)")
    print(f"  guard sent {presidio_used} of {len(texts)} texts to Presidio")
    rate("guard.scan_and_redact, nothing allowed", len(texts),
         lambda: guard.scan_and_redact(texts, allowed_entities=()))  # fmt: skip
    rate("Presidio built-in alone, BatchAnalyzerEngine", len(texts),
         lambda: batch.analyze_iterator(texts, language="en", batch_size=args.batch))  # fmt: skip
    rate("Presidio built-in alone, analyze() per text", min(len(texts), 300),
         lambda: [baseline.analyze(t, language="en") for t in texts[:300]], repeat=1)  # fmt: skip

    clean = [c.text for c in corpus if not c.gold and not any(ch.isdigit() for ch in c.text)]
    clean_zh = [t for t in clean if not t.isascii()]
    clean_en = [t for t in clean if t.isascii()]
    reps = max(1, 2000 // max(1, len(clean_zh)))
    print(f"  clean texts: {len(clean_zh)} Chinese, {len(clean_en)} English")
    if clean_zh:
        many = clean_zh * reps
        skipped = sum(not r.presidio_used for r in guard.scan_and_redact(many, ()))
        print(f"  pre-filter skipped Presidio for {skipped} of {len(many)} clean Chinese texts")
        rate("guard on clean Chinese text (pre-filter path)", len(many),
             lambda: guard.scan_and_redact(many, allowed_entities=()))  # fmt: skip
        rate(
            "Presidio built-in on the same clean Chinese text",
            len(many),
            lambda: batch.analyze_iterator(many, language="en", batch_size=args.batch),
        )
    if clean_en:
        many_en = clean_en * max(1, 2000 // len(clean_en))
        skipped = sum(not r.presidio_used for r in guard.scan_and_redact(many_en, ()))
        print(f"  pre-filter skipped Presidio for {skipped} of {len(many_en)} clean English texts "
              "(capitalised words need NER while PERSON/LOCATION are not allowed)")  # fmt: skip
        allowed_ner = ("PERSON", "LOCATION")
        skipped = sum(not r.presidio_used for r in guard.scan_and_redact(many_en, allowed_ner))
        print(f"  ... and {skipped} of {len(many_en)} when PERSON and LOCATION are allowed")
        rate("guard on clean English text, PERSON/LOCATION allowed", len(many_en),
             lambda: guard.scan_and_redact(many_en, allowed_entities=allowed_ner))  # fmt: skip


if __name__ == "__main__":
    main()
