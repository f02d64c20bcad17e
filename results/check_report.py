"""Every number in results/REPORT.md must be in a generated table the report cites: the check.

    python results/check_report.py [results/REPORT.md]

prints one line per number it cannot find (`REPORT.md:LINE: "NUMBER" not found in FILES`, or
`no citation`), then `N claims, M numbers checked, K not found`, and exits 1 if any failed.

A claim is a paragraph or a list item with its continuation lines; headings, fenced and indented
code blocks and image lines are not claims. A claim cites tables as backticked paths relative to
results/ ending in .md or .csv (`paper-synthetic/report.md`, `staleness/drift-*/staleness.csv`;
globs and `<placeholders>`, which match like `*`, cite every file they match). A claim without
such a path, like one that cites only a section ("Frontier"), (same table), uses the paths of the
last claim that had some in the same `##` section; with none, its numbers fail as "no citation".

A number is found in a Markdown file as the same text: `-0.0396`, `0.5057 +- 0.0018` (the pair
together), `126.6 KiB`, `121,389` (or 121389); a percentage also as the fraction with the same
digits (23.3% as 0.233). It is found in a CSV file when a cell rounds to it at its quoted decimals:
0.5073 from 0.50734..., 23.3% from 0.2331..., 126.6 KiB from 129638 (bytes); a count only from an
equal integer; `a +- b` from one row's `c` and `c_ci`. A signed number must have its sign in the
table; an unsigned one ("by 0.0076") may have either. Derived numbers (1/36, 40% of a size, "a
quarter", a difference the text computes) are in no table, so they fail like a wrong number:
"derived or not found".

Not checked: the citations themselves (what follows a cited path up to `;` or `)`; a parenthesis
that opens with a quote, "row", "rows", "the rows", "same" or "section"), backticked text (names
such as `hash-c64-d8`, `drift-0.05`), link targets, numbers glued to letters (`d8`, `1M`,
`MovieLens-100K`), compressions (`64x`, `2x..64x`), version numbers (2.13.0), and the phrases in
IGNORED below, each with its reason.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (pattern, reason): numbers inside a match are not claims. Keep it short: a number a table
# should hold belongs in that table, not here.
IGNORED: tuple[tuple[str, str], ...] = (
    (r"\b(?:19|20)\d\d-\d\d-\d\d\b", "a date"),
    (r"\bet al\., (?:19|20)\d\d\b", "the year in a citation of a paper"),
    (r"\bseeds\W*(?:\d+(?:, \d+)+|\(\d+ to \d+\))", "a seed list names runs, measures nothing"),
    (r"\bdims? \d+(?:, \d+)*", "dims are a configuration's coordinates, like `d8`"),
    (r"\bt = \d+\.\d+|\b95% confidence|\b\d+ degrees of freedom",
     "the intervals' level, degrees of freedom and t quantile: the method, not a result"),
    (r"\b12 bytes\b|\b[48]-byte\b",
     "a learned map's entry, 8-byte key + 4-byte row: ID_BYTES in mappers/base.py"),
    (r"\b(?:excludes?|excluding|holds) 0\b", "0, the no-difference point an interval holds or not"),
    (r"\bwindows? \d+", "a test window's index names a column, like a compression"),
    (r"^Machine:.*", "the machine the results were made on"),
)

NOT_FOUND, NO_CITATION, MISSING_FILE = "derived or not found", "no citation", "missing file"

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+")
HEADING = re.compile(r"^(#{1,6})\s")
IMAGE = re.compile(r"^!\[[^\]]*\]\([^)]*\)$")
BACKTICKED = re.compile(r"`([^`\n]+)`")
CITED_PATH = re.compile(r"^(?:results/)?([\w.*<>/-]+\.(?:md|csv))$")
LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
CITATION_ONLY = re.compile(r'^\s*(?:"|same\b|rows?\b|the rows\b|section\b)', re.IGNORECASE)
TOKEN = re.compile(
    r"(?P<sign>[-+\u2212])?"
    r"(?P<body>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.(?P<frac>\d+))?"
    r"(?:/(?P<den>\d+))?"
    r"(?P<x>x(?![A-Za-z]))?"
    r"(?P<pct>%)?"
    r"(?:\s+(?P<unit>B|KiB|MiB|GiB)\b)?"
)
FRACTION_WORD = re.compile(
    r"\b(?:a|one) (?:half|third|quarter|fifth|sixth|seventh|eighth|ninth|tenth)\b"
    r"|\b(?:two|three) (?:thirds|quarters)\b", re.IGNORECASE)
PAIR_JOIN = re.compile(r"\s*(?:\+-|\u00b1)\s*$")
RANGE_SUFFIX = re.compile(r"-\d[\d.]*(?P<pct>%)|\s+to\s+\d[\d.]*\s+(?P<unit>B|KiB|MiB|GiB)\b")


@dataclass(frozen=True)
class Failure:
    """One number the report cannot back with a table it cites (or a cited file that is not
    there: `kind` MISSING_FILE, `number` empty, `files` the path as cited)."""

    report: str
    line: int
    number: str
    kind: str
    files: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.report}:{self.line}:"
        if self.kind == MISSING_FILE:
            return f'{where} cited file "{self.files[0]}" does not exist'
        if self.kind == NO_CITATION:
            return f'{where} "{self.number}" no citation'
        return f'{where} "{self.number}" not found in {", ".join(self.files)}'


@dataclass(frozen=True)
class Number:
    """A number as the report quotes it."""

    text: str
    sign: str | None = None  # "-", "+" or None (unsigned: either sign matches)
    body: str = ""  # the integer part as written, commas included
    frac: str = ""  # the decimals as written
    pct: bool = False
    unit: str | None = None
    den: str | None = None  # a fraction n/den: derived, only ever found as text
    word: str | None = None  # "a quarter": derived, only ever found as text
    ci: Number | None = None  # `text +- ci`, found together

    @property
    def value(self) -> float:
        return float(self.body.replace(",", "") + ("." + self.frac if self.frac else ""))

    def pattern(self) -> re.Pattern[str]:
        """Where a Markdown file quotes it."""
        if self.word:
            return re.compile(r"\b" + re.escape(self.word) + r"\b", re.IGNORECASE)
        if self.den:
            return re.compile(rf"(?<![\w./]){self.body}/{self.den}(?![\w/])")
        core = self._core()
        if self.ci:
            core += r"\s*(?:\+-|\u00b1)\s*" + self.ci._core()
        return re.compile(core)

    def _core(self) -> str:
        sign = {None: "[-+\u2212]?", "-": "[-\u2212]", "+": r"\+"}[self.sign]
        frac = r"\." + self.frac if self.frac else ""
        bodies = {re.escape(self.body), self.body.replace(",", "")}
        digits = "(?:" + "|".join(sorted(bodies)) + ")" + frac
        if self.pct:
            decimals = len(self.frac) + 2
            digits = f"(?:{digits}\\s?%|{re.escape(f'{self.value / 100:.{decimals}f}')})"
        elif self.unit:
            digits += r"\s+" + self.unit
        return r"(?<![\w.])" + sign + digits + r"(?![\w%]|\.\d)"

    def matches_cell(self, cell: float) -> bool:
        """Whether a CSV cell rounds to it at its quoted decimals (a count: equals it)."""
        if self.den or self.word:
            return False
        if (self.sign == "-" and not cell < 0) or (self.sign == "+" and not cell > 0):
            return False
        size = abs(cell) * 100 if self.pct else abs(cell) / UNITS.get(self.unit or "B", 1)
        if not (self.frac or self.pct or self.unit):
            return size == self.value
        return abs(size - self.value) <= 0.5 * 10 ** -len(self.frac) * (1 + 1e-9)


@dataclass
class _Table:
    text: str
    rows: list[dict[str, float]] | None  # a CSV file's numeric cells; None for Markdown


def check(report_path: Path, results_dir: Path) -> list[Failure]:
    """Every failure of the report at report_path, its citations relative to results_dir."""
    return _check(report_path, results_dir)[0]


def _check(report_path: Path, results_dir: Path) -> tuple[list[Failure], int, int]:
    """(failures, claims with a number to check, numbers checked)."""
    failures: list[Failure] = []
    tables: dict[Path, _Table] = {}
    claims = checked = 0
    section, inherited = -1, ()
    for unit_section, first_line, text in _units(report_path.read_text().splitlines()):
        if unit_section != section:
            section, inherited = unit_section, ()
        cited, numbers = _parse(text, first_line, results_dir)
        files: list[Path] = []
        if cited:
            inherited = tuple(dict.fromkeys(pattern for pattern, _ in cited))
            for i, (pattern, line) in enumerate(cited):
                if (pattern, line) in cited[:i]:
                    continue
                matched = _resolve(results_dir, pattern)
                if not matched:
                    failures.append(Failure(report_path.name, line, "", MISSING_FILE, (pattern,)))
                files += matched
        else:
            files = [p for pattern in inherited for p in _resolve(results_dir, pattern)]
        if not numbers:
            continue
        claims += 1
        checked += len(numbers)
        for number, line in numbers:
            if not files:
                failures.append(Failure(report_path.name, line, number.text, NO_CITATION))
            elif not any(_found(number, _table(tables, f)) for f in files):
                failures.append(Failure(report_path.name, line, number.text, NOT_FOUND,
                                        inherited))
    return failures, claims, checked


def _units(lines: list[str]) -> Iterator[tuple[int, int, str]]:
    """(section index, first line number, text) of each claim unit; a list item's marker is
    blanked out, and the text keeps the unit's line breaks."""
    section = 0
    unit: list[str] = []
    first = 0
    fenced = in_code = False
    blank_before = True
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
        code = fenced or stripped.startswith(("```", "~~~")) or (
            line.startswith(("    ", "\t")) and (blank_before or in_code) and not unit)
        in_code = code and not fenced
        heading = HEADING.match(line)
        item = LIST_ITEM.match(line)
        if unit and (code or not stripped or heading or IMAGE.match(stripped) or item):
            yield section, first, "\n".join(unit)
            unit = []
        blank_before = not stripped
        if code or not stripped or IMAGE.match(stripped):
            continue
        if heading:
            section += len(heading.group(1)) <= 2
            continue
        if not unit:
            first = number
        unit.append(" " * item.end() + line[item.end():] if item else line)
    if unit:
        yield section, first, "\n".join(unit)


