"""The `sql` connector against a SQLite land registry made with plain `sqlite3`."""

import re
import sqlite3
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from connectors import (
    FetchContext,
    ManifestError,
    SqlConnector,
    SqlManifest,
    connector_kinds,
    load_manifest,
)
from gateway.errors import SourceTimeout, SourceUnavailable

CTX = FetchContext(request_id="req-1")
PARCEL_FIELDS = frozenset(
    {
        "parcelId",
        "wardCode",
        "parcelNumber",
        "areaM2",
        "landUse",
        "certificateSerial",
        "certificateIssued",
        "holders",
        "mortgages",
    }
)
PARCELS = [f"P{n:03d}" for n in range(1, 26)]
"""Parcel ids; parcel n is held by holder H{n % 5} and co-held by H9 when n is even."""


def _make_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE certificates (
            cert_id INTEGER PRIMARY KEY, serial TEXT NOT NULL, issued_on DATE);
        CREATE TABLE parcels (
            parcel_id TEXT PRIMARY KEY, ward_code INTEGER, parcel_no TEXT, area REAL,
            land_use TEXT, cert_id INTEGER REFERENCES certificates (cert_id));
        CREATE TABLE coholders (
            id INTEGER PRIMARY KEY, parcel_id TEXT NOT NULL, personal_id TEXT NOT NULL,
            full_name TEXT, position INTEGER NOT NULL);
        CREATE TABLE mortgages (
            id INTEGER PRIMARY KEY, parcel_id TEXT NOT NULL, bank TEXT,
            amount NUMERIC, registered_on DATE);
        CREATE TABLE documents (
            document_id TEXT PRIMARY KEY, holder_id TEXT NOT NULL, title TEXT);
        """
    )
    for n, parcel in enumerate(PARCELS, start=1):
        db.execute(
            "INSERT INTO certificates VALUES (?, ?, ?)", (n, f"CS {n:06d}", f"2020-01-{n:02d}")
        )
        db.execute(
            "INSERT INTO parcels VALUES (?, ?, ?, ?, ?, ?)",
            (parcel, 25747, f"{n}", 100.5 + n, "ONT" if n % 2 else "LUC", n if n != 3 else None),
        )
        # Inserted out of order: the connector orders children by `position`.
        if n % 2 == 0:
            db.execute(
                "INSERT INTO coholders (parcel_id, personal_id, full_name, position) "
                "VALUES (?, 'H9', 'Trần Thị Chín', 2)",
                (parcel,),
            )
        db.execute(
            "INSERT INTO coholders (parcel_id, personal_id, full_name, position) "
            "VALUES (?, ?, ?, 1)",
            (parcel, f"H{n % 5}", f"Nguyễn Văn {n % 5}"),
        )
    db.executemany(
        "INSERT INTO mortgages (parcel_id, bank, amount, registered_on) VALUES (?, ?, ?, ?)",
        [
            ("P002", "Vietcombank", 2500000000, "2023-05-01"),
            ("P002", "Agribank", 1250000.5, "2021-02-03"),
            ("P004", "Sacombank", 1, None),
            ("P004", "BIDV", 2, "2022-01-01"),
            ("P004", "Techcombank", 3, None),
        ],
    )
    db.executemany(
        "INSERT INTO documents VALUES (?, ?, ?)",
        [("D1", "H1", "Giấy phép"), ("D2", "H1", "Chứng chỉ"), ("D3", "H2", "Giấy phép")],
    )
    db.commit()
    db.close()


def _manifest_data(database: Path) -> dict[str, Any]:
    return {
        "name": "land",
        "kind": "sql",
        "timeout_seconds": 2,
        "database": {"url": f"sqlite:///{database}"},
        "entities": {
            "LandParcel": {
                "table": "parcels",
                "key_field": "parcel_id",
                "joins": {
                    "certificate": {"table": "certificates", "match": {"cert_id": "cert_id"}}
                },
                "children": {
                    "coholders": {
                        "table": "coholders",
                        "match": {"parcel_id": "parcel_id"},
                        "order_by": "position",
                    },
                    "mortgages": {
                        "table": "mortgages",
                        "match": {"parcel_id": "parcel_id"},
                        "order_by": "registered_on",
                    },
                },
                "lists": {"holder": {"column": "personal_id", "through": "coholders"}},
                "fields": {
                    "parcelId": "parcel_id",
                    "wardCode": "ward_code",
                    "parcelNumber": "parcel_no",
                    "areaM2": "area",
                    "landUse": {"from": "land_use", "values": {"ONT": "urban", "LUC": "rice"}},
                    "certificateSerial": "certificate.serial",
                    "certificateIssued": {"expr": "certificate.issued_on"},
                    "holders": {
                        "from": "coholders",
                        "fields": {"personalId": "personal_id", "fullName": "full_name"},
                    },
                    "mortgages": {
                        "from": "mortgages",
                        "fields": {"bank": "bank", "amount": "amount", "on": "registered_on"},
                    },
                },
            },
            "Document": {
                "table": "documents",
                "key_field": "document_id",
                "lists": {"holder": {"column": "holder_id"}},
                "fields": {"documentId": "document_id", "title": "title"},
            },
        },
    }


def _write(path: Path, data: dict[str, Any]) -> SqlManifest:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    manifest = load_manifest(path)
    assert isinstance(manifest, SqlManifest)
    return manifest


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("land") / "land.db"
    _make_database(path)
    return path


@pytest.fixture
async def land(database: Path, tmp_path: Path) -> AsyncIterator[SqlConnector]:
    connector = SqlConnector(_write(tmp_path / "land.yaml", _manifest_data(database)))
    await connector.open()
    yield connector
    await connector.aclose()


async def test_the_sql_kind_is_a_registered_plug_in() -> None:
    assert connector_kinds()["sql"] is SqlConnector


async def test_a_parcel_is_read_with_its_join_and_children_mapped(land: SqlConnector) -> None:
    out = await land.fetch("LandParcel", ["P002"], PARCEL_FIELDS, CTX)

    assert out["P002"] == {
        "parcelId": "P002",
        "wardCode": 25747,
        "parcelNumber": "2",
        "areaM2": 102.5,
        "landUse": "rice",
        "certificateSerial": "CS 000002",
        "certificateIssued": "2020-01-02",
        "holders": [
            {"personalId": "H2", "fullName": "Nguyễn Văn 2"},
            {"personalId": "H9", "fullName": "Trần Thị Chín"},
        ],
        "mortgages": [
            {"bank": "Agribank", "amount": 1250000.5, "on": "2021-02-03"},
            {"bank": "Vietcombank", "amount": 2500000000, "on": "2023-05-01"},
        ],
    }


async def test_a_missing_join_row_is_none_and_missing_children_an_empty_list(
    land: SqlConnector,
) -> None:
    out = await land.fetch("LandParcel", ["P003"], PARCEL_FIELDS, CTX)

    record = out["P003"]
    assert isinstance(record, dict)
    assert record["certificateSerial"] is None
    assert record["certificateIssued"] is None
    assert record["mortgages"] == []
    assert record["holders"] == [{"personalId": "H3", "fullName": "Nguyễn Văn 3"}]


async def test_a_key_not_in_the_table_is_none(land: SqlConnector) -> None:
    out = await land.fetch("LandParcel", ["P001", "NOPE"], frozenset({"parcelId"}), CTX)

    assert out == {"P001": {"parcelId": "P001"}, "NOPE": None}


async def test_the_number_of_queries_does_not_grow_with_the_keys(land: SqlConnector) -> None:
    land.queries = 0
    one = await land.fetch("LandParcel", PARCELS[:1], PARCEL_FIELDS, CTX)
    for_one = land.queries
    land.queries = 0
    twenty = await land.fetch("LandParcel", PARCELS[:20], PARCEL_FIELDS, CTX)

    assert for_one == land.queries == 4  # parcels, the certificate and two kinds of children
    assert len(one) == 1
    assert len(twenty) == 20
    assert all(isinstance(twenty[p], dict) for p in PARCELS[:20])
    assert twenty["P010"]["holders"] == [  # type: ignore[index]
        {"personalId": "H0", "fullName": "Nguyễn Văn 0"},
        {"personalId": "H9", "fullName": "Trần Thị Chín"},
    ]


@pytest.mark.parametrize(
    ("fields", "queries"),
    [
        (frozenset({"parcelId", "areaM2"}), 1),
        (frozenset({"certificateSerial"}), 2),
        (frozenset({"certificateIssued"}), 2),  # an expression reads the join too
        (frozenset({"holders", "mortgages"}), 3),
    ],
)
async def test_only_the_tables_the_fields_need_are_read(
    land: SqlConnector, fields: frozenset[str], queries: int
) -> None:
    land.queries = 0
    out = await land.fetch("LandParcel", ["P002", "P004"], fields, CTX)

    assert land.queries == queries
    assert set(out["P002"]) == fields  # type: ignore[arg-type]


async def test_parcels_are_listed_by_holder_through_the_co_holders(land: SqlConnector) -> None:
    land.queries = 0
    out = await land.fetch(
        "LandParcel", ["H1", "H9", "NOBODY"], frozenset({"parcelId", "holders"}), CTX, by="holder"
    )

    assert land.queries == 2  # the parcels with their holders' rows, then the co-holders
    assert [p["parcelId"] for p in out["H1"]] == ["P001", "P006", "P011", "P016", "P021"]  # type: ignore[index, union-attr]
    assert [p["parcelId"] for p in out["H9"]] == [p for p in PARCELS if int(p[1:]) % 2 == 0]  # type: ignore[index, union-attr]
    assert out["NOBODY"] == []  # holds nothing: an answer, not a failure
    assert out["H1"][0]["holders"] == [{"personalId": "H1", "fullName": "Nguyễn Văn 1"}]  # type: ignore[index]


async def test_documents_are_listed_by_a_column_of_their_own_table(land: SqlConnector) -> None:
    out = await land.fetch("Document", ["H1", "H2", "H3"], frozenset({"title"}), CTX, by="holder")

    assert out == {
        "H1": [{"title": "Giấy phép"}, {"title": "Chứng chỉ"}],
        "H2": [{"title": "Giấy phép"}],
        "H3": [],
    }


async def test_the_database_is_opened_read_only(land: SqlConnector, database: Path) -> None:
    engine = land._engine
    assert engine is not None
    with pytest.raises(OperationalError, match=r"readonly database"):
        async with engine.connect() as conn:
            await conn.execute(text("UPDATE parcels SET land_use = 'X'"))
    db = sqlite3.connect(database)
    assert db.execute("SELECT count(*) FROM parcels WHERE land_use = 'X'").fetchone() == (0,)
    db.close()


async def test_health_answers(land: SqlConnector) -> None:
    health = await land.health()
    assert health.ok


def _broken(data: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    parcel = data["entities"]["LandParcel"]
    if where == "table":
        parcel["table"] = value
    elif where == "key_field":
        parcel["key_field"] = value
    elif where == "field":
        parcel["fields"]["landUse"] = {"from": value, "values": {"ONT": "urban"}}
    elif where == "join_field":
        parcel["fields"]["certificateSerial"] = value
    elif where == "nested":
        parcel["fields"]["holders"]["fields"]["fullName"] = value
    elif where == "on":
        parcel["children"]["mortgages"]["match"] = {value: "parcel_id"}
    elif where == "order_by":
        parcel["children"]["coholders"]["order_by"] = value
    elif where == "list":
        parcel["lists"]["holder"]["column"] = value
    return data


@pytest.mark.parametrize(
    ("where", "value", "loc", "message"),
    [
        ("table", "thua_dat", "entities.LandParcel.table", "no table 'thua_dat'"),
        ("key_field", "ma_thua", "entities.LandParcel.key_field", "no column 'ma_thua'"),
        ("field", "muc_dich", "entities.LandParcel.fields.landUse.from", "no column 'muc_dich'"),
        (
            "join_field",
            "certificate.so_serial",
            "entities.LandParcel.fields.certificateSerial",
            "no column 'so_serial' in table 'certificates'",
        ),
        (
            "nested",
            "ho_ten",
            "entities.LandParcel.fields.holders.fields.fullName",
            "no column 'ho_ten' in table 'coholders'",
        ),
        (
            "on",
            "thua_id",
            "entities.LandParcel.children.mortgages.match.thua_id",
            "no column 'thua_id' in table 'mortgages'",
        ),
        (
            "key_field",
            "area",
            "entities.LandParcel.key_field",
            "column 'area' of table 'parcels' is of type REAL: keys are matched on",
        ),
        (
            "on",
            "amount",
            "entities.LandParcel.children.mortgages.match.amount",
            "column 'amount' of table 'mortgages' is of type NUMERIC: keys are matched on",
        ),
        (
            "order_by",
            "thu_tu",
            "entities.LandParcel.children.coholders.order_by",
            "no column 'thu_tu' in table 'coholders'",
        ),
        (
            "list",
            "cccd",
            "entities.LandParcel.lists.holder.column",
            "no column 'cccd' in table 'coholders'",
        ),
    ],
)
async def test_what_the_database_lacks_is_named_by_file_line_and_field(
    database: Path, tmp_path: Path, where: str, value: str, loc: str, message: str
) -> None:
    path = tmp_path / "land.yaml"
    connector = SqlConnector(_write(path, _broken(_manifest_data(database), where, value)))
    try:
        with pytest.raises(ManifestError) as caught:
            await connector.open()
    finally:
        await connector.aclose()

    error = caught.value
    assert error.path == str(path)
    assert error.line is not None
    assert value.split(".")[-1] in path.read_text().splitlines()[error.line - 1]
    assert f"{loc}: {message}" in str(error)


async def test_a_database_that_is_not_there_is_unavailable_until_it_is(tmp_path: Path) -> None:
    # As a REST source that is down: the gateway starts, reads fail, and the first
    # read after the database is there opens it.
    path = tmp_path / "land.yaml"
    connector = SqlConnector(_write(path, _manifest_data(tmp_path / "missing.db")))
    try:
        with pytest.raises(SourceUnavailable, match="cannot be read") as caught:
            await connector.open()
        assert "sqlite:///" in caught.value.message
        assert not (tmp_path / "missing.db").exists()  # read-only: nothing is created
        with pytest.raises(SourceUnavailable):
            await connector.fetch("LandParcel", ["P001"], frozenset({"parcelId"}), CTX)
        assert not (await connector.health()).ok
        _make_database(tmp_path / "missing.db")
        found = await connector.fetch("LandParcel", ["P001"], frozenset({"parcelId"}), CTX)
        assert found["P001"] == {"parcelId": "P001"}
    finally:
        await connector.aclose()


@pytest.mark.parametrize(
    ("where", "value"),
    [("table", "parcels; DROP TABLE parcels"), ("key_field", "parcel_id--"), ("on", "a b")],
)
def test_a_name_that_is_not_a_plain_identifier_is_refused_at_load(
    database: Path, tmp_path: Path, where: str, value: str
) -> None:
    path = tmp_path / "land.yaml"
    with pytest.raises(ManifestError, match="not a plain name") as caught:
        _write(path, _broken(_manifest_data(database), where, value))
    assert caught.value.line is not None


async def test_the_password_is_in_no_repr_or_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-Pa55word"
    monkeypatch.setenv("SOURCE_LAND_DB_PASSWORD", secret)
    data = _manifest_data(tmp_path / "unused.db")
    data["timeout_seconds"] = 1
    data["database"] = {
        "url": "postgresql://127.0.0.1:1/land",  # nothing listens there
        "user": "reader",
        "password": {"ref": "env:SOURCE_LAND_DB_PASSWORD"},
    }
    connector = SqlConnector(_write(tmp_path / "land.yaml", data))
    try:
        with pytest.raises(SourceUnavailable) as caught:
            await connector.open()
        health = await connector.health()
    finally:
        await connector.aclose()

    assert "postgresql://127.0.0.1:1/land" in str(caught.value)
    for shown in (repr(connector), str(caught.value), repr(caught.value), health.detail):
        assert secret not in shown
    assert not health.ok


async def test_an_unset_password_variable_is_named_not_guessed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_LAND_DB_PASSWORD", raising=False)
    data = _manifest_data(tmp_path / "unused.db")
    data["database"] = {
        "url": "postgresql://127.0.0.1:1/land",
        "user": "reader",
        "password": {"ref": "env:SOURCE_LAND_DB_PASSWORD"},
    }
    connector = SqlConnector(_write(tmp_path / "land.yaml", data))
    with pytest.raises(
        ManifestError, match=r"database\.password: .*SOURCE_LAND_DB_PASSWORD is not set"
    ):
        await connector.open()
    await connector.aclose()


def _self_signed(folder: Path) -> None:
    """A certificate and its key, as PEM files `client.pem` and `client.key`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "client.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "client.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _with_tls(tmp_path: Path, tls: dict[str, Any], url: str = "postgresql://127.0.0.1:1/land"):
    data = _manifest_data(tmp_path / "unused.db")
    data["database"] = {"url": url, "user": "reader", "tls": tls}
    return SqlConnector(_write(tmp_path / "land.yaml", data))


