"""`vnehr auth account|activation|outbox`: operators create accounts, issue citizens'
security codes, and the SMS gateway reads the outbox."""

from __future__ import annotations

import re

from click.testing import CliRunner, Result

from tests.unit.auth.test_accounts import FAST
from vnehr.app import create_server
from vnehr.auth.accounts import Accounts
from vnehr.auth.activation import Activation
from vnehr.cli import main
from vnehr.settings import Settings

PASSWORD = "hoa sen nở giữa hè"
CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{2}")


def vnehr(database_url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--database", database_url], input=input)


def add_dr_hoa(database_url: str) -> Result:
    return vnehr(
        database_url,
        "auth", "account", "add",
        "--kind", "practitioner",
        "--username", "bs.hoa",
        "--name", "BS. Phạm Thị Hoa",
        "--facility", "bv-bach-mai",
        "--fhir-user", "Practitioner/pham-thi-hoa",
        "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip


def sign_in(database_url: str, username: str, password: str) -> str:
    server = create_server(Settings(database_url=database_url, dev=True))
    try:
        return Accounts(server.store).authenticate(username, password).account_id
    finally:
        server.close()


def test_an_operator_adds_lists_and_disables_a_practitioner(database_url: str) -> None:
    added = add_dr_hoa(database_url)
    assert added.exit_code == 0, added.output
    assert added.output.startswith("practitioner account bs.hoa created (")
    assert sign_in(database_url, "bs.hoa", PASSWORD)

    listed = vnehr(database_url, "auth", "account", "list")
    assert listed.exit_code == 0, listed.output
    line = listed.stdout.splitlines()[0].split()
    assert line[:5] == ["bs.hoa", "practitioner", "active", "-", "Practitioner/pham-thi-hoa"]
    assert "facility=bv-bach-mai" in listed.stdout and "BS. Phạm Thị Hoa" in listed.stdout

    assert vnehr(database_url, "auth", "account", "disable", "bs.hoa").exit_code == 0
    assert "disabled" in vnehr(database_url, "auth", "account", "list").stdout
    missing = vnehr(database_url, "auth", "account", "disable", "bs.khong.co")
    assert missing.exit_code == 1 and "No account bs.khong.co" in missing.output
    assert vnehr(database_url, "auth", "account", "enable", "bs.hoa").exit_code == 0
    assert sign_in(database_url, "bs.hoa", PASSWORD)


def test_the_password_is_asked_for_twice_when_not_on_stdin(database_url: str) -> None:
    asked = vnehr(
        database_url,
        "auth", "account", "add", "--kind", "operator", "--username", "admin",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert asked.exit_code == 0, asked.output
    assert PASSWORD not in asked.output  # hidden input
    assert sign_in(database_url, "admin", PASSWORD)


def test_account_errors_are_reported_plainly(database_url: str) -> None:
    assert add_dr_hoa(database_url).exit_code == 0
    taken = add_dr_hoa(database_url)
    assert taken.exit_code == 1 and "Error: the username 'bs.hoa' is taken" in taken.output
    weak = vnehr(
        database_url,
        "auth", "account", "add", "--kind", "operator", "--username", "admin",
        "--password-stdin",
        input="0912345678\n",
    )  # fmt: skip
    assert weak.exit_code == 1 and "only digits" in weak.output
    nowhere = vnehr(
        database_url,
        "auth", "account", "add", "--kind", "practitioner", "--username", "bs.lan",
        "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert nowhere.exit_code == 1 and "needs a facility" in nowhere.output


def test_a_printed_code_is_shown_and_opens_the_citizens_account(database_url: str) -> None:
    issued = vnehr(
        database_url,
        "auth", "activation", "issue", "001185012345",
        "--channel", "print", "--issued-by", "tram-y-te-phuc-xa",
    )  # fmt: skip
    assert issued.exit_code == 0, issued.output
    code = CODE.search(issued.stdout)
    assert code is not None
    assert "valid until" in issued.stdout

    server = create_server(Settings(database_url=database_url, dev=True))
    try:
        accounts = Accounts(server.store, hasher=FAST)
        Activation(server.store, accounts).activate("001185012345", code.group(), PASSWORD)
    finally:
        server.close()
    assert sign_in(database_url, "001185012345", PASSWORD)
    assert (
        "001185012345" in vnehr(database_url, "auth", "account", "list", "--kind", "citizen").stdout
    )


def test_an_sms_code_is_not_shown_but_waits_in_the_outbox_until_marked_sent(
    database_url: str,
) -> None:
    issued = vnehr(
        database_url,
        "auth", "activation", "issue", "079214000123",
        "--channel", "sms", "--recipient", "0912345678", "--issued-by", "bv-nhi-dong-1",
    )  # fmt: skip
    assert issued.exit_code == 0, issued.output
    assert CODE.search(issued.stdout) is None
    assert "queued for SMS to 0912345678" in issued.stdout

    pending = vnehr(database_url, "auth", "outbox")
    assert pending.exit_code == 0, pending.output
    (line,) = pending.stdout.splitlines()
    message, channel, recipient = line.split()[:3]
    assert (channel, recipient) == ("sms", "0912345678")
    assert CODE.search(line) and "pending" in line

    marked = vnehr(database_url, "auth", "outbox", "--mark-sent", message)
    assert marked.exit_code == 0 and f"message {message} marked sent" in marked.stdout
    assert vnehr(database_url, "auth", "outbox").stdout == ""
    assert "sent " in vnehr(database_url, "auth", "outbox", "--all").stdout
    again = vnehr(database_url, "auth", "outbox", "--mark-sent", message)
    assert again.exit_code == 1 and "No pending message" in again.output


def test_an_invalid_cccd_gets_no_code(database_url: str) -> None:
    refused = vnehr(
        database_url,
        "auth", "activation", "issue", "991185012345", "--channel", "print", "--issued-by", "op",
    )  # fmt: skip
    assert refused.exit_code == 1 and "not a valid CCCD" in refused.output