def _parse(text: str, first_line: int,
           results_dir: Path) -> tuple[list[tuple[str, int]], list[tuple[Number, int]]]:
    """The paths a unit cites and the numbers it claims, each with its line."""
    def line_of(offset: int) -> int:
        return first_line + text.count("\n", 0, offset)

    masked = list(text)

    def mask(start: int, end: int) -> None:
        masked[start:end] = [c if c == "\n" else " " for c in text[start:end]]

    cited, path_spans = [], []
    for match in BACKTICKED.finditer(text):
        path = CITED_PATH.match(match.group(1).strip())
        if path and ("/" in path.group(1) or _resolve(results_dir, path.group(1))):
            # (a bare name that is not there, "`report.md` files", is prose, not a citation)
            cited.append((re.sub(r"<[^>]*>", "*", path.group(1)), line_of(match.start())))
            path_spans.append(match.span())
        mask(*match.span())
    for match in LINK_TARGET.finditer(text):
        mask(match.start() + 1, match.end())
    parens = _parens(text)
    for start, end in parens:
        if CITATION_ONLY.match(text[start + 1:end]):
            mask(start, end + 1)
        for path_start, path_end in path_spans:  # a path's selector, in its innermost parens
            if start < path_start < end and not any(
                    start < s < path_start < e < end for s, e in parens):
                stop = text.find(";", path_end, end)
                mask(path_start, end if stop < 0 else stop)
    for pattern, _ in IGNORED:
        for match in re.finditer(pattern, "".join(masked), re.MULTILINE):
            mask(*match.span())
    plain = "".join(masked)
    numbers = _numbers(plain)
    numbers += [(Number(m.group(0), word=m.group(0)), m.start())
                for m in FRACTION_WORD.finditer(plain)]
    numbers.sort(key=lambda pair: pair[1])
    return cited, [(number, line_of(offset)) for number, offset in numbers]


