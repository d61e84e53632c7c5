"""The real schema executed against connectors over `httpx.MockTransport`."""

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import orjson
import pytest

from connectors import (
    ConnectorRegistry,
    FetchContext,
    FetchResult,
    Health,
    RestConnector,
    parse_manifest,
)
from gateway.errors import SourceUnavailable
from policies import Purpose, UnsafeAllowAll
from schema import Access, RequestContext, SchemaLimits, build_schema

SCHEMA = build_schema(SchemaLimits())

AN = "001099012345"
BINH = "079301000002"

MANIFEST = parse_manifest(
    {
        "name": "population",
        "kind": "rest",
        "base_url": "http://population.test",
        "retries": 0,
        "entities": {
            "Citizen": {
                "key_field": "so_dinh_danh",
                "get": "/v1/cong-dan/{key}",
                "fields_param": "truong",
                "batch": {
                    "path": "/v1/cong-dan/tra-cuu",
                    "keys_field": "danh_sach",
                    "fields_field": "truong",
                    "results_field": "ket_qua",
                },
                "fields": {
                    "personalId": "so_dinh_danh",
                    "fullName": "ho_ten",
                    "birthDate": "ngay_sinh",
                    "gender": {"from": "gioi_tinh", "values": {"Nam": "MALE", "Nữ": "FEMALE"}},
                    "permanentResidence": {
                        "from": "noi_thuong_tru",
                        "fields": {"provinceName": "ten_tinh", "wardName": "ten_xa"},
                    },
                },
            }
        },
    }
)

PEOPLE = {
    AN: {
        "so_dinh_danh": AN,
        "ho_ten": "Nguyễn Văn An",
        "ngay_sinh": "1999-01-31",
        "gioi_tinh": "Nam",
        "noi_thuong_tru": {"ten_tinh": "Thành phố Hà Nội", "ten_xa": "Phường Ba Đình"},
    },
    BINH: {"so_dinh_danh": BINH, "ho_ten": "Trần Thị Bình", "gioi_tinh": "Không rõ"},
}


class Source:
    """The population database: answers GET and batch POST from `PEOPLE`."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "POST":
            keys = orjson.loads(request.content)["danh_sach"]
            return httpx.Response(200, json={"ket_qua": [PEOPLE[k] for k in keys if k in PEOPLE]})
        key = request.url.path.rsplit("/", 1)[-1]
        if key not in PEOPLE:
            return httpx.Response(404)
        return httpx.Response(200, json=PEOPLE[key])


class RaisingConnector:
    """A connector whose every fetch raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.name = "population"
        self.error = error

    async def fetch(
        self, kind: str, keys: Sequence[str], fields: frozenset[str], ctx: FetchContext
    ) -> Mapping[str, FetchResult]:
        raise self.error

    async def health(self) -> Health:
        return Health(ok=True)

    async def aclose(self) -> None:
        return None


def _allow_all() -> Access:
    """No decisions: these tests are about fetching and building, not about policy."""
    return Access(
        client_id="VN/GOV/TEST/unit",
        agency_kinds=frozenset(),
        purpose=Purpose("TEST", "HS-1", "officer-1", ()),
        policy=UnsafeAllowAll(),
    )


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
async def context(source: Source) -> AsyncIterator[RequestContext]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as http:
        registry = ConnectorRegistry([(MANIFEST, RestConnector(MANIFEST, http=http))])
        yield RequestContext(
            registry=registry,
            fetch=FetchContext(request_id="req-1"),
            max_batch=3,
            access=_allow_all(),
        )


def _context_raising(error: Exception) -> RequestContext:
    registry = ConnectorRegistry([(MANIFEST, RaisingConnector(error))])
    return RequestContext(
        registry=registry,
        fetch=FetchContext(request_id="req-1"),
        max_batch=3,
        access=_allow_all(),
    )


async def _run(
    ctx: RequestContext, query: str, variables: dict[str, Any] | None = None
) -> tuple[Any, dict[tuple[Any, ...], dict[str, Any]]]:
    """The data, and each error's `formatted` form keyed by its path."""
    result = await SCHEMA.execute(query, variable_values=variables, context_value=ctx)
    errors = {tuple(e.path or ()): e.formatted for e in result.errors or []}
    return result.data, errors


async def test_citizen_is_served(context: RequestContext) -> None:
    data, errors = await _run(
        context,
        f'{{ citizen(personalId: "{AN}") {{ personalId fullName birthDate gender '
        "permanentResidence { provinceName wardName } } }",
    )
    assert errors == {}
    assert data == {
        "citizen": {
            "personalId": AN,
            "fullName": "Nguyễn Văn An",
            "birthDate": "1999-01-31",
            "gender": "MALE",
            "permanentResidence": {
                "provinceName": "Thành phố Hà Nội",
                "wardName": "Phường Ba Đình",
            },
        }
    }


