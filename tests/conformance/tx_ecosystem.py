"""The HL7 terminology ecosystem tests (data/tx-ecosystem, see its SOURCE.txt) run against
vnehr: loading the cases, building each request as the official Java runner does, running one
case and judging it. Used by test_tx_ecosystem.py (pytest) and tx_ecosystem_report.py (a report).

What the runner (org.hl7.fhir.validation.special.TxTester, hapifhir/org.hl7.fhir.core) does, and
so what this does:
- Suites run when they have no "mode" or their mode is on; we run the "general" suites (the
  only ones copied). A test with a "mode" runs only in that mode (TxTester.runSuite).
- The request is the test's Parameters file, then one "tx-resource" parameter per setup
  resource of the suite, then the parameters of the test's "profile" file, or of
  parameters-default.json when it has none (TxTester.expand/validate/..., loadProfile). Setup
  resources are never stored on the server: they travel with every request.
- An R4 server gets R4: TerminologyClientR4 converts the R5 Parameters (and the resources in
  it) with VersionConvertorFactory_40_50; r5_to_r4 below does what that changes for this data.
- The call, by operation (TerminologyClientR4 over FHIRToolingClient, JSON, mime types with
  "; fhirVersion=4.0"): expand POST ValueSet/$expand; validate-code POST ValueSet/$validate-code;
  cs-validate-code POST CodeSystem/$validate-code; lookup POST CodeSystem/$lookup; translate POST
  ConceptMap/$translate; batch-validate POST ValueSet/$batch-validate-code. The two
  validate-codes go through FHIRToolingClient.operateType, which uses GET with the parameters in
  the query when every parameter is a primitive (never here: tx-resource is a resource).
  "Accept-Language" of the test becomes that header; "X-Request-Id" names the test. The
  server is vnehr as the API tests build it (create_app, SQLite, dev=True), one for the whole
  run as the runner tests one server, served by uvicorn in a child process (TxServer) so that
  a request that never returns can be given up.
- The expected answer is "response:<mode>" when the test has one for a mode that is on, else
  "response" (TxTester.chooseParam). "http-code" (2xx by default) is the class the status must
  be in; a wrong class fails the test whatever the body ("Response Code fail"). An answer
  outside 2xx must carry an OperationOutcome, which is then what is compared.
- tx_compare.normalize_response and tx_compare.Comparator compare (see there).

Modes: MODES is {"flat"}: vnehr returns flat expansions, and the readme says a server that does
not return hierarchical ones must run with the "flat" mode, which picks the "response:flat"
variant of the 20 tests that have one. No other mode (not "tx.fhir.org", so "$optional$":
"!tx.fhir.org" items are optional). The server is R4: variables {"version": "4.0.1"}.
Beyond TxTester: "response2" (2 tests of regex-bad) is accepted as an alternative expected
answer, as TxServiceTestHelper (the runner's in-process twin) does.
"""

from __future__ import annotations

import copy
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from tests.conformance import tx_compare
from tests.conformance.tx_compare import (
    EXT_CS_DESIGNATION_ADDITIONAL_USE,
    EXT_VALUESET_FILTER_OP,
    EXT_VALUESET_FILTER_OP_R6,
    EXT_VERSION_ALGORITHM,
    EXT_VS_COMPOSE_PROPERTY,
    EXT_VS_DESIGNATION_ADDITIONAL_USE,
    EXT_VS_INCLUDE_COPYRIGHT,
    IMPLICIT_RULES_OMITTED_MANDATORY_CODE,
    JsonNumber,
    parse_json,
)

DATA = Path(__file__).parent / "data" / "tx-ecosystem"
KNOWN_FAILURES = DATA / "known-failures.txt"
BASE = "/fhir"
SUITE_MODES = frozenset({"general"})
MODES = frozenset({"flat"})
VARIABLES = {"version": "4.0.1"}  # TxTester.vars(): FhirPublication.R4.toCode()
FHIR_VERSION_MIME = "application/fhir+json; fhirVersion=4.0"

