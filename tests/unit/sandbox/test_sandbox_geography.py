from vietnam_provinces import Province, ProvinceCode, Ward, WardCode

from sandbox import OLD_PROVINCES, OLD_TO_2025
from sandbox._geography import province_by_code, provinces, wards_by_old_province


def test_merge_map_covers_old_provinces_and_lands_on_the_34_new_ones() -> None:
    assert set(OLD_TO_2025) == set(OLD_PROVINCES)
    assert set(OLD_TO_2025.values()) == {int(p.code) for p in Province.iter_all()}
    assert OLD_TO_2025["074"] == 79  # Bình Dương is in Hồ Chí Minh City
    assert OLD_TO_2025["052"] == 52  # Bình Định is in Gia Lai, which kept code 52
    assert OLD_TO_2025["064"] == 52


def test_every_ward_is_listed_once_under_its_province() -> None:
    listed = [w for p in provinces() for w in p.wards]
    assert len(provinces()) == 34
    assert len(listed) == len({w.code for w in listed}) == 3321
    assert len(province_by_code()[52].wards) == 135
    for ward in listed[::37]:
        source = Ward.from_code(WardCode(ward.code))
        assert int(source.province_code) == ward.province_code
        assert ward.name == " ".join(source.name.split())


def test_names_have_no_double_spaces() -> None:
    assert all("  " not in w.name for p in provinces() for w in p.wards)


def test_known_wards_get_their_old_province() -> None:
    by_code = {w.code: w for p in provinces() for w in p.wards}
    assert by_code[25747].name == "Phường Thủ Dầu Một"
    assert by_code[25747].old_province == "074"
    quy_nhon = next(w for w in province_by_code()[52].wards if w.name == "Phường Quy Nhơn")
    assert quy_nhon.old_province == "052"
    assert by_code[4].old_province == "001"  # Ba Đình


def test_inferred_old_province_is_a_member_of_the_new_one() -> None:
    wards = [w for p in provinces() for w in p.wards if w.old_province is not None]
    assert len(wards) > 1500
    assert all(OLD_TO_2025[w.old_province] == w.province_code for w in wards if w.old_province)
    assert Province.from_code(ProvinceCode(79)).name == province_by_code()[79].name
    assert {w.code for w in wards_by_old_province()["074"]} >= {25747}