async def test_field_without_connector_is_null_with_no_source(context: RequestContext) -> None:
    data, errors = await _run(context, f'{{ citizen(personalId: "{AN}") {{ fullName phone }} }}')
    assert data == {"citizen": {"fullName": "Nguyễn Văn An", "phone": None}}
    assert set(errors) == {("citizen", "phone")}
    assert errors["citizen", "phone"]["extensions"]["code"] == "NO_SOURCE"


async def test_kind_without_connector_is_no_source(context: RequestContext) -> None:
    data, errors = await _run(context, '{ business(enterpriseCode: "0100109106") { name } }')
    assert data == {"business": None}
    assert errors["business",]["extensions"]["code"] == "NO_SOURCE"


async def test_malformed_id_is_invalid_identifier_without_a_source_call(
    context: RequestContext, source: Source
) -> None:
    data, errors = await _run(context, '{ citizen(personalId: "12345") { fullName } }')
    assert data == {"citizen": None}
    assert errors["citizen",]["extensions"]["code"] == "INVALID_IDENTIFIER"
    assert source.requests == []


async def test_unknown_citizen_is_not_found(context: RequestContext) -> None:
    data, errors = await _run(context, '{ citizen(personalId: "001099999999") { fullName } }')
    assert data == {"citizen": None}
    assert errors["citizen",]["extensions"]["code"] == "NOT_FOUND"


async def test_value_the_source_maps_badly_fails_only_its_field(context: RequestContext) -> None:
    data, errors = await _run(context, f'{{ citizen(personalId: "{BINH}") {{ fullName gender }} }}')
    assert data == {"citizen": {"fullName": "Trần Thị Bình", "gender": None}}
    assert errors["citizen", "gender"]["extensions"]["code"] == "SOURCE_DATA_INVALID"
    assert "Không rõ" not in orjson.dumps(list(errors.values())).decode()


async def test_only_source_fields_of_selected_fields_are_asked_for(
    context: RequestContext, source: Source
) -> None:
    await _run(
        context, f'{{ citizen(personalId: "{AN}") {{ ...F }} }} fragment F on Citizen {{ gender }}'
    )
    [request] = source.requests
    assert request.url.params["truong"] == "gioi_tinh,so_dinh_danh"


async def test_two_lookups_in_one_request_are_one_batch(
    context: RequestContext, source: Source
) -> None:
    data, errors = await _run(
        context,
        f'{{ a: citizen(personalId: "{AN}") {{ fullName birthDate }} '
        f'b: citizen(personalId: "{BINH}") {{ birthDate fullName }} }}',
    )
    assert errors == {}
    assert data["a"]["fullName"] == "Nguyễn Văn An"
    [request] = source.requests
    assert request.method == "POST"
    body = orjson.loads(request.content)
    assert sorted(body["danh_sach"]) == sorted([AN, BINH])
    assert body["truong"] == ["ho_ten", "ngay_sinh", "so_dinh_danh"]
    assert context.source_calls == 1


async def test_lookups_wanting_other_fields_are_not_given_each_others_fields(
    context: RequestContext, source: Source
) -> None:
    await _run(
        context,
        f'{{ a: citizen(personalId: "{AN}") {{ fullName }} '
        f'b: citizen(personalId: "{BINH}") {{ birthDate }} }}',
    )
    asked = sorted(
        (request.url.path.rsplit("/", 1)[-1], request.url.params["truong"])
        for request in source.requests
    )
    assert asked == sorted([(AN, "ho_ten,so_dinh_danh"), (BINH, "ngay_sinh,so_dinh_danh")])


async def test_citizens_keeps_order_and_nulls_malformed_ids(
    context: RequestContext, source: Source
) -> None:
    data, errors = await _run(
        context,
        "query Q($ids: [String!]!) { citizens(personalIds: $ids) { personalId } }",
        {"ids": [BINH, "bad", AN]},
    )
    assert data == {"citizens": [{"personalId": BINH}, None, {"personalId": AN}]}
    assert errors["citizens", 1]["extensions"]["code"] == "INVALID_IDENTIFIER"
    assert len(source.requests) == 1


async def test_citizens_over_the_batch_cap_is_invalid_argument(
    context: RequestContext, source: Source
) -> None:
    ids = [AN, BINH, AN, BINH]
    data, errors = await _run(
        context,
        "query Q($ids: [String!]!) { citizens(personalIds: $ids) { personalId } }",
        {"ids": ids},
    )
    # The field is nullable: the refusal does not wipe out the rest of the answer.
    assert data == {"citizens": None}
    assert errors["citizens",]["extensions"]["code"] == "INVALID_ARGUMENT"
    assert source.requests == []


async def test_source_error_keeps_its_code() -> None:
    ctx = _context_raising(SourceUnavailable(source="population"))
    data, errors = await _run(ctx, f'{{ citizen(personalId: "{AN}") {{ fullName }} }}')
    assert data == {"citizen": None}
    error = errors["citizen",]
    assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    assert error["message"] == "The source is unavailable."