def test_tls_files_are_read_from_the_manifest_folder(tmp_path: Path) -> None:
    _self_signed(tmp_path)
    connector = _with_tls(
        tmp_path,
        {
            "mode": "verify-ca",
            "ca_file": "client.pem",
            "client_cert": "client.pem",
            "client_key": {"ref": "file:client.key"},
        },
    )

    context = connector._ssl_context()

    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.check_hostname
    assert context.cert_store_stats()["x509"] == 1  # that CA alone, not the system's


@pytest.mark.parametrize(
    ("tls", "url", "loc"),
    [
        (
            {"client_cert": "client.pem", "client_key": {"ref": "env:SOURCE_LAND_KEY"}},
            "postgresql://127.0.0.1:1/land",
            "database.tls.client_key: the client key is read from a file",
        ),
        ({"ca_file": "missing.pem"}, "postgresql://127.0.0.1:1/land", "database.tls: cannot load"),
        ({"mode": "require"}, "sqlite:///land.db", "database.tls: TLS applies to PostgreSQL only"),
    ],
)
async def test_tls_that_cannot_be_used_is_a_manifest_error(
    tmp_path: Path, tls: dict[str, Any], url: str, loc: str
) -> None:
    connector = _with_tls(tmp_path, tls, url)
    with pytest.raises(ManifestError, match=re.escape(loc)):
        await connector.open()
    await connector.aclose()


