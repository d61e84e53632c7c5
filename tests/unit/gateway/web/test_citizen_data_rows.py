"""How the "my data" page writes the citizen's values."""

from gateway.web._citizen_pages import _shown_data


def test_dates_are_written_as_people_write_them_and_enums_with_their_labels() -> None:
    data = {"birthDate": "1987-06-05", "gender": "FEMALE", "fullName": "Trần Phương Lan"}
    vi = {row["path"]: row["value"] for row in _shown_data(data, "vi")}
    assert vi["Citizen.birthDate"] == "05/06/1987"
    assert vi["Citizen.gender"] == "Nữ"
    assert vi["Citizen.fullName"] == "Trần Phương Lan"
    en = {row["path"]: row["value"] for row in _shown_data(data, "en")}
    assert en["Citizen.birthDate"] == "1987-06-05"