ENDPOINTS = {
    "expand": "ValueSet/$expand",
    "validate-code": "ValueSet/$validate-code",
    "cs-validate-code": "CodeSystem/$validate-code",
    "lookup": "CodeSystem/$lookup",
    "translate": "ConceptMap/$translate",
    "batch-validate": "ValueSet/$batch-validate-code",
}
# FHIRToolingClient.operateType: GET when every parameter is primitive.
OPERATE_TYPE = frozenset({"validate-code", "cs-validate-code"})
# The resource an answer in 2xx must be (validate-codes wrap anything else in "return").
ANSWER_TYPE = {
    "expand": "ValueSet",
    "lookup": "Parameters",
    "translate": "Parameters",
    "batch-validate": "Parameters",
}


@dataclass(frozen=True)
class Case:
    suite: str
    name: str
    id: str  # suite/name, with "#2" for the second test of the same name in a suite
    operation: str
    request: str
    response: str
    response2: str | None
    http_code: str
    profile: str
    accept_language: str | None
    setup: tuple[str, ...]
    description: str = ""


@cache
def registry() -> dict[str, Any]:
    """test-cases.json."""
    data: dict[str, Any] = parse_json((DATA / "test-cases.json").read_bytes())
    return data


def _passes_modes(item: Mapping[str, Any], modes: frozenset[str]) -> bool:
    if "modes" in item and any(m in modes for m in item["modes"]):
        return True
    return "mode" not in item or item["mode"] in modes


def _choose(test: Mapping[str, Any], name: str, modes: frozenset[str]) -> str | None:
    """TxTester.chooseParam; a mode-specific file that the data lacks falls back to the plain
    one (search-expand-all-yes names a response:flat file that does not exist)."""
    for mode in sorted(modes):
        chosen = test.get(f"{name}:{mode}")
        if chosen and (DATA / chosen).exists():
            return str(chosen)
    value = test.get(name)
    return str(value) if value is not None else None


def load_cases(modes: frozenset[str] = MODES) -> list[Case]:
    """Every test the runner would run here, suite by suite, in the registry's order."""
    cases: list[Case] = []
    for suite in registry()["suites"]:
        if suite.get("mode") not in SUITE_MODES or suite.get("disabled"):
            continue
        seen: dict[str, int] = {}
        for test in suite["tests"]:
            if test.get("disabled") or not _passes_modes(test, modes):
                continue
            seen[test["name"]] = seen.get(test["name"], 0) + 1
            n = seen[test["name"]]
            case_id = f"{suite['name']}/{test['name']}" + (f"#{n}" if n > 1 else "")
            response = _choose(test, "response", modes)
            assert response is not None, case_id
            cases.append(
                Case(
                    suite=suite["name"],
                    name=test["name"],
                    id=case_id,
                    operation=test["operation"],
                    request=test["request"],
                    response=response,
                    response2=test.get("response2"),
                    http_code=test.get("http-code", "2xx"),
                    profile=test.get("profile", "parameters-default.json"),
                    accept_language=test.get("Accept-Language"),
                    setup=tuple(suite.get("setup", [])),
                    description=test.get("description", ""),
                )
            )
    return cases


@cache
def _load(name: str) -> Any:
    return parse_json((DATA / name).read_bytes())


def load(name: str) -> Any:
    """A data file, parsed (a fresh copy each time)."""
    return copy.deepcopy(_load(name))


# ---------------------------------------------------------------------------------------------
# R5 to R4, for the request (VersionConvertor_40_50 / 40_N, R5 to R4 direction)
# ---------------------------------------------------------------------------------------------