async def test_a_file_held_by_a_writer_times_out(database: Path, tmp_path: Path) -> None:
    data = _manifest_data(database)
    data["timeout_seconds"] = 0.3
    connector = SqlConnector(_write(tmp_path / "land.yaml", data))
    await connector.open()
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        started = time.perf_counter()
        with pytest.raises(SourceTimeout):
            await connector.fetch("LandParcel", ["P001"], frozenset({"parcelId"}), CTX)
        assert time.perf_counter() - started < 1.5
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    out = await connector.fetch("LandParcel", ["P001"], frozenset({"parcelId"}), CTX)
    await connector.aclose()
    assert out == {"P001": {"parcelId": "P001"}}


@pytest.fixture
async def certificates(database: Path, tmp_path: Path) -> AsyncIterator[SqlConnector]:
    """Certificates by their INTEGER id."""
    data = _manifest_data(database)
    data["entities"]["Certificate"] = {
        "table": "certificates",
        "key_field": "cert_id",
        "fields": {"certId": "cert_id", "serial": "serial"},
    }
    connector = SqlConnector(_write(tmp_path / "land.yaml", data))
    await connector.open()
    yield connector
    await connector.aclose()


@pytest.mark.parametrize(
    "key",
    [
        "0101",
        "012",
        " 12",
        "12 ",
        "+12",
        "١٢",
        "²",
        "1_2",
        "-0012",
        "9" * 5000,
        str(2**70),
        str(2**63),
        "",
        "-",
    ],
)
async def test_an_integer_key_not_written_plainly_is_not_found_and_not_asked(
    certificates: SqlConnector, key: str
) -> None:
    certificates.queries = 0
    out = await certificates.fetch("Certificate", [key], frozenset({"serial"}), CTX)

    assert out == {key: None}
    assert certificates.queries == 0


