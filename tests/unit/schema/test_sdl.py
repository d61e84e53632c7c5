"""The exported SDL is checked in and current; the schema's nullability follows the design."""

from graphql import GraphQLNonNull, GraphQLObjectType, get_named_type

from schema import SDL_PATH, SchemaLimits, build_schema, export_sdl

# Identifiers echoed from a query argument: the only fields allowed to be non-null.
# Household.householdId is echoed by household(householdId:) but also reached through
# Citizen.household, where nothing guarantees it: it stays nullable.
ECHOED = {
    ("Citizen", "personalId"),
    ("Business", "enterpriseCode"),
    ("InsuranceRecord", "personalId"),
}


# Root fields that answer about the procedure or a consent, not data held about people.
NOT_DATA = {"prefill", "consent"}


def _object_types() -> dict[str, GraphQLObjectType]:
    """Every object type reachable from the root query's data fields, the root excluded."""
    schema = build_schema(SchemaLimits())._schema
    assert schema.query_type is not None
    found: dict[str, GraphQLObjectType] = {}
    todo = [
        get_named_type(f.type)
        for name, f in schema.query_type.fields.items()
        if name not in NOT_DATA
    ]
    while todo:
        named = todo.pop()
        if isinstance(named, GraphQLObjectType) and named.name not in found:
            found[named.name] = named
            todo.extend(get_named_type(f.type) for f in named.fields.values())
    return found


def test_checked_in_sdl_is_current() -> None:
    if export_sdl() != SDL_PATH.read_text(encoding="utf-8"):
        raise AssertionError(f"{SDL_PATH} is stale: run `gateway schema export` and commit it")


def test_walk_reaches_every_entity_type() -> None:
    assert {
        "Citizen",
        "Business",
        "Household",
        "LandParcel",
        "InsuranceRecord",
        "Document",
        "Address",
        "RelatedPerson",
    } <= set(_object_types())


def test_every_field_but_the_echoed_identifier_is_nullable() -> None:
    non_null = {
        (type_name, field_name)
        for type_name, type_ in _object_types().items()
        for field_name, field in type_.fields.items()
        if isinstance(field.type, GraphQLNonNull)
    }
    assert non_null - ECHOED == set()


def test_echoed_identifiers_are_non_null() -> None:
    types = _object_types()
    for type_name, field_name in ECHOED:
        assert isinstance(types[type_name].fields[field_name].type, GraphQLNonNull)
