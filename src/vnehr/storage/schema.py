"""The database schema as numbered migrations, one list per dialect (applied in order, recorded).

Layout (docs/architecture.md): `resources` holds one row per logical resource with its integer
surrogate key `rkey`; `resource_versions` keeps every version's JSON; one index table per
search-parameter type holds rows of the current version only.
"""

from __future__ import annotations

# Composite parameters (https://hl7.org/fhir/R4/search.html#composite): one row per element
# the composite's expression reaches, with its components' values side by side. The first
# component (a token, or a reference) is found by `hv`, its hash (index_hash.value_hash of
# "Type.code" and the code or target id); the second and third are compared in place:
# c2_low/c2_high (number, quantity, date bounds), c2_system/c2_code (token, quantity unit),
# c2_text (string folded, quantity unit as written), c3_low/c3_high (a third, number).
COMPOSITE_COLUMNS: tuple[str, ...] = (
    "hv",
    "c1_system",
    "c1_code",
    "c2_low",
    "c2_high",
    "c2_system",
    "c2_code",
    "c2_text",
    "c3_low",
    "c3_high",
)


# Index tables and their value columns, shared by both dialects and by the writers.
# `hv` is value_hash("Type.code", value) of the exact-match types (search/index_hash.py).
INDEX_TABLES: dict[str, tuple[str, ...]] = {
    "idx_token": ("system", "code", "text", "hv"),
    "idx_string": ("folded", "exact"),
    "idx_date": ("low", "high"),
    "idx_number": ("value", "low", "high"),
    "idx_quantity": ("value", "low", "high", "system", "code", "unit"),
    "idx_reference": ("target_type", "target_id", "url", "hv"),
    "idx_uri": ("uri", "hv"),
    "idx_composite": COMPOSITE_COLUMNS,  # since 0002
}

_SQLITE_TYPES = {
    "system": "TEXT",
    "code": "TEXT",
    "text": "TEXT",
    "folded": "TEXT",
    "exact": "TEXT",
    "low": "REAL",
    "high": "REAL",
    "value": "REAL",
    "unit": "TEXT",
    "target_type": "TEXT",
    "target_id": "TEXT",
    "url": "TEXT",
    "uri": "TEXT",
    "hv": "INTEGER",
}
_PG_TYPES = {**_SQLITE_TYPES, "low": "DOUBLE PRECISION", "high": "DOUBLE PRECISION"}
_PG_TYPES["value"] = "DOUBLE PRECISION"
_PG_TYPES["hv"] = "BIGINT"
# Date bounds are integer microseconds: exact, unlike doubles at that magnitude.
_DATE_TYPES = {"sqlite": "INTEGER", "postgresql": "BIGINT"}

_INDEX_LOOKUPS: dict[str, tuple[str, ...]] = {
    "idx_token": ("hv",),
    "idx_string": ("sp", "folded"),
    "idx_date": ("sp", "low", "high"),
    "idx_number": ("sp", "value"),
    "idx_quantity": ("sp", "code", "value"),
    "idx_reference": ("hv",),
    "idx_uri": ("hv",),
}


def _index_tables(dialect: str) -> list[str]:
    types = _SQLITE_TYPES if dialect == "sqlite" else _PG_TYPES
    key = "INTEGER" if dialect == "sqlite" else "BIGINT"
    out = []
    for table, columns in INDEX_TABLES.items():
        if table not in _INDEX_LOOKUPS:
            continue  # created by a later migration
        cols = []
        for c in columns:
            kind = _DATE_TYPES[dialect] if table == "idx_date" else types[c]
            cols.append(f"{c} {kind}")
        out.append(
            f"CREATE TABLE {table} (rkey {key} NOT NULL, sp INTEGER NOT NULL, {', '.join(cols)})"
        )
        out.append(f"CREATE INDEX {table}_rkey ON {table} (rkey)")
        out.append(f"CREATE INDEX {table}_lookup ON {table} ({', '.join(_INDEX_LOOKUPS[table])})")
    return out