def _parens(text: str) -> list[tuple[int, int]]:
    """(open, close) offsets of each balanced parenthesis."""
    spans, stack = [], []
    for i, c in enumerate(text):
        if c == "(":
            stack.append(i)
        elif c == ")" and stack:
            spans.append((stack.pop(), i))
    return spans


def _numbers(text: str) -> list[tuple[Number, int]]:
    """The numbers in masked unit text that are claims, with their offsets; `a +- b` is one."""
    found: list[tuple[Number, int, int]] = []
    for m in TOKEN.finditer(text):
        sign, start = m.group("sign"), m.start()
        if sign:
            before = text[start - 1] if start else " "
            if before.isalnum() or before in ")_%.":  # a range (23-40%) or a hyphen, not a sign
                sign, start = None, start + 1
        before = text[start - 1] if start else " "
        if before.isalpha() or before in "_./":
            continue  # part of a name: d8, c64
        if before == "-" and start >= 2 and text[start - 2].isalpha():
            continue  # MovieLens-100K
        after = text[m.end():m.end() + 2]
        if m.group("x") or (after[:1].isalpha() or after[:1] == "_"):
            continue  # a compression (64x) or part of a name (100K, 1M)
        if m.group("frac") and re.match(r"\.\d", after):
            continue  # a version, 2.13.0
        pct, unit = bool(m.group("pct")), m.group("unit")
        if not (pct or unit or m.group("den")):  # the suffix of a range: 23-40%, 95.3 to 165.7 KiB
            rest = RANGE_SUFFIX.match(text, m.end())
            if rest:
                pct, unit = rest.group("pct") is not None, rest.group("unit")
        number = Number(" ".join(text[start:m.end()].split()),
                        sign=sign.replace("\u2212", "-") if sign else None,
                        body=m.group("body"), frac=m.group("frac") or "", pct=pct, unit=unit,
                        den=m.group("den"))
        if found and not (number.pct or number.unit or number.den):
            previous, previous_start, previous_end = found[-1]
            if (previous.ci is None and not (previous.pct or previous.unit or previous.den)
                    and PAIR_JOIN.match(text[previous_end:start]) and number.sign is None):
                pair = Number(" ".join(text[previous_start:m.end()].split()), previous.sign,
                              previous.body, previous.frac, ci=number)
                found[-1] = (pair, previous_start, m.end())
                continue
        found.append((number, start, m.end()))
    return [(number, start) for number, start, _ in found]


