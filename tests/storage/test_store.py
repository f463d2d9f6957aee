"""The storage compliance suite: every backend passes the same checks through the Store API."""

from __future__ import annotations

import threading

import pytest

from tests.people import CCCD, duc, lan
from vnehr.app import Server
from vnehr.errors import Gone, InvalidRequest, NotFound
from vnehr.search.query import strict_query
from vnehr.search.registry import default_registry


def _create(server: Server, resource: dict, res_id: str) -> None:
    with server.store.transaction() as txn:
        txn.write(resource["resourceType"], res_id, dict(resource), "POST", None)


def _by_cccd(server: Server, value: str) -> list[str]:
    criteria = strict_query(default_registry(), "Patient", [("identifier", f"{CCCD}|{value}")])
    return server.store.search_ids(criteria, 10)


def test_it_reads_back_what_it_stored_with_server_meta(server: Server) -> None:
    _create(server, lan(), "lan")
    stored = server.store.read("Patient", "lan")
    resource = stored.resource()
    assert stored.version == 1
    assert resource["id"] == "lan"
    assert resource["meta"]["versionId"] == "1"
    assert resource["meta"]["lastUpdated"].endswith("Z")
    assert resource["name"][0]["family"] == "Nguyễn"


def test_it_keeps_every_version_and_vreads_them(server: Server) -> None:
    _create(server, lan(), "lan")
    with server.store.transaction() as txn:
        current = txn.current("Patient", "lan")
        changed = {**lan(), "gender": "other"}
        txn.write("Patient", "lan", changed, "PUT", current)
    assert server.store.read("Patient", "lan").version == 2
    assert server.store.vread("Patient", "lan", 1).resource()["gender"] == "female"
    assert server.store.vread("Patient", "lan", 2).resource()["gender"] == "other"
    with pytest.raises(NotFound):
        server.store.vread("Patient", "lan", 3)


def test_a_deleted_resource_is_gone_but_its_history_remains(server: Server) -> None:
    _create(server, lan(), "lan")
    with server.store.transaction() as txn:
        txn.write("Patient", "lan", None, "DELETE", txn.current("Patient", "lan"))
    with pytest.raises(Gone):
        server.store.read("Patient", "lan")
    assert server.store.vread("Patient", "lan", 1).resource()["id"] == "lan"
    page = server.store.history("Patient", "lan", since=None, at=None, count=10, cursor=None)
    assert [(v.version, v.deleted) for v in page.versions] == [(2, True), (1, False)]
    assert _by_cccd(server, "001185012345") == []


def test_an_unknown_resource_is_not_found(server: Server) -> None:
    with pytest.raises(NotFound):
        server.store.read("Patient", "nobody")


def test_a_failed_transaction_leaves_the_store_exactly_as_it_was(server: Server) -> None:
    _create(server, lan(), "lan")
    with pytest.raises(RuntimeError), server.store.transaction() as txn:
        txn.write("Patient", "duc", duc(), "POST", None)
        txn.write(
            "Patient", "lan", {**lan(), "gender": "male"}, "PUT", txn.current("Patient", "lan")
        )
        raise RuntimeError("crash in the middle")
    with pytest.raises(NotFound):
        server.store.read("Patient", "duc")
    assert server.store.read("Patient", "lan").version == 1
    assert server.store.count("Patient") == 1
    assert _by_cccd(server, "079214000123") == []


def test_index_rows_follow_the_current_version(server: Server) -> None:
    _create(server, lan("001185000001"), "lan")
    assert _by_cccd(server, "001185000001") == ["lan"]
    with server.store.transaction() as txn:
        txn.write("Patient", "lan", lan("001185000002"), "PUT", txn.current("Patient", "lan"))
    assert _by_cccd(server, "001185000001") == []
    assert _by_cccd(server, "001185000002") == ["lan"]


def test_a_transaction_sees_its_own_writes(server: Server) -> None:
    with server.store.transaction() as txn:
        txn.write("Patient", "lan", lan("001185000003"), "POST", None)
        criteria = strict_query(
            default_registry(), "Patient", [("identifier", f"{CCCD}|001185000003")]
        )
        assert txn.search_ids(criteria, 5) == ["lan"]
        assert txn.read("Patient", "lan").version == 1


def test_history_pages_newest_first_with_a_cursor(server: Server) -> None:
    for i in range(5):
        _create(server, lan(f"00118500001{i}"), f"p{i}")
    first = server.store.history("Patient", None, since=None, at=None, count=2, cursor=None)
    assert [v.res_id for v in first.versions] == ["p4", "p3"]
    assert first.next_cursor is not None
    second = server.store.history(
        "Patient", None, since=None, at=None, count=2, cursor=first.next_cursor
    )
    assert [v.res_id for v in second.versions] == ["p2", "p1"]
    third = server.store.history(
        "Patient", None, since=None, at=None, count=2, cursor=second.next_cursor
    )
    assert [v.res_id for v in third.versions] == ["p0"]
    assert third.next_cursor is None