def _search_migration(dialect: str) -> list[str]:
    """0002: what the search compiler needs.

    References are looked up by target id (so chains can join from the target's side) and
    absolute urls by hash through a partial index; PostgreSQL compares the text columns
    that prefix searches and sorting use byte-wise (COLLATE "C"), as SQLite does, so that
    both backends give the same answers in the same order; the composite table.
    """
    key = "INTEGER" if dialect == "sqlite" else "BIGINT"
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    kinds = {"hv": key, "c2_low": real, "c2_high": real, "c3_low": real, "c3_high": real}
    columns = ", ".join(f"{c} {kinds.get(c, 'TEXT')}" for c in COMPOSITE_COLUMNS)
    out = [
        "DROP INDEX idx_reference_lookup",
        "CREATE INDEX idx_reference_target ON idx_reference (target_id, sp)",
        "CREATE INDEX idx_reference_url ON idx_reference (hv) WHERE url IS NOT NULL",
        f"CREATE TABLE idx_composite (rkey {key} NOT NULL, sp INTEGER NOT NULL, {columns})",
        "CREATE INDEX idx_composite_rkey ON idx_composite (rkey)",
        "CREATE INDEX idx_composite_lookup ON idx_composite (hv)",
    ]
    if dialect == "postgresql":
        for table, column in (
            ("idx_string", "folded"),
            ("idx_string", "exact"),
            ("idx_token", "text"),
            ("idx_token", "code"),
            ("idx_uri", "uri"),
            ("idx_reference", "target_id"),
        ):
            out.append(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT COLLATE "C"')
    return out


def _covering_migration(dialect: str) -> list[str]:
    """0004: the token lookup index and the date probe index hold every column their
    conditions compare (and the resource key), so that a search or a count over many
    matches reads the indexes alone, not a table row per match. Measured at 1M resources
    (docs/benchmarks.md): the population-wide `_summary=count` of a code and a year."""
    out = [
        "DROP INDEX idx_token_lookup",
        "CREATE INDEX idx_token_lookup ON idx_token (hv, sp, system, code, rkey)",
        "DROP INDEX idx_date_rkey",
        "CREATE INDEX idx_date_rkey ON idx_date (rkey, sp, low, high)",
    ]
    if dialect == "postgresql":
        out.append("ANALYZE idx_token, idx_date")
    return out


# The master patient index's tables (migration 0005).
MPI_TABLES: tuple[str, ...] = ("mpi_records", "mpi_keys", "mpi_links", "mpi_events")


def _identity_migration(dialect: str) -> list[str]:
    """0005: the master patient index (vnehr.identity, docs/identity.md).

    mpi_records: per source Patient its match features (JSON) and the golden Person it is
    linked to; mpi_keys: its blocking keys as 64-bit hashes; mpi_links: every pair
    (Patient, Person) the index or an operator has judged, with the result (certain,
    probable: waiting for review, no-match) and who decided (auto, manual); mpi_events: the
    append-only history of link changes and merges.
    """
    key = "INTEGER" if dialect == "sqlite" else "BIGINT"
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    serial = (
        "INTEGER PRIMARY KEY"
        if dialect == "sqlite"
        else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    return [
        "CREATE TABLE mpi_records (patient_id TEXT PRIMARY KEY, person_id TEXT NOT NULL, "
        "features TEXT NOT NULL)",
        "CREATE INDEX mpi_records_person ON mpi_records (person_id)",
        f"CREATE TABLE mpi_keys (hk {key} NOT NULL, patient_id TEXT NOT NULL)",
        "CREATE INDEX mpi_keys_lookup ON mpi_keys (hk, patient_id)",
        "CREATE INDEX mpi_keys_patient ON mpi_keys (patient_id)",
        "CREATE TABLE mpi_links (patient_id TEXT NOT NULL, person_id TEXT NOT NULL, "
        f"result TEXT NOT NULL, source TEXT NOT NULL, score {real}, reason TEXT, "
        f"updated {key} NOT NULL, PRIMARY KEY (patient_id, person_id))",
        "CREATE INDEX mpi_links_person ON mpi_links (person_id)",
        "CREATE INDEX mpi_links_result ON mpi_links (result, updated)",
        f"CREATE TABLE mpi_events (event {serial}, at {key} NOT NULL, kind TEXT NOT NULL, "
        "patient_id TEXT, person_id TEXT, other_person_id TEXT, result TEXT, "
        "source TEXT NOT NULL, actor TEXT, detail TEXT)",
        "CREATE INDEX mpi_events_person ON mpi_events (person_id, event)",
        "CREATE INDEX mpi_events_patient ON mpi_events (patient_id, event)",
    ]


TERMINOLOGY_TABLES: tuple[str, ...] = (
    "tx_systems",
    "tx_concepts",
    "tx_edges",
    "tx_closure",
    "tx_words",
    "tx_properties",
    "tx_maps",
    "tx_map_elements",
    "tx_unmapped",
)


def _terminology_migration(dialect: str) -> list[str]:
    """0007: the terminology service's tables (vnehr.terminology, docs/terminology.md).

    tx_systems: one row per stored CodeSystem resource (its url, version, content, case
    sensitivity; its concepts have the keys first_cid .. first_cid + concepts - 1);
    tx_concepts: its concepts (`ckey` is the code as looked up: lower case
    where the code system is case-insensitive; `detail` the definition, designations and
    properties as JSON); tx_edges: direct is-a links; tx_closure: every ancestor of every
    concept (transitive, the concept itself excluded); tx_words: the folded words of displays
    and designations, for type-ahead filters; tx_properties: property values, for `=`,
    `in`, `regex`, `exists` filters; tx_maps / tx_map_elements: the stored ConceptMaps'
    source -> target pairs, looked up from either side; tx_unmapped: local codes that
    arrived without a map to a national code, per system.
    """
    key = "INTEGER" if dialect == "sqlite" else "BIGINT"
    flag = "INTEGER" if dialect == "sqlite" else "BOOLEAN"
    collate = "" if dialect == "sqlite" else ' COLLATE "C"'
    return [
        f"CREATE TABLE tx_systems (sid {key} PRIMARY KEY, res_id TEXT NOT NULL UNIQUE, "
        "url TEXT NOT NULL, version TEXT NOT NULL, content TEXT NOT NULL, "
        f"case_sensitive {flag} NOT NULL, supplements TEXT, concepts {key} NOT NULL, "
        f"first_cid {key} NOT NULL, loaded {key} NOT NULL)",
        "CREATE INDEX tx_systems_url ON tx_systems (url, version)",
        f"CREATE TABLE tx_concepts (cid {key} PRIMARY KEY, sid {key} NOT NULL, "
        f"ckey TEXT NOT NULL, code TEXT NOT NULL, display TEXT, inactive {flag} NOT NULL, "
        f"abstract {flag} NOT NULL, detail TEXT)",
        "CREATE UNIQUE INDEX tx_concepts_code ON tx_concepts (sid, ckey)",
        f"CREATE TABLE tx_edges (sid {key} NOT NULL, parent {key} NOT NULL, child {key} NOT NULL)",
        "CREATE INDEX tx_edges_parent ON tx_edges (parent, child)",
        "CREATE INDEX tx_edges_child ON tx_edges (child, parent)",
        "CREATE INDEX tx_edges_system ON tx_edges (sid)",
        f"CREATE TABLE tx_closure (sid {key} NOT NULL, ancestor {key} NOT NULL, "
        f"descendant {key} NOT NULL)",
        "CREATE INDEX tx_closure_down ON tx_closure (ancestor, descendant)",
        "CREATE INDEX tx_closure_up ON tx_closure (descendant, ancestor)",
        "CREATE INDEX tx_closure_system ON tx_closure (sid)",
        # Words are compared byte-wise (prefix ranges), whatever the database's collation.
        f"CREATE TABLE tx_words (sid {key} NOT NULL, word TEXT{collate} NOT NULL, "
        f"cid {key} NOT NULL)",
        "CREATE INDEX tx_words_lookup ON tx_words (sid, word, cid)",
        "CREATE INDEX tx_words_concept ON tx_words (cid)",
        f"CREATE TABLE tx_properties (sid {key} NOT NULL, property TEXT NOT NULL, "
        f"value TEXT NOT NULL, cid {key} NOT NULL)",
        "CREATE INDEX tx_properties_lookup ON tx_properties (sid, property, value, cid)",
        "CREATE INDEX tx_properties_concept ON tx_properties (cid)",
        f"CREATE TABLE tx_maps (mid {key} PRIMARY KEY, res_id TEXT NOT NULL UNIQUE, "
        "url TEXT, version TEXT, source TEXT, target TEXT)",
        "CREATE INDEX tx_maps_url ON tx_maps (url, version)",
        f"CREATE TABLE tx_map_elements (mid {key} NOT NULL, source_system TEXT NOT NULL, "
        "source_version TEXT, source_code TEXT NOT NULL, source_display TEXT, "
        "target_system TEXT, target_version TEXT, target_code TEXT, target_display TEXT, "
        "equivalence TEXT NOT NULL, comment TEXT)",
        "CREATE INDEX tx_map_elements_source ON tx_map_elements (source_system, source_code)",
        "CREATE INDEX tx_map_elements_target ON tx_map_elements (target_system, target_code)",
        "CREATE INDEX tx_map_elements_map ON tx_map_elements (mid)",
        "CREATE TABLE tx_unmapped (system TEXT NOT NULL, code TEXT NOT NULL, display TEXT, "
        f"facility TEXT, resource_type TEXT, first_seen {key} NOT NULL, "
        f"last_seen {key} NOT NULL, seen {key} NOT NULL, PRIMARY KEY (system, code))",
        "CREATE INDEX tx_unmapped_facility ON tx_unmapped (facility, system)",
    ]


AUTH_TABLES: tuple[str, ...] = (
    "auth_clients",
    "auth_accounts",
    "auth_activation",
    "auth_outbox",
    "auth_jti",
    "auth_codes",
    "auth_launches",
    "auth_refresh",
    "auth_revoked",
    "auth_events",
)


def _auth_migration(dialect: str) -> list[str]:
    """0008: authentication (vnehr.auth, docs/auth.md). Times are seconds since 1970.

    auth_clients: registered OAuth clients (backend services and apps) with their facility,
    authentication method, JWKS or jwks_uri, redirect URIs and the scopes they may get;
    auth_accounts: practitioner, citizen and operator accounts (argon2 password hash, TOTP
    secret, failed attempts and lock-out); auth_activation: one-time activation codes issued
    to citizens (hashed, expiring, single-use, attempts counted); auth_outbox: messages (SMS,
    print) for the deployment to deliver; auth_jti: client-assertion ids seen (replay
    protection); auth_codes: authorization codes (hashed, PKCE challenge, launch context);
    auth_launches: EHR launch contexts; auth_refresh: refresh tokens (hashed) by family, for
    rotation and revocation on reuse; auth_revoked: revoked access-token ids until they
    expire; auth_events: the security events (logins, token issues, failures) in order.
    """
    key = "INTEGER" if dialect == "sqlite" else "BIGINT"
    serial = (
        "INTEGER PRIMARY KEY"
        if dialect == "sqlite"
        else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    return [
        "CREATE TABLE auth_clients (client_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "facility TEXT, kind TEXT NOT NULL, auth_method TEXT NOT NULL, secret_hash TEXT, "
        "jwks TEXT, jwks_uri TEXT, redirect_uris TEXT NOT NULL, scopes TEXT NOT NULL, "
        f"created {key} NOT NULL, disabled {key} NOT NULL DEFAULT 0)",
        "CREATE TABLE auth_accounts (account_id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
        "username TEXT NOT NULL UNIQUE, name TEXT, password_hash TEXT, totp_secret TEXT, "
        "fhir_user TEXT, facility TEXT, person TEXT, "
        f"failed {key} NOT NULL DEFAULT 0, locked_until {key} NOT NULL DEFAULT 0, "
        f"created {key} NOT NULL, disabled {key} NOT NULL DEFAULT 0)",
        "CREATE TABLE auth_activation (code_id TEXT PRIMARY KEY, username TEXT NOT NULL, "
        f"code_hash TEXT NOT NULL, expires {key} NOT NULL, used {key}, "
        f"attempts {key} NOT NULL DEFAULT 0, issued_by TEXT NOT NULL, created {key} NOT NULL)",
        "CREATE INDEX auth_activation_user ON auth_activation (username, created)",
        f"CREATE TABLE auth_outbox (message {serial}, channel TEXT NOT NULL, "
        f"recipient TEXT NOT NULL, body TEXT NOT NULL, created {key} NOT NULL, sent {key})",
        f"CREATE TABLE auth_jti (client_id TEXT NOT NULL, jti TEXT NOT NULL, "
        f"expires {key} NOT NULL, PRIMARY KEY (client_id, jti))",
        "CREATE INDEX auth_jti_expires ON auth_jti (expires)",
        "CREATE TABLE auth_codes (code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, "
        "account_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, scope TEXT NOT NULL, "
        f"challenge TEXT NOT NULL, context TEXT NOT NULL, expires {key} NOT NULL, used {key})",
        "CREATE TABLE auth_launches (launch_id TEXT PRIMARY KEY, client_id TEXT, "
        f"context TEXT NOT NULL, created_by TEXT NOT NULL, expires {key} NOT NULL)",
        "CREATE TABLE auth_refresh (token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, "
        "client_id TEXT NOT NULL, account_id TEXT NOT NULL, scope TEXT NOT NULL, "
        f"context TEXT NOT NULL, expires {key} NOT NULL, used {key}, revoked {key})",
        "CREATE INDEX auth_refresh_family ON auth_refresh (family)",
        f"CREATE TABLE auth_revoked (jti TEXT PRIMARY KEY, expires {key} NOT NULL)",
        f"CREATE TABLE auth_events (event {serial}, at {key} NOT NULL, kind TEXT NOT NULL, "
        "outcome TEXT NOT NULL, client_id TEXT, account_id TEXT, facility TEXT, "
        "address TEXT, detail TEXT)",
        "CREATE INDEX auth_events_kind ON auth_events (kind, event)",
    ]


ACCESS_TABLES: tuple[str, ...] = ("access_rules",)


def _access_migration(dialect: str) -> list[str]:
    """0009: access control (vnehr.policy, docs/access.md). Times are epoch microseconds.

    access_rules: who may see a patient's record, derived from resources as they are written
    (in the same transaction) and from break-the-glass: `source` the resource (`Encounter/1`,
    `Consent/7`) or `break-glass/<id>`; `patient_id` a Patient id (the person's other
    Patients are reached through mpi_records when searching); `party` `Organization/<id>`,
    `Practitioner/<id>`, `cccd/<number>` (a guardian) or `*` (everyone); `effect` care,
    referral, permit, deny, guardian, break-glass; `label` a security label the rule is
    about ('' = the whole record); in force from `start` until `until`.
    """
    key = "INTEGER" if dialect == "sqlite" else "BIGINT"
    return [
        "CREATE TABLE access_rules (source TEXT NOT NULL, patient_id TEXT NOT NULL, "
        "party TEXT NOT NULL, effect TEXT NOT NULL, label TEXT NOT NULL DEFAULT '', "
        f"start {key} NOT NULL, until {key} NOT NULL, reason TEXT)",
        "CREATE INDEX access_rules_patient ON access_rules (patient_id, party, effect, until)",
        "CREATE INDEX access_rules_party ON access_rules (party, effect, until, patient_id)",
        "CREATE INDEX access_rules_source ON access_rules (source)",
    ]


AUDIT_TABLES: tuple[str, ...] = ("audit_events", "audit_head")

# The columns of an audit record covered by its hash (vnehr.audit.chain), in hash order.
AUDIT_COLUMNS: tuple[str, ...] = (
    "id",
    "recorded",
    "kind",
    "outcome",
    "agent",
    "client",
    "facility",
    "role",
    "patient",
    "purpose",
    "break_glass",
    "content",
)


def _audit_migration(dialect: str) -> list[str]:
    """0010: the audit trail (vnehr.audit, docs/audit.md). Times are epoch microseconds.

    audit_events: one AuditEvent per row (at most one patient each, as IHE BALP records a
    query per patient), its JSON in `content` and the columns searches filter on; `entry`
    is the insertion order; `seq`, `prev_hash` and `hash` are set once, when the row is
    sealed into the hash chain (NULL before). audit_head: the chain's last position and
    hash, one row, locked by the sealer. Triggers make sealed rows immutable and refuse
    deletions, in the database itself.
    """
    key = "INTEGER" if dialect == "sqlite" else "BIGINT"
    serial = (
        "INTEGER PRIMARY KEY"
        if dialect == "sqlite"
        else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    statements = [
        f"CREATE TABLE audit_events (entry {serial}, id TEXT NOT NULL UNIQUE, "
        f"seq {key} UNIQUE, recorded {key} NOT NULL, kind TEXT NOT NULL, "
        "outcome INTEGER NOT NULL, agent TEXT, client TEXT, facility TEXT, role TEXT, "
        "patient TEXT, purpose TEXT, break_glass INTEGER NOT NULL DEFAULT 0, "
        "content TEXT NOT NULL, prev_hash TEXT, hash TEXT)",
        "CREATE INDEX audit_events_patient ON audit_events (patient, recorded) "
        "WHERE patient IS NOT NULL",
        "CREATE INDEX audit_events_recorded ON audit_events (recorded)",
        "CREATE INDEX audit_events_facility ON audit_events (facility, recorded)",
        "CREATE INDEX audit_events_agent ON audit_events (agent, recorded)",
        "CREATE INDEX audit_events_unsealed ON audit_events (entry) WHERE seq IS NULL",
        f"CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq {key} NOT NULL, "
        "hash TEXT NOT NULL)",
    ]
    content = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in ("entry", *AUDIT_COLUMNS))
    if dialect == "sqlite":
        changed = content.replace("IS DISTINCT FROM", "IS NOT")
        return [
            *statements,
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END",
            "CREATE TRIGGER audit_events_sealed BEFORE UPDATE ON audit_events "
            f"WHEN OLD.hash IS NOT NULL OR {changed} "
            "BEGIN SELECT RAISE(ABORT, 'audit records are append-only: only sealing may "
            "set their chain position'); END",
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            "BEGIN SELECT RAISE(ABORT, 'the audit chain head cannot be deleted'); END",
            "CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head "
            "WHEN NEW.seq < OLD.seq OR NEW.id IS NOT OLD.id "
            "BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END",
        ]
    return [
        *statements,
        "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'DELETE' THEN "
        "RAISE EXCEPTION 'audit records are append-only'; END IF; "
        f"IF OLD.hash IS NOT NULL OR {content} THEN "
        "RAISE EXCEPTION 'audit records are append-only: only sealing may set their chain "
        "position'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
        "CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'DELETE' OR NEW.seq < OLD.seq OR NEW.id <> OLD.id THEN "
        "RAISE EXCEPTION 'the audit chain head only moves forward'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION audit_head_forward()",
    ]


SQLITE_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_resources",
        [
            """CREATE TABLE resources (
                rkey INTEGER PRIMARY KEY,
                res_type TEXT NOT NULL,
                res_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                last_updated INTEGER NOT NULL,
                deleted INTEGER NOT NULL DEFAULT 0,
                UNIQUE (res_type, res_id)
            )""",
            """CREATE TABLE resource_versions (
                rkey INTEGER NOT NULL,
                version INTEGER NOT NULL,
                res_type TEXT NOT NULL,
                last_updated INTEGER NOT NULL,
                deleted INTEGER NOT NULL,
                method TEXT NOT NULL,
                content BLOB,
                PRIMARY KEY (rkey, version)
            )""",
            "CREATE INDEX resource_versions_time ON resource_versions (last_updated)",
            "CREATE INDEX resource_versions_type_time ON resource_versions"
            " (res_type, last_updated)",
            """CREATE TABLE search_params (
                sp INTEGER PRIMARY KEY,
                res_type TEXT NOT NULL,
                code TEXT NOT NULL,
                UNIQUE (res_type, code)
            )""",
            *_index_tables("sqlite"),
        ],
    ),
    ("0002_search", _search_migration("sqlite")),
    ("0004_covering_indexes", _covering_migration("sqlite")),
    ("0005_identity", _identity_migration("sqlite")),
    ("0007_terminology", _terminology_migration("sqlite")),
    ("0008_auth", _auth_migration("sqlite")),
    ("0009_access", _access_migration("sqlite")),
    ("0010_audit", _audit_migration("sqlite")),
]

POSTGRES_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_resources",
        [
            """CREATE TABLE resources (
                rkey BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                res_type TEXT NOT NULL,
                res_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                last_updated BIGINT NOT NULL,
                deleted BOOLEAN NOT NULL DEFAULT FALSE,
                UNIQUE (res_type, res_id)
            )""",
            # content is the JSON text as written: JSONB would reorder keys (resourceType
            # would no longer come first); cast to jsonb where SQL needs to look inside.
            """CREATE TABLE resource_versions (
                rkey BIGINT NOT NULL,
                version INTEGER NOT NULL,
                res_type TEXT NOT NULL,
                last_updated BIGINT NOT NULL,
                deleted BOOLEAN NOT NULL,
                method TEXT NOT NULL,
                content TEXT,
                PRIMARY KEY (rkey, version)
            )""",
            "CREATE INDEX resource_versions_time ON resource_versions (last_updated)",
            "CREATE INDEX resource_versions_type_time ON resource_versions"
            " (res_type, last_updated)",
            """CREATE TABLE search_params (
                sp INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                res_type TEXT NOT NULL,
                code TEXT NOT NULL,
                UNIQUE (res_type, code)
            )""",
            *_index_tables("postgresql"),
        ],
    ),
    ("0002_search", _search_migration("postgresql")),
    # `_sort=_id` and cursors compare ids byte-wise, as SQLite does, whatever the database's
    # default collation.
    # Changing the column's type drops its statistics: gather them again at once.
    (
        "0003_id_collation",
        ['ALTER TABLE resources ALTER COLUMN res_id TYPE TEXT COLLATE "C"', "ANALYZE resources"],
    ),
    ("0004_covering_indexes", _covering_migration("postgresql")),
    ("0005_identity", _identity_migration("postgresql")),
    # The token lookup's columns depend on each other (the hash is of the code): without
    # this PostgreSQL multiplies their selectivities, estimates one row for a code that 60,000
    # Observations carry, and drives searches from it (measured at 1M resources:
    # `Observation?patient=X&code=C` 4 -> 420 ms, `_has` 20 ms -> 56 s).
    (
        "0006_token_statistics",
        [
            "CREATE STATISTICS idx_token_dependencies (dependencies) "
            "ON hv, sp, system, code FROM idx_token",
            "ANALYZE idx_token",
        ],
    ),
    ("0007_terminology", _terminology_migration("postgresql")),
    ("0008_auth", _auth_migration("postgresql")),
    ("0009_access", _access_migration("postgresql")),
    ("0010_audit", _audit_migration("postgresql")),
]
