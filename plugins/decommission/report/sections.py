"""The report's content as sections of words, tables and charts: one model that both the HTML and the PDF draw.

Everything a reader sees is formatted here, in the report's language: codes named in words
(milestones, finding reasons, checks, record types), counts as ``3 092`` and shares as ``3,4 %``.
The HTML template and the PDF renderer only lay the sections out, so the PDF whose SHA-256 is
signed holds the same sections as the HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from decommission.report.labels import (
    check_name,
    entity_name,
    milestone_name,
    number,
    percent,
    reason_name,
    scope_name,
    sentence,
    year_label,
    years_in_order,
)
from decommission.words import ACCESS_LOG, ARCHIVES, DIFFERENCES, ROLES, word

TEST_MILESTONE = "test_delivery"


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    #: columns holding hashes or ids, shown in a fixed-width font
    code_columns: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Chart:
    """Bars: ``grouped`` (one group per key, one bar per series) or ``horizontal`` (one bar per key)."""

    kind: str
    title: str
    groups: Mapping[str, Sequence[float]]
    series: Sequence[str] = ()


@dataclass
class Section:
    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Report:
    title: str
    #: the short mark at the top of every PDF page of a test delivery
    mark: str
    #: set on a test or production delivery: the line that says this is not the final delivery
    banner: str
    is_test: bool
    header: list[tuple[str, str]]
    verdict_line: str
    verdict: str
    sections: list[Section]


def build(
    result: Mapping[str, Any],
    t: Mapping[str, str],
    language: str,
    digest: str,
    *,
    about: Mapping[str, Any] | None = None,
    annexes: Sequence[str] = (),
) -> Report:
    """The report's content from the reconciliation result and what the plan says about the system."""
    about = about or {}
    milestone = str(result.get("milestone", ""))
    is_test = milestone == TEST_MILESTONE
    system = result["system"]
    title = f"{t['title']} – {milestone_name(milestone, language)}: {system['name']}"
    if is_test:
        title = f"{t['test_title']} – {t['title']}: {system['name']}"
    banner = t["test_banner"] if is_test else t["production_banner"] if milestone == "production_delivery" else ""
    verdict = t.get(result["verdict"], result["verdict"])
    verdict_line = (
        f"{t['verdict_of'].format(milestone=milestone_name(milestone, language).lower())}: "
        f"{verdict}{' (' + t['test_title'] + ')' if is_test else ''}"
    )
    sections = [
        _verdict(result, t, language),
        _dispositions(result, t, language),
        _tables(result, t, language),
        _checks(result, t, language),
        _coverage(result, t, language),
        _raw(result, t, language),
        _fixity(result, t, language),
        _rejections(result, t),
        _waived(result, t, language),
        _years(result, t, language),
        _units(result, t, language),
        _fingerprints(result, t, language),
        _reasons_chart(result, t, language),
        _progress(result, t, language),
        _sample(result, t, language),
    ]
    if annexes:
        sections.append(Section("annexes", t["annexes"], items=list(annexes)))
    return Report(
        title=title,
        mark=t["test_mark"] if is_test else "",
        banner=banner,
        is_test=is_test,
        header=_header(result, t, language, digest, about),
        verdict_line=verdict_line,
        verdict=str(result["verdict"]),
        sections=[s for s in sections if s.paragraphs or s.items or s.tables or s.charts],
    )


def _header(
    result: Mapping[str, Any], t: Mapping[str, str], language: str, digest: str, about: Mapping[str, Any]
) -> list[tuple[str, str]]:
    system = result["system"]
    rows = [(t["system"], f"{system['name']} ({system['id']})")]
    supplier = about.get("supplier") or system.get("supplier")
    if supplier:
        rows.append((t["supplier"], supplier))
    agreement = about.get("agreement") or {}
    if agreement:
        archive = word(ARCHIVES, agreement.get("archive"), language)
        rows.append((t["agreement"], t["agreement_text"].format(id=agreement.get("id"), archive=archive)))
    elif result.get("agreement_id"):
        rows.append((t["agreement"], str(result["agreement_id"])))
    log = about.get("access_log") or {}
    if log:
        ref = f" ({log['reference']})" if log.get("reference") else ""
        rows.append((t["access_log"], f"{word(ACCESS_LOG, log.get('disposition'), language)}{ref}"))
    rows += [
        (t["milestone"], milestone_name(str(result.get("milestone", "")), language)),
        (t["cut_off"], str(result.get("cut_off", ""))),
        (t["snapshot"], str(result.get("snapshot", ""))),
        (t["run"], str(result.get("run_id", ""))),
        (t["version"], str(result.get("software_version", ""))),
        (t["report_hash"], digest),
    ]
    key = result.get("hash_key")
    if key:
        rows.append((t["hash_key"], f"{key['id']} {t['demo_key'] if key.get('demo') else ''}".strip()))
    signers = about.get("signers") or []
    if signers and result.get("milestone") == "final_delivery":
        text = "; ".join(
            t["signer_text"].format(name=s["name"], role=word(ROLES, s["role"], language)) for s in signers
        )
        rows.append((t["signers"], text))
    return rows