def _resolve(results_dir: Path, pattern: str) -> list[Path]:
    """The files a cited path names, relative to results/."""
    if any(c in pattern for c in "*?["):
        return sorted(p for p in results_dir.glob(pattern) if p.is_file())
    path = results_dir / pattern
    return [path] if path.is_file() else []


def _table(tables: dict[Path, _Table], path: Path) -> _Table:
    if path not in tables:
        text = path.read_text()
        rows = None
        if path.suffix == ".csv":
            rows = [{key: value for key, value in ((k, _float(v)) for k, v in row.items() if k)
                     if value is not None} for row in csv.DictReader(text.splitlines())]
        tables[path] = _Table(text, rows)
    return tables[path]


def _float(cell: str | None) -> float | None:
    try:
        return float(cell) if cell else None
    except ValueError:
        return None


def _found(number: Number, table: _Table) -> bool:
    if table.rows is None:  # Markdown: the same text
        return bool(number.pattern().search(table.text))
    if number.ci:
        ci = number.ci
        return any(number.matches_cell(row[key]) and ci.matches_cell(row[key + "_ci"])
                   for row in table.rows for key in row if key + "_ci" in row)
    return any(number.matches_cell(cell) for row in table.rows for cell in row.values())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        raise SystemExit("usage: python results/check_report.py [results/REPORT.md]")
    report = Path(args[0]) if args else HERE / "REPORT.md"
    failures, claims, checked = _check(report, report.resolve().parent)
    for failure in failures:
        print(failure)
    missing = sum(f.kind == MISSING_FILE for f in failures)
    summary = f"{claims} claims, {checked} numbers checked, {len(failures) - missing} not found"
    print(summary + (f", {missing} cited files missing" if missing else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