# R5 metadata of canonical resources that R4 CodeSystem/ValueSet/ConceptMap lack (dropped).
_R5_ONLY_METADATA = (
    "copyrightLabel",
    "approvalDate",
    "lastReviewDate",
    "effectivePeriod",
    "topic",
    "author",
    "editor",
    "reviewer",
    "endorser",
    "relatedArtifact",
)
# ConceptMap40_50.convertConceptMapEquivalence
_RELATIONSHIP_TO_EQUIVALENCE = {
    "related-to": "relatedto",
    "equivalent": "equivalent",
    "source-is-narrower-than-target": "wider",
    "source-is-broader-than-target": "narrower",
    "not-related-to": "disjoint",
}
_UNMAPPED_MODE = {"use-source-code": "provided", "fixed": "fixed", "other-map": "other-map"}


def _drop_unknown_keys(node: Any) -> Any:
    """The Java JSON parser skips properties it does not know; the data has a few that no FHIR
    version has ("definition:de", "title:en"): they are not sent."""
    if isinstance(node, dict):
        return {k: _drop_unknown_keys(v) for k, v in node.items() if ":" not in k}
    if isinstance(node, list):
        return [_drop_unknown_keys(v) for v in node]
    return node


def _add_extension(element: dict[str, Any], url: str, value_key: str, value: Any) -> None:
    element.setdefault("extension", []).append({"url": url, value_key: value})


def _version_algorithm_to_r4(resource: dict[str, Any]) -> None:
    for key in ("versionAlgorithmString", "versionAlgorithmCoding"):
        if key in resource:
            value = resource.pop(key)
            _add_extension(resource, EXT_VERSION_ALGORITHM, "value" + key[16:], value)


def _designations_to_r4(concepts: Iterable[dict[str, Any]], url: str, nested: bool) -> None:
    for concept in concepts:
        for des in concept.get("designation", []):
            for use in des.pop("additionalUse", []):
                _add_extension(des, url, "valueCoding", use)
        if nested:
            _designations_to_r4(concept.get("concept", []), url, nested)


def _codesystem_to_r4(cs: dict[str, Any]) -> None:
    _designations_to_r4(cs.get("concept", []), EXT_CS_DESIGNATION_ADDITIONAL_USE, True)


def _valueset_to_r4(vs: dict[str, Any]) -> None:
    compose = vs.get("compose")
    if not isinstance(compose, dict):
        return
    for prop in compose.pop("property", []):
        _add_extension(compose, EXT_VS_COMPOSE_PROPERTY, "valueString", prop)
    omitted = False
    for key in ("include", "exclude"):
        for inc in compose.get(key, []):
            if "copyright" in inc:
                _add_extension(inc, EXT_VS_INCLUDE_COPYRIGHT, "valueString", inc.pop("copyright"))
            _designations_to_r4(inc.get("concept", []), EXT_VS_DESIGNATION_ADDITIONAL_USE, False)
            for flt in inc.get("filter", []):
                op = flt.get("op")
                url = {
                    "child-of": EXT_VALUESET_FILTER_OP,
                    "descendent-leaf": EXT_VALUESET_FILTER_OP,
                    "property-value-of": EXT_VALUESET_FILTER_OP_R6,
                }.get(op or "")
                if url:
                    del flt["op"]
                    _add_extension(flt.setdefault("_op", {}), url, "valueCode", op)
                    omitted = True
    if omitted:
        # ValueSet40_N: readers that do not know the extension must not use the value set
        vs["implicitRules"] = IMPLICIT_RULES_OMITTED_MANDATORY_CODE


def _conceptmap_to_r4(cm: dict[str, Any]) -> None:
    for r5, r4 in (("sourceScope", "source"), ("targetScope", "target")):
        for suffix in ("Uri", "Canonical"):
            if r5 + suffix in cm:
                cm[r4 + suffix] = cm.pop(r5 + suffix)
    for group in cm.get("group", []):
        for end in ("source", "target"):
            if "|" in group.get(end, ""):
                group[end], group[end + "Version"] = group[end].split("|", 1)
        for element in group.get("element", []):
            if element.pop("noMap", False):
                element["target"] = [{"equivalence": "unmatched"}]
                continue
            for target in element.get("target", []):
                relationship = target.pop("relationship", None)
                equivalence = _RELATIONSHIP_TO_EQUIVALENCE.get(relationship or "related-to")
                if equivalence:
                    target["equivalence"] = equivalence
        unmapped = group.get("unmapped")
        if isinstance(unmapped, dict):
            unmapped.pop("relationship", None)
            if "mode" in unmapped:
                unmapped["mode"] = _UNMAPPED_MODE.get(unmapped["mode"], unmapped["mode"])
            if "otherMap" in unmapped:
                unmapped["url"] = unmapped.pop("otherMap")