async def test_integer_keys_written_plainly_are_found_beside_ones_that_are_not(
    certificates: SqlConnector,
) -> None:
    keys = ["12", "0012", "١٢", "1", str(2**63 - 1), str(-(2**63)), "-5"]
    out = await certificates.fetch("Certificate", keys, frozenset({"certId", "serial"}), CTX)

    assert out == {
        "12": {"certId": 12, "serial": "CS 000012"},
        "0012": None,
        "١٢": None,
        "1": {"certId": 1, "serial": "CS 000001"},
        str(2**63 - 1): None,
        str(-(2**63)): None,
        "-5": None,
    }


async def test_children_with_no_order_value_come_last_then_in_key_order(
    land: SqlConnector,
) -> None:
    out = await land.fetch("LandParcel", ["P004"], frozenset({"mortgages"}), CTX)

    assert out["P004"] == {
        "mortgages": [
            {"bank": "BIDV", "amount": 2, "on": "2022-01-01"},
            {"bank": "Sacombank", "amount": 1, "on": None},
            {"bank": "Techcombank", "amount": 3, "on": None},
        ]
    }


def _selected(statements: list[str], table: str) -> set[str]:
    """The columns of `table` the one statement reading it from selects."""
    (statement,) = [s for s in statements if re.search(rf"\bFROM {table}\b", s)]
    listed = statement.split("FROM")[0].removeprefix("SELECT")
    return {name.strip().split(".")[-1] for name in listed.split(",")}