def test_history_since_and_at_select_by_time(server: Server) -> None:
    _create(server, lan(), "lan")
    first = server.store.read("Patient", "lan")
    with server.store.transaction() as txn:
        txn.write(
            "Patient", "lan", {**lan(), "gender": "other"}, "PUT", txn.current("Patient", "lan")
        )
    second = server.store.read("Patient", "lan")
    since = server.store.history(
        "Patient", None, since=second.last_updated, at=None, count=10, cursor=None
    )
    assert [v.version for v in since.versions] == [2]
    moment = (first.last_updated, first.last_updated)
    at = server.store.history("Patient", "lan", since=None, at=moment, count=10, cursor=None)
    assert [v.version for v in at.versions] == [1]


def test_a_bad_cursor_is_an_invalid_request(server: Server) -> None:
    with pytest.raises(InvalidRequest):
        server.store.history(None, None, since=None, at=None, count=2, cursor="!!not-a-cursor")


def test_concurrent_writers_to_one_resource_never_lose_a_version(server: Server) -> None:
    _create(server, lan(), "lan")
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(5):
                with server.store.transaction() as txn:
                    current = txn.current("Patient", "lan")
                    txn.write("Patient", "lan", lan(), "PUT", current)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert server.store.read("Patient", "lan").version == 21
    page = server.store.history("Patient", "lan", since=None, at=None, count=100, cursor=None)
    assert sorted(v.version for v in page.versions) == list(range(1, 22))


def test_bulk_write_creates_and_updates_by_id(server: Server) -> None:
    resources = [{**lan(f"0011850001{i:02d}"), "id": f"b{i}"} for i in range(25)]
    stored = list(server.store.bulk_write(resources, batch=10))
    assert len(stored) == 25
    again = list(server.store.bulk_write([{**lan("001185000199"), "id": "b3"}], batch=10))
    assert again[0].version == 2
    assert server.store.count("Patient") == 25
    assert _by_cccd(server, "001185000199") == ["b3"]


def test_a_resource_written_twice_in_one_transaction_keeps_only_its_last_rows(
    server: Server,
) -> None:
    _create(server, lan("001185000400"), "old")
    with server.store.transaction() as txn:
        txn.write("Patient", "new", lan("001185000401"), "POST", None)
        txn.write("Patient", "new", lan("001185000402"), "PUT", txn.current("Patient", "new"))
        txn.write("Patient", "old", lan("001185000403"), "PUT", txn.current("Patient", "old"))
        txn.write("Patient", "old", lan("001185000404"), "PUT", txn.current("Patient", "old"))
    assert _by_cccd(server, "001185000401") == []
    assert _by_cccd(server, "001185000402") == ["new"]
    assert _by_cccd(server, "001185000400") == []
    assert _by_cccd(server, "001185000403") == []
    assert _by_cccd(server, "001185000404") == ["old"]
    assert server.store.read("Patient", "old").version == 3


def test_reads_inside_a_transaction_see_its_own_writes_not_yet_sent(server: Server) -> None:
    def cccd_of(res_id: str) -> str:
        return str(txn.read("Patient", res_id).resource()["identifier"][0]["value"])

    with server.store.transaction() as txn:
        txn.write("Patient", "a", lan("001185000501"), "POST", None)
        txn.write("Patient", "b", lan("001185000502"), "POST", None)
        assert cccd_of("a") == "001185000501"
        txn.write("Patient", "a", lan("001185000503"), "PUT", txn.current("Patient", "a"))
        txn.write("Patient", "c", lan("001185000504"), "POST", None)
        assert cccd_of("a") == "001185000503"
        assert txn.read("Patient", "a").version == 2
        txn.write("Patient", "b", None, "DELETE", txn.current("Patient", "b"))
        with pytest.raises(Gone):
            txn.read("Patient", "b")
        txn.write("Patient", "b", lan("001185000505"), "PUT", txn.current("Patient", "b"))
        assert (cccd_of("b"), txn.read("Patient", "b").version) == ("001185000505", 3)
    assert [_by_cccd(server, f"00118500050{i}") for i in range(1, 6)] == [
        [],
        [],
        ["a"],
        ["c"],
        ["b"],
    ]
    assert server.store.read("Patient", "a").resource()["identifier"][0]["value"] == "001185000503"


def test_a_big_transaction_commits_whole_or_rolls_back_whole(server: Server) -> None:
    with pytest.raises(RuntimeError), server.store.transaction() as txn:
        for i in range(150):  # big enough for rows to be sent while the transaction goes on
            txn.write("Patient", f"r{i}", lan(f"00118560{i:04d}"), "POST", None)
        raise RuntimeError("the 151st entry is bad")
    assert server.store.count() == 0
    assert _by_cccd(server, "001185600007") == []
    with server.store.transaction() as txn:
        for i in range(150):
            txn.write("Patient", f"c{i}", lan(f"00118570{i:04d}"), "POST", None)
    assert server.store.count("Patient") == 150
    assert _by_cccd(server, "001185700149") == ["c149"]