def r5_to_r4(resource: dict[str, Any]) -> dict[str, Any]:
    """What VersionConvertorFactory_40_50 changes in the R5 resources of this data when the
    runner talks to an R4 server: R5-only elements become cross-version extensions (version
    algorithm, additionalUse, compose.property, include.copyright, the R5 filter operators) or
    their R4 form (ConceptMap: scopes, relationship to equivalence, unmapped mode), or go."""
    resource = _drop_unknown_keys(resource)
    _to_r4_in_place(resource)
    return resource


def _to_r4_in_place(resource: dict[str, Any]) -> None:
    kind = resource.get("resourceType")
    if kind in ("CodeSystem", "ValueSet", "ConceptMap"):
        _version_algorithm_to_r4(resource)
        for key in _R5_ONLY_METADATA:
            resource.pop(key, None)
    if kind == "CodeSystem":
        _codesystem_to_r4(resource)
    elif kind == "ValueSet":
        _valueset_to_r4(resource)
    elif kind == "ConceptMap":
        _conceptmap_to_r4(resource)
    elif kind == "Parameters":
        for param in resource.get("parameter", []):
            _parameter_to_r4(param)
    elif kind == "Bundle":
        for entry in resource.get("entry", []):
            if isinstance(entry.get("resource"), dict):
                _to_r4_in_place(entry["resource"])


def _parameter_to_r4(param: dict[str, Any]) -> None:
    if isinstance(param.get("resource"), dict):
        _to_r4_in_place(param["resource"])
    for part in param.get("part", []):
        _parameter_to_r4(part)


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def request_parameters(case: Case) -> dict[str, Any]:
    """The R5 Parameters the runner sends: the test's, the suite's setup resources as
    tx-resource, the profile's parameters."""
    params = load(case.request)
    plist = params.setdefault("parameter", [])
    for name in case.setup:
        plist.append({"name": "tx-resource", "resource": load(name)})
    plist.extend(load(case.profile).get("parameter", []))
    return params


def _is_primitive(param: Mapping[str, Any]) -> bool:
    return any(
        k.startswith("value") and not isinstance(v, dict | list) for k, v in param.items()
    ) and not ("resource" in param or "part" in param)


def _primitive_text(param: Mapping[str, Any]) -> str:
    text = tx_compare._primitive(param)
    return text if text is not None else ""


def build_request(case: Case) -> Request:
    params = r5_to_r4(request_parameters(case))
    headers = {"Accept": FHIR_VERSION_MIME, "X-Request-Id": f"txTests:{case.suite}/{case.name}"}
    if case.accept_language:
        headers["Accept-Language"] = case.accept_language
    url = f"{BASE}/{ENDPOINTS[case.operation]}"
    plist = params.get("parameter", [])
    if case.operation in OPERATE_TYPE and all(_is_primitive(p) for p in plist):
        query = urlencode([(p["name"], _primitive_text(p)) for p in plist])
        return Request("GET", f"{url}?{query}" if query else url, headers, None)
    headers["Content-Type"] = FHIR_VERSION_MIME
    return Request("POST", url, headers, dump_json(params))


def _number_text(value: Any) -> Any:
    if isinstance(value, JsonNumber):
        return orjson.Fragment(str(value).encode())
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dump_json(value: Any) -> bytes:
    """JSON bytes, with numbers written exactly as the data files have them."""
    return orjson.dumps(value, default=_number_text, option=orjson.OPT_PASSTHROUGH_SUBCLASS)