async def test_unexpected_exception_is_masked_as_internal() -> None:
    ctx = _context_raising(ZeroDivisionError("division by zero in a connector"))
    data, errors = await _run(ctx, f'{{ citizen(personalId: "{AN}") {{ fullName }} }}')
    assert data == {"citizen": None}
    error = errors["citizen",]
    assert error["message"] == "Internal error."
    assert error["extensions"] == {"code": "INTERNAL"}


async def test_invalid_identifier_message_is_not_masked(context: RequestContext) -> None:
    _, errors = await _run(context, '{ citizen(personalId: "12345") { fullName } }')
    assert errors["citizen",]["message"] == "A personal id is 12 digits."


async def test_validation_errors_are_not_masked(context: RequestContext) -> None:
    result = await SCHEMA.execute("{ citizen { shoeSize } }", context_value=context)
    assert result.errors
    assert all(e.message != "Internal error." for e in result.errors)


_SAME_ON_BOTH_PATHS = [
    (f'{{ citizen(personalId: "{AN}") {{ personalId fullName birthDate gender '
     "permanentResidence { provinceName wardName } } }", None, None),
    (f'{{ citizen(personalId: "{AN}") {{ fullName phone }} }}', None, None),
    ('{ citizen(personalId: "12345") { fullName } }', None, None),
    ('{ citizen(personalId: "001099999999") { fullName } }', None, None),
    ('{ business(enterpriseCode: "0100109106") { name } }', None, None),
    (f'{{ citizens(personalIds: ["{AN}", "1", "{BINH}"]) {{ fullName gender }} }}', None, None),
    (f'{{ citizens(personalIds: ["{AN}", "{AN}", "{AN}", "{AN}"]) {{ fullName }} }}', None, None),
    ("query Q($id: String!) { citizen(personalId: $id) { fullName } }", {"id": AN}, None),
    ("query Q($id: String!) { citizen(personalId: $id) { fullName } }", {"id": 7}, None),
    ("query Q($id: String!) { citizen(personalId: $id) { fullName } }", {}, None),
    ('query A { __typename } query B { citizen(personalId: "' + AN + '") { fullName } }',
     None, "B"),
    ("{ __typename }", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("query", "variables", "operation"), _SAME_ON_BOTH_PATHS)
async def test_a_prepared_document_answers_as_the_first_run_did(
    source: Source, query: str, variables: dict[str, Any] | None, operation: str | None
) -> None:
    # A schema of its own: the first run takes strawberry's whole path, the second the
    # prepared document; both answer the same, errors (order, text, codes) included.
    schema = build_schema(SchemaLimits())
    answers = []
    for _ in range(2):
        async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as http:
            registry = ConnectorRegistry([(MANIFEST, RestConnector(MANIFEST, http=http))])
            ctx = RequestContext(
                registry=registry, fetch=FetchContext(request_id="req-1"), max_batch=3,
                access=_allow_all(),
            )  # fmt: skip
            result = await schema.execute(
                query, variable_values=variables, context_value=ctx, operation_name=operation
            )
        answers.append((result.data, [e.formatted for e in result.errors or []]))
    if answers[0][0] is not None:
        assert (query, operation) in schema._prepared  # type: ignore[attr-defined]
    assert answers[0] == answers[1]


async def test_a_prepared_document_masks_an_unexpected_error_and_keeps_a_source_error() -> None:
    schema = build_schema(SchemaLimits())
    query = f'{{ citizen(personalId: "{AN}") {{ fullName }} }}'
    cases = [
        (RuntimeError("bug 001099012345"), "INTERNAL"),
        (SourceUnavailable(source="population"), "SOURCE_UNAVAILABLE"),
    ]
    for error, code in cases:
        answers = []
        for _ in range(2):
            result = await schema.execute(query, context_value=_context_raising(error))
            answers.append([e.formatted for e in result.errors or []])
        assert (query, None) in schema._prepared  # type: ignore[attr-defined]
        assert answers[0] == answers[1]
        assert answers[1][0]["extensions"]["code"] == code
        assert "001099012345" not in str(answers[1])


async def test_a_prepared_mutation_is_still_refused_where_only_queries_are_allowed(
    context: RequestContext,
) -> None:
    from strawberry.schema.exceptions import InvalidOperationTypeError
    from strawberry.types.graphql import OperationType

    schema = build_schema(SchemaLimits())
    mutation = "mutation M { __typename }"
    both = {OperationType.QUERY, OperationType.MUTATION}
    ran = await schema.execute(mutation, context_value=context, allowed_operation_types=both)
    assert ran.data == {"__typename": "Mutation"}
    assert (mutation, None) in schema._prepared  # type: ignore[attr-defined]
    # Over GET (queries only) the prepared mutation is refused as before.
    with pytest.raises(InvalidOperationTypeError):
        await schema.execute(
            mutation, context_value=context, allowed_operation_types={OperationType.QUERY}
        )
