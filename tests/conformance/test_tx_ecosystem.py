"""The HL7 terminology ecosystem tests (general suites) against vnehr: one case per test.

How requests are made and answers judged: tx_ecosystem.py and tx_compare.py (they follow the
official Java runner, TxTester). The cases in data/tx-ecosystem/known-failures.txt are expected
to fail (strictly: one that passes fails the run until its line goes); every other case must
pass. vnehr (SQLite) runs in a child process, so that a request that never returns (the regex-bad
suite) can be given up after tx_ecosystem.REQUEST_TIMEOUT seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance import tx_ecosystem
from tests.conformance.tx_ecosystem import Case, TxServer

CASES = tx_ecosystem.load_cases()
KNOWN = tx_ecosystem.load_known_failures()


def _param(case: Case) -> object:
    marks = []
    if case.id in KNOWN:
        # raises=AssertionError: a crash of the harness is a failure, not an expected one
        marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason="known failure"))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TxServer]:
    """One vnehr for every suite, as the Java runner tests one server (setup resources travel
    inline with each request, so nothing is loaded per suite); restarted only after a request
    that got no answer."""
    with TxServer(tmp_path_factory.mktemp("tx-ecosystem")) as s:
        yield s


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case: Case, server: TxServer) -> None:
    outcome = tx_ecosystem.run_case(server, case)
    assert outcome.passed, outcome.reason


def test_the_known_failures_are_cases() -> None:
    ids = {case.id for case in CASES}
    assert ids >= KNOWN, sorted(KNOWN - ids)


def test_every_case_has_its_files() -> None:
    data = tx_ecosystem.DATA
    for case in CASES:
        files = [case.request, case.response, case.profile, *case.setup]
        files += [case.response2] if case.response2 else []
        missing = [f for f in files if not (data / f).exists()]
        assert not missing, (case.id, missing)


def test_the_general_suites_are_all_there() -> None:
    suites = {case.suite for case in CASES}
    assert len(suites) == 24
    assert len(CASES) == 595  # 598 general tests, less 3 that need the tx.fhir.org mode


# Setup resources that are not valid R4 as sent, and why: defects of the data (the first
# three are not valid R5 either; broken-filter on purpose) or of the conversion to R4, which
# the Java runner makes the same way. A server that validates tx-resource strictly fails the
# tests that use them.
INVALID_AS_SENT = {
    "other/codesystem-dual-filter.json": "no status",
    "other/valueset-dual-filter.json": "no status",
    "errors/valueset-broken-filter.json": "a filter without a value (the test's point)",
    "deprecated/valueset-deprecating.json": "valueset-deprecated extension with a code value",
    "translate/ConceptMap-full.json": "R5 source-is-broader-than-target is R4 narrower: cmd-1",
    "translate/ConceptMap-novs.json": "R5 source-is-broader-than-target is R4 narrower: cmd-1",
}


def test_the_requests_are_valid_r4() -> None:
    """The R5 to R4 conversion leaves nothing an R4 server should refuse in the setup
    resources sent, but for the known defects."""
    from vnehr.fhir.json import loads
    from vnehr.fhir.validation import validate

    invalid: dict[str, list[str]] = {}
    for name in sorted({name for case in CASES for name in case.setup}):
        sent = tx_ecosystem.dump_json(tx_ecosystem.r5_to_r4(tx_ecosystem.load(name)))
        issues = validate(loads(sent))  # as the server reads it
        errors = [i.diagnostics for i in issues if i.severity in ("error", "fatal")]
        if errors:
            invalid[name] = errors
    assert set(invalid) == set(INVALID_AS_SENT), invalid


def test_numbers_are_sent_as_numbers() -> None:
    case = next(c for c in CASES if c.id == "simple-cases/simple-expand-all-count")
    request = tx_ecosystem.build_request(case)
    assert request.method == "POST" and request.url == "/fhir/ValueSet/$expand"
    assert request.body is not None and b'"valueInteger":0' in request.body


def test_the_known_failures_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "known.txt"
    tx_ecosystem.write_known_failures(
        ["version/coding-v10-vsbb#2", "simple-cases/simple-expand-all"], path
    )
    text = path.read_text("utf-8")
    assert text.startswith("#")
    assert text.index("simple-cases/") < text.index("version/")
    assert tx_ecosystem.load_known_failures(path) == {
        "version/coding-v10-vsbb#2",
        "simple-cases/simple-expand-all",
    }