# ---------------------------------------------------------------------------------------------
# The server: vnehr (SQLite, dev settings) in a child process, over HTTP
# ---------------------------------------------------------------------------------------------

REQUEST_TIMEOUT = 3.0  # seconds; in-process every case answers in well under 0.2 s
START_TIMEOUT = 60.0

_SERVE = """
import socket, sys, uvicorn
from pathlib import Path
from vnehr.app import create_app
from vnehr.settings import Settings
app = create_app(Settings(database_url=sys.argv[1], dev=True))
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
ready = Path(sys.argv[2] + ".tmp")
ready.write_text(str(sock.getsockname()[1]))
ready.rename(sys.argv[2])
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
"""


class NoAnswer(Exception):
    """The server did not answer (timeout, or the connection failed)."""


class TxServer:
    """vnehr built as in the API tests (create_app, SQLite, dev=True), served by uvicorn in a
    child process: one server for all the suites, as the Java runner tests one server. A
    request gets REQUEST_TIMEOUT seconds; a server that does not answer (the regex-bad suite
    probes catastrophic regular expressions, which hang a Python server without defences) is
    killed and a fresh one started, so that the run goes on. In-process (TestClient) a request
    that never returns could not be given up: the stuck server thread holds the GIL."""

    def __init__(self, root: Path, timeout: float = REQUEST_TIMEOUT) -> None:
        self._root = root
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: httpx.Client | None = None
        self._starts = 0

    @property
    def starts(self) -> int:
        return self._starts

    def start(self) -> None:
        self._starts += 1
        db = self._root / f"vnehr-{self._starts}.db"
        port_file = self._root / f"port-{self._starts}"
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'src'}"}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, f"sqlite:///{db}", str(port_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.exists() and port_file.read_text()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the vnehr server process did not start")
            time.sleep(0.02)
        base = f"http://127.0.0.1:{int(port_file.read_text())}"
        # TCP_NODELAY on both ends (asyncio sets it on the server's connections because the
        # listening socket says IPPROTO_TCP): a response or request written in two pieces
        # would otherwise wait for the peer's delayed ACK, 40 ms each time
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        self._http = httpx.Client(base_url=base, timeout=self._timeout, transport=transport)
        while True:
            try:
                if self._http.get(f"{BASE}/metadata").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the vnehr server process does not answer /metadata")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=30)
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def exchange(self, request: Request) -> tuple[int, bytes]:
        """(status, body); NoAnswer after a timeout or a broken connection (the server is
        restarted then)."""
        if self._http is None:
            self.start()
        assert self._http is not None
        try:
            response = self._http.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
        except httpx.TimeoutException:
            self.restart()
            raise NoAnswer(f"no answer within {self._timeout:g} s (server restarted)") from None
        except httpx.TransportError as exc:
            self.restart()
            raise NoAnswer(f"no answer: {type(exc).__name__} {exc} (server restarted)") from None
        return response.status_code, response.content

    def __enter__(self) -> TxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    passed: bool
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    status: int | None = None
    actual: Any = None  # the normalized response that was compared


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def judge(
    case: Case,
    status: int,
    body: bytes,
    *,
    modes: frozenset[str] = MODES,
    strict_order: bool = False,
) -> Outcome:
    """The verdict on one answer (TxTester.expand/validate/...): the body must be the
    operation's resource (an OperationOutcome outside 2xx), then the status class, then the
    comparison."""
    ok = 200 <= status < 300
    try:
        actual = parse_json(body) if body else None
    except ValueError as exc:
        return Outcome(False, f"HTTP {status}, the body is not JSON: {exc}", status=status)
    kind = actual.get("resourceType") if isinstance(actual, dict) else None
    if not ok and kind != "OperationOutcome":
        return Outcome(
            False, f"HTTP {status} without an OperationOutcome (got {kind})", status=status
        )
    if ok and case.operation in ANSWER_TYPE and kind != ANSWER_TYPE[case.operation]:
        wanted = ANSWER_TYPE[case.operation]
        return Outcome(False, f"HTTP {status} answered a {kind}, not a {wanted}", status=status)
    assert isinstance(actual, dict)
    if ok and case.operation in OPERATE_TYPE and kind != "Parameters":
        actual = {
            "resourceType": "Parameters",
            "parameter": [{"name": "return", "resource": actual}],
        }
    dropped = not ok and any(
        "diagnostics" in i and "details" not in i for i in actual.get("issue", [])
    )
    actual = tx_compare.normalize_response(case.operation, actual, ok)
    variants = [case.response] + ([case.response2] if case.response2 else [])

    def differences(expected: str, java: bool) -> tuple[str | None, list[str]]:
        return tx_compare.compare(
            _load(expected),
            actual,
            modes=modes,
            variables=VARIABLES,
            strict_order=strict_order,
            base64_quirk=java,
        )

    passing = None
    warnings: list[str] = []
    for variant in variants:
        diff, warnings = differences(variant, java=True)
        if diff is None:
            passing = variant
            break
    code_ok = tx_compare.http_code_ok(case.http_code, status)
    if passing is not None and code_ok:
        strict, _ = differences(passing, java=False)
        if strict:
            warnings.append(f"passes only by CompareUtilities' lenient base64 match: {strict}")
        return Outcome(True, None, warnings, status, actual)
    # The reason names the first real difference: without the base64 leniency, which can
    # match "code1" with "code3" and so point past the place where the answer goes wrong.
    reason = (differences(case.response, java=False)[0] or diff) if passing is None else None
    if reason and dropped and "issue" in reason:
        reason = f"{reason} (issues with diagnostics but no details are dropped, as TxTester does)"
    if not code_ok:
        head = f"Response Code fail: should be '{case.http_code}' but is '{status}'"
        return Outcome(
            False, _one_line(f"{head}; {reason}" if reason else head), warnings, status, actual
        )
    return Outcome(False, _one_line(f"HTTP {status}: {reason}"), warnings, status, actual)