def _verdict(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    section = Section("verdict", t["reasons"])
    section.items = [sentence(r, language) for r in result.get("reasons", [])]
    warnings = [sentence(w, language) for w in result.get("warnings", [])]
    if warnings:
        section.items += [f"{t['warnings']}: {w}" for w in warnings]
    return section


def _dispositions(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    totals = result["totals"]
    section = Section("dispositions", t["dispositions"])
    section.paragraphs.append(
        t["dispositions_text"].format(
            **{k: number(totals.get(k, 0), language) for k in ("archived", "flagged", "corrected", "disposed")}
        )
    )
    disp = result.get("dispositions") or {}
    classes = disp.get("classes") or []
    if classes:
        section.tables.append(
            Table(
                [t["table"], t["reason"], t["class"], t["rows"], t["decision"], t["reference"], t["waiver_by"]],
                [
                    [
                        c["table"],
                        reason_name(c["reason"], language),
                        t["class_" + c["class"]],
                        number(c["rows"], language),
                        _decision(c, t),
                        c.get("reference") or ", ".join(c.get("references") or []),
                        c.get("decided_by") or "",
                    ]
                    for c in classes
                ],
            )
        )
    corr = disp.get("corrections") or {}
    if corr.get("file"):
        section.paragraphs.append(
            t["corrections_text"].format(
                file=corr["file"],
                sha=corr.get("sha256", ""),
                listed=number(corr.get("listed", 0), language),
                rows=number(corr.get("rows_corrected", 0), language),
            )
        )
    if result.get("placeholders"):
        section.paragraphs.append(t["placeholders_text"].format(n=number(result["placeholders"], language)))
    return section


def _tables(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    section = Section("tables", t["rows_by_table"])
    section.tables.append(
        Table(
            [t["table"], t["entity"], t["source"], t["extracted"], t["archived"], t["flagged"], t["corrected"]]
            + [t["disposed"]],
            [
                [name, entity_name(row["entity"], language)]
                + [
                    number(row.get(k, 0), language)
                    for k in ("source", "extracted", "archived", "flagged_total", "corrected_total", "disposed_total")
                ]
                for name, row in result["tables"].items()
            ],
        )
    )
    section.tables.append(
        Table(
            [t["entity"], t["mapped"], t["packaged"], t["accepted"]],
            [
                [entity_name(name, language), *(number(row[k], language) for k in ("mapped", "packaged", "accepted"))]
                for name, row in result["entities"].items()
            ],
        )
    )
    packages = result.get("packages") or {}
    if packages:
        section.paragraphs.append(f"{t['packages_count']}: {number(packages.get('count', 0), language)}")
    return section


def _checks(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    return Section(
        "checks",
        t["checks"],
        tables=[
            Table(
                [t["check"], t["scope"], t["left"], t["right"], t["ok"]],
                [
                    [
                        check_name(c["name"], language),
                        scope_name(c["scope"], language),
                        number(c["left"], language),
                        number(c["right"], language),
                        t["ok_yes"] if c["ok"] else t["ok_no"],
                    ]
                    for c in result.get("checks", [])
                ],
            )
        ],
    )


def _coverage(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    cov = result.get("coverage") or {}
    section = Section("coverage", t["coverage"])
    if not cov:
        return section
    columns = sum(cov["columns_by_class"].values())
    covered = columns - cov["columns_by_class"].get("unclassified", 0)
    section.paragraphs.append(
        t["coverage_text"].format(
            covered=number(covered, language),
            columns=number(columns, language),
            pct=percent(cov.get("coverage"), language),
        )
    )
    tables = cov.get("tables") or []
    if tables:
        section.tables.append(
            Table(
                [t["table"], t["source"], t["rows_after_cutoff"], t["class"]],
                [
                    [
                        tb["table"],
                        number(tb.get("rows", 0), language),
                        number(tb.get("rows_after_cutoff", 0), language),
                        t["class_" + tb["class"]],
                    ]
                    for tb in tables
                ],
            )
        )
        section.tables.append(
            Table(
                [t["table"], t["column"], t["class"], t["by"]],
                [
                    [tb["table"], c["name"], t["class_" + c["class"]], c.get("by") or ""]
                    for tb in tables
                    for c in tb.get("columns", [])
                ],
            )
        )
    return section


def _raw(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    """The SIARD part: per table its rows against the source less those disposed of."""
    raw = result.get("raw") or {}
    section = Section("raw", t["raw"])
    if not raw.get("tables"):
        return section
    section.paragraphs.append(
        t["raw_text"].format(
            rows=number(raw.get("rows", 0), language), expected=number(raw.get("expected", 0), language)
        )
    )
    section.tables.append(
        Table(
            [t["table"], t["source"], t["disposed"], t["raw_expected"], t["raw_siard"]],
            [
                [tb["table"], *(number(tb[k], language) for k in ("source", "disposed", "expected", "siard"))]
                for tb in raw["tables"]
            ],
        )
    )
    return section


def _fixity(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    fx = result.get("fixity") or {}
    section = Section("fixity", t["fixity"])
    if not fx:
        return section
    section.paragraphs.append(
        t["fixity_text"].format(
            audited=number(fx.get("audited_whole", 0), language),
            sent=number((fx.get("holdings") or {}).get("sent", 0), language),
        )
    )
    if fx.get("packages"):
        section.tables.append(
            Table(
                [t["packages"], t["sent_sha256"], t["read_sha256"], t["ok"]],
                [
                    [p["package_id"], p["sent_sha256"], p.get("sha256") or p.get("error") or "", _ok(p["ok"], t)]
                    for p in fx["packages"]
                ],
                code_columns=frozenset({1, 2}),
            )
        )
    return section


def _rejections(result: Mapping[str, Any], t: Mapping[str, str]) -> Section:
    rows = [[x["package_id"], x["requirement"], x["path"], x["message"]] for x in result.get("rejections") or []]
    section = Section("rejections", t["rejections"])
    if rows:
        section.tables.append(Table([t["packages"], t["requirement"], t["path"], t["message"]], rows))
    return section


def _waived(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    section = Section("waived", t["waived"])
    rows = [
        [
            check_name(w["name"], language),
            scope_name(w["scope"], language),
            number(w["left"], language),
            number(w["right"], language),
            w["waiver"]["by"],
            f"{w['waiver']['reason']} {w['waiver'].get('reference', '')}".strip(),
        ]
        for w in result.get("waived") or []
    ]
    if rows:
        section.tables.append(
            Table([t["check"], t["scope"], t["left"], t["right"], t["waiver_by"], t["waiver_reason"]], rows)
        )
    return section


def _years(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    years = (result.get("breakdown") or {}).get("years") or {}
    section = Section("by_year", t["by_year"])
    if not years:
        return section
    order = years_in_order(years)
    section.charts.append(
        Chart(
            "grouped",
            t["by_year"],
            {year_label(y, t): (years[y]["source"], years[y]["archived"]) for y in order},
            (t["source"], t["archived"]),
        )
    )
    section.tables.append(
        Table(
            [t["year"], t["source"], t["extracted"], t["archived"], t["flagged"], t["disposed"]],
            [
                [year_label(y, t)]
                + [number(years[y].get(k, 0), language) for k in ("source", "extracted", "archived", "flagged")]
                + [number(years[y].get("disposed", 0), language)]
                for y in order
            ],
        )
    )
    return section


def _units(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    units = (result.get("breakdown") or {}).get("units") or []
    section = Section("by_unit", t["by_unit"])
    if units:
        section.tables.append(
            Table(
                [t["table"], t["unit"], t["source"], t["extracted"], t["archived"], t["flagged"], t["disposed"]],
                [
                    [x["table"], year_label(str(x["unit"]), t)]
                    + [number(x.get(k, 0), language) for k in ("source", "extracted", "archived", "flagged")]
                    + [number(x.get("disposed", 0), language)]
                    for x in units
                ],
            )
        )
    return section


def _fingerprints(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    b = result.get("breakdown") or {}
    section = Section("fingerprints", t["fingerprints"])
    fps = b.get("fingerprints") or {}
    if fps:
        section.tables.append(
            Table(
                [t["entity"], t["rows"], t["source_side"], t["package_side"], t["ok"]],
                [
                    [
                        entity_name(e, language),
                        number(f.get("rows", 0), language),
                        f["source"],
                        f["package"],
                        _ok(f["source"] == f["package"], t),
                    ]
                    for e, f in fps.items()
                ],
                code_columns=frozenset({2, 3}),
            )
        )
    patients = b.get("patients")
    if patients is not None:
        section.paragraphs.append(
            t["patients_differing_text"].format(
                n=number(len(patients.get("differing", [])), language), count=number(patients.get("count", 0), language)
            )
        )
    return section


def _reasons_chart(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    section = Section("by_reason", t["by_reason"])
    found = result.get("findings_by_reason") or {}
    if found:
        section.charts.append(
            Chart("horizontal", t["by_reason"], {reason_name(k, language): (v,) for k, v in found.items()})
        )
        # the codes stand beside the names in the annexes; the report names them in words
        section.tables.append(
            Table([t["reason"], t["rows"]], [[reason_name(k, language), number(v, language)] for k, v in found.items()])
        )
    return section


def _progress(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    progress = [*result.get("progress", []), {"milestone": result.get("milestone", ""), **result["totals"]}]
    return Section(
        "progress",
        t["progress"],
        charts=[
            Chart(
                "grouped",
                t["progress"],
                {milestone_name(str(p["milestone"]), language): (p["source"], p["archived"]) for p in progress},
                (t["source"], t["archived"]),
            )
        ],
    )


def _sample(result: Mapping[str, Any], t: Mapping[str, str], language: str) -> Section:
    sample = result.get("sample") or {}
    section = Section("sample", t["sample"])
    mismatches = sample.get("mismatches") or []
    section.paragraphs.append(
        f"{t['checked']}: {number(sample.get('checked', 0), language)} ({t['seed']} {sample.get('seed', '')}); "
        f"{t['mismatches']}: {number(len(mismatches), language)}."
    )
    text = justification(sample, t, language)
    if text:
        section.paragraphs.append(f"{t['justification']}: {text}")
    rows = [
        [
            m["package_id"],
            m["patient"],
            entity_name(d["entity"], language),
            d["record"],
            d["field"],
            word(DIFFERENCES, d["kind"], language),
        ]
        for m in mismatches
        for d in m.get("differences", [])
    ]
    if rows:
        section.tables.append(
            Table(
                [t["packages"], t["patient"], t["entity"], t["record"], t["field"], t["kind"]],
                rows,
                code_columns=frozenset({1, 3}),
            )
        )
    return section


def justification(sample: Mapping[str, Any], t: Mapping[str, str], language: str) -> str:
    """In plain words: what the sample checked, what a sample of its size can catch, and what it cannot show."""
    j = sample.get("justification")
    if not j:
        return ""
    detect = j["chance_to_detect_damaged_share"]
    text = t["justification_text"].format(
        drawn=number(j["drawn"], language),
        population=number(j["population"], language),
        pct=percent(j["share_checked"], language),
        share5=percent(0.05, language, 0),
        share10=percent(0.10, language, 0),
        p5=percent(detect.get("5%"), language, 0),
        p10=percent(detect.get("10%"), language, 0),
    )
    found = len(sample.get("mismatches") or [])
    if found:
        text += t["justification_found"].format(found=number(found, language))
    else:
        text += t["justification_none"].format(ub=percent(j["upper_bound_95"], language))
    return text + t["justification_limits"]


def _decision(c: Mapping[str, Any], t: Mapping[str, str]) -> str:
    kind = c.get("decision_kind")
    return str(c.get("decision") or "") if kind == "declared" else t["decision_" + str(kind)]


def _ok(ok: bool, t: Mapping[str, str]) -> str:
    return t["ok_yes"] if ok else t["ok_no"]