@pytest.mark.parametrize(
    ("fields", "table", "columns"),
    [
        (
            frozenset({"holders"}),
            "coholders",
            {"parcel_id", "personal_id", "full_name", "position"},  # not `id`
        ),
        (frozenset({"certificateSerial"}), "certificates", {"cert_id", "serial"}),
        (frozenset({"mortgages"}), "mortgages", {"parcel_id", "bank", "amount", "registered_on"}),
        (  # an expression may read any column of what it names
            frozenset({"certificateIssued"}),
            "certificates",
            {"cert_id", "serial", "issued_on"},
        ),
    ],
)
async def test_joins_and_children_select_only_the_columns_the_mapping_reads(
    land: SqlConnector, fields: frozenset[str], table: str, columns: set[str]
) -> None:
    assert land._engine is not None
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(land._engine.sync_engine, "before_cursor_execute", seen)
    try:
        out = await land.fetch("LandParcel", ["P002"], fields, CTX)
    finally:
        event.remove(land._engine.sync_engine, "before_cursor_execute", seen)

    assert _selected(statements, table) == columns
    assert set(out["P002"]) == fields  # type: ignore[arg-type]


async def test_a_user_name_given_by_reference_is_in_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = "s3cr3t-user"
    monkeypatch.setenv("SOURCE_LAND_DB_USER", user)
    data = _manifest_data(tmp_path / "unused.db")
    data["database"] = {
        "url": "postgresql://127.0.0.1:1/land",
        "user": {"ref": "env:SOURCE_LAND_DB_USER"},
    }
    connector = SqlConnector(_write(tmp_path / "land.yaml", data))
    connector._engine = connector._create_engine()
    try:
        said = connector._redact(f'role "{user}" does not exist')
    finally:
        await connector.aclose()

    assert said == 'role "***" does not exist'


async def test_a_user_name_written_in_the_manifest_is_left_in_errors(tmp_path: Path) -> None:
    data = _manifest_data(tmp_path / "unused.db")
    data["database"] = {"url": "postgresql://127.0.0.1:1/land", "user": "reader"}
    connector = SqlConnector(_write(tmp_path / "land.yaml", data))
    connector._engine = connector._create_engine()
    try:
        said = connector._redact('role "reader" does not exist')
    finally:
        await connector.aclose()

    assert said == 'role "reader" does not exist'