def run_case(
    server: TxServer, case: Case, *, modes: frozenset[str] = MODES, strict_order: bool = False
) -> Outcome:
    try:
        status, body = server.exchange(build_request(case))
    except NoAnswer as exc:
        return Outcome(False, str(exc))
    return judge(case, status, body, modes=modes, strict_order=strict_order)


def run_all(
    cases: Iterable[Case] | None = None,
    *,
    modes: frozenset[str] = MODES,
    strict_order: bool = False,
    timeout: float = REQUEST_TIMEOUT,
) -> Iterator[tuple[Case, Outcome]]:
    with tempfile.TemporaryDirectory() as tmp, TxServer(Path(tmp), timeout) as server:
        for case in cases if cases is not None else load_cases(modes):
            yield case, run_case(server, case, modes=modes, strict_order=strict_order)


# ---------------------------------------------------------------------------------------------
# Known failures
# ---------------------------------------------------------------------------------------------

KNOWN_FAILURES_HEADER = """\
# The HL7 terminology ecosystem cases (general suites) that vnehr does not pass yet, one
# suite/test per line. tests/conformance/test_tx_ecosystem.py expects exactly these to fail:
# fix one and the test run fails until the line goes. Regenerate with
#   python -m tests.conformance.tx_ecosystem_report --write-known-failures
"""


def load_known_failures(path: Path = KNOWN_FAILURES) -> set[str]:
    if not path.exists():
        return set()
    names = set()
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        names.add(re.split(r"\s+#", line, maxsplit=1)[0])  # "#2" in a name is not a comment
    return names


def write_known_failures(failed: Iterable[str], path: Path = KNOWN_FAILURES) -> None:
    order = {case.id: i for i, case in enumerate(load_cases())}
    lines = sorted(set(failed), key=lambda name: (order.get(name, len(order)), name))
    path.write_text(KNOWN_FAILURES_HEADER + "".join(f"{name}\n" for name in lines), "utf-8")
