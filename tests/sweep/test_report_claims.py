"""results/check_report.py: a number in REPORT.md passes only when a table it cites holds it (the
same text in Markdown, a cell that rounds to it in CSV, with its sign), and results/REPORT.md
itself passes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "results"
_spec = importlib.util.spec_from_file_location("check_report", RESULTS / "check_report.py")
check_report = sys.modules.setdefault("check_report", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(check_report)  # registered first: its dataclasses look themselves up

TABLE_MD = """# t: evidence report

| strategy | total_bytes | test_logloss | mean difference |
|---|---|---|---|
| `hash` | 126.6 KiB | 0.5057 +- 0.0018 | -0.0396 |
| `qr` | 2.0 MiB | 0.4926 +- 0.0028 | +0.0036 |

Sweep: 121,389 ids.
"""
TABLE_CSV = """strategy,n_seeds,total_bytes,test_logloss,test_logloss_ci,vs_hash,vs_hash_ci,rare
hash,3,129638,0.5073471047993122,0.007058713820448319,,,0.2331
qr,3,2097152,0.4926,0.0028,-0.0022142050346180366,0.0095532,0.1
"""


def _failures(tmp_path: Path, body: str) -> list:
    results = tmp_path / "results"
    (results / "t").mkdir(parents=True, exist_ok=True)
    (results / "t" / "report.md").write_text(TABLE_MD)
    (results / "t" / "matched.csv").write_text(TABLE_CSV)
    report = results / "REPORT.md"
    report.write_text("# Title\n\n## Section\n\n" + body)
    return check_report.check(report, results)


@pytest.mark.parametrize("claim", [
    "The mean difference is -0.0396 (`t/report.md`: row `hash`).",
    "Unsigned, it is lower by 0.0396 (`t/report.md`: row `hash`).",
    "It reaches 0.5057 +- 0.0018 at 126.6\n  KiB (`t/report.md`: row `hash`).",
    "It is between 2.0 MiB and +0.0036 over 121,389 ids (`t/report.md`).",
    "`hash` reaches 0.5073 (`t/matched.csv`: row `hash`).",
    "`qr` is -0.0022 +- 0.0096 against hash (`t/matched.csv`: row `qr`, column `vs_hash`).",
    "The rare share is 23.3% (`t/matched.csv`), 23% rounded, at 126.6 KiB and 3 seeds.",
    "A signed CSV number keeps its sign: -0.002 (`t/matched.csv`); unsigned 0.0022 too.",
])
def test_numbers_in_the_cited_table_pass(tmp_path, claim):
    assert _failures(tmp_path, claim + "\n") == []


@pytest.mark.parametrize(("claim", "number"), [
    ("The mean difference is -0.0397 (`t/report.md`: row `hash`).", "-0.0397"),
    ("A wrong sign: +0.0396 (`t/report.md`: row `hash`).", "+0.0396"),
    ("A wrong sign in CSV: +0.0022 (`t/matched.csv`: row `qr`).", "+0.0022"),
    ("A wrong rounding: 0.5074 (`t/matched.csv`: row `hash`).", "0.5074"),
    ("A pair from two rows: 0.5073 +- 0.0028 (`t/matched.csv`).", "0.5073 +- 0.0028"),
    ("A pair not together: 0.5057 +- 0.0028 (`t/report.md`).", "0.5057 +- 0.0028"),
    ("A count is no rounding: 4 seeds (`t/matched.csv`).", "4"),
    ("A size: 126.7 KiB (`t/matched.csv`).", "126.7 KiB"),
    ("A derived ratio: at 1/36 of its size (`t/report.md`).", "1/36"),
    ("A derived word: it loses a quarter of its lead (`t/report.md`).", "a quarter"),
])
def test_a_number_not_in_the_cited_table_fails(tmp_path, claim, number):
    [failure] = _failures(tmp_path, claim + "\n")
    assert (failure.number, failure.kind, failure.line) == (number, check_report.NOT_FOUND, 5)
    assert f'REPORT.md:5: "{number}" not found in t/' in str(failure)


def test_a_numeric_claim_without_a_citation_fails(tmp_path):
    failures = _failures(tmp_path, "Some text.\n\n- It is 0.5057 +- 0.0018, on\n  13 cells.\n")
    assert [(f.line, f.number, f.kind) for f in failures] == [
        (7, "0.5057 +- 0.0018", "no citation"), (8, "13", "no citation")]
    assert str(failures[0]) == 'REPORT.md:7: "0.5057 +- 0.0018" no citation'


def test_a_bare_section_citation_means_the_last_file_cited_in_the_section(tmp_path):
    body = ("First (`t/report.md`: \"Against hash\").\n\n"
            "- Then -0.0396 (\"Every configuration\"), and 0.5073 (same table).\n\n"
            "## Next section\n\nHere -0.0396 (\"Frontier\").\n")
    failures = _failures(tmp_path, body)
    assert [(f.line, f.number, f.kind) for f in failures] == [
        (7, "0.5073", check_report.NOT_FOUND), (11, "-0.0396", check_report.NO_CITATION)]
    assert failures[0].files == ("t/report.md",)


def test_a_cited_file_that_is_not_there_fails(tmp_path):
    missing, number = _failures(tmp_path, "It is -0.0396 (`t/missing.md`).\n")
    assert str(missing) == 'REPORT.md:5: cited file "t/missing.md" does not exist'
    assert (number.number, number.kind) == ("-0.0396", check_report.NO_CITATION)


def test_globs_and_placeholders_cite_every_file_they_match(tmp_path):
    assert _failures(tmp_path, "-0.0396 and 0.5073 (`t/*.md`, `<data>/matched.csv`).\n") == []


@pytest.mark.parametrize("text", [
    "Names: `hash-c64-d8`, `frequency_embedding-c2-d8`, `drift-0.05`, `id_noise`.",
    "At 64x d8, 2x..64x and 4x-16x, dims 8, 16, 32, over seeds 0, 1, 2 and six seeds (0 to 5).",
    "A 95% confidence interval, 2 degrees of freedom, t = 4.30, excludes 0 in window 1.",
    "(Ghaemmaghami et al., 2022), MovieLens-100K, 1M rows, torch 2.13.0, on 2026-11-29.",
    "A map entry is 12 bytes: 8-byte key, 4-byte row.",
    "Machine: Intel Xeon, 2 CPUs, 24 GiB.",
    "# 3. A heading with 42\n\n![frontier 7](t/frontier.png)\n\n    collide sweep --seeds 17\n\n"
    "```\npython x.py 99\n```",
])
def test_ignored_numbers_need_no_citation(tmp_path, text):
    assert _failures(tmp_path, text + "\n") == []


def test_main_prints_the_failures_and_a_summary(tmp_path, capsys):
    _failures(tmp_path, "Good -0.0396 and bad -0.0397 (`t/report.md`).\n\n## S2\n\nNone: 7.\n")
    assert check_report.main([str(tmp_path / "results" / "REPORT.md")]) == 1
    assert capsys.readouterr().out.splitlines() == [
        'REPORT.md:5: "-0.0397" not found in t/report.md',
        'REPORT.md:9: "7" no citation',
        "2 claims, 3 numbers checked, 2 not found",
    ]
    (tmp_path / "results" / "REPORT.md").write_text("## S\n\n-0.0396 (`t/report.md`).\n")
    assert check_report.main([str(tmp_path / "results" / "REPORT.md")]) == 0


def test_every_number_in_the_real_report_is_in_a_table_it_cites():
    failures = check_report.check(RESULTS / "REPORT.md", RESULTS)
    assert failures == [], "\n".join(map(str, failures))
