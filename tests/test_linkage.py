"""The linkage unit: keyed tokens at the source, linkage without plaintext, master IDs, project pseudonyms."""

from __future__ import annotations

import collections
import dataclasses
import hmac
import random
import stat

import numpy as np
import pandas as pd
import pytest

from medhub.privacy.linkage import custodian, intake
from medhub.privacy.linkage import normalize as nz
from medhub.privacy.linkage.attack import frequency_attack
from medhub.privacy.linkage.fellegi_sunter import FIELDS
from medhub.privacy.linkage.tokens import (
    DEL_COLUMNS,
    DEL_SLOTS,
    FIELD_MIN_ENTROPY,
    MIN_ENTROPY_BITS,
    RRN_DEL_COLUMNS,
    TOKEN_NAMES,
    TOKEN_SPECS,
    TokenSpec,
    TokenSpecError,
    _token_ints,
    check_specs,
    del_columns,
    hmac_sha256_many,
    normalized_fields,
    tokenize,
)
from medhub.privacy.linkage.unit import LinkageError, LinkageUnit, cluster, link_tables, one_to_one
from medhub.synth.people import hospital_record, make_people

KEY = bytes(range(32))


def _frame(people) -> pd.DataFrame:
    df = pd.DataFrame([dataclasses.asdict(p) for p in people])
    return df


def _two_sources(n: int, seed: int, overlap: float = 0.5):
    """Two hospitals' records: `overlap` of the people are in both."""
    people = make_people(int(n * (2 - overlap)), seed)
    left = [hospital_record(p, random.Random(seed * 1000 + i)) for i, p in enumerate(people[:n])]
    start = n - int(n * overlap)
    right = [
        hospital_record(p, random.Random(seed * 7000 + i)) for i, p in enumerate(people[start : start + n])
    ]
    return _frame(left), _frame(right)


def _f1(pairs: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame) -> float:
    tl = left["person_id"].to_numpy()[pairs["left_row"].to_numpy(int)]
    tr = right["person_id"].to_numpy()[pairs["right_row"].to_numpy(int)]
    tp = int((tl == tr).sum())
    truth = len(set(left["person_id"]) & set(right["person_id"]))
    precision = tp / max(len(pairs), 1)
    recall = tp / truth
    return 2 * precision * recall / (precision + recall)


def _tok(df: pd.DataFrame, key: bytes = KEY, **kw) -> pd.DataFrame:
    ids = [f"r{i}" for i in range(len(df))]
    return tokenize(df.drop(columns=["person_id"]).assign(local_id=ids), key, id_column="local_id", **kw)


# --- normalization ----------------------------------------------------------------------------


def test_normalization_brings_variants_together() -> None:
    assert nz.surname("김") == nz.surname(None, "Kim") == nz.surname(None, "GIM") == "김"
    assert nz.surname(None, "Lee") == nz.surname(None, "Yi") == nz.surname(None, "Rhee") == "이"
    assert nz.surname(None, "Park") == nz.surname("Bak") == "박"
    assert nz.given_name("영수") == nz.given_name(None, "Young-soo") == nz.given_name(None, "Yeong Su")
    assert nz.given_name("민준") == nz.given_name(None, "Min-jun") == nz.given_name(None, "MINJUN")
    assert nz.given_skeleton("민준") == nz.given_skeleton("준민")  # syllables swapped
    assert nz.phone("+82 10-1234-5678") == nz.phone("010.1234.5678") == "01012345678"
    assert nz.rrn("900101-1234567") == "9001011234567"
    assert (
        nz.birth_date("1990-01-05") == nz.birth_date("19900105") == nz.birth_date("1990/1/5") == "1990-01-05"
    )
    assert nz.date_unordered("1990-01-05") == nz.date_unordered("1990-05-01")
    assert nz.text(" 서울특별시  강남구, 테헤란로 152 ") == "서울특별시강남구테헤란로152"
    assert nz.birth_date("not a date") == "" and nz.phone("12") == "" and nz.sex("?") == ""


# --- tokens -----------------------------------------------------------------------------------


def test_tokens_are_keyed_and_carry_no_plaintext() -> None:
    left, _ = _two_sources(300, seed=3)
    a = _tok(left)
    b = _tok(left, key=bytes(reversed(range(32))))
    assert list(a.columns) == ["record_id", *TOKEN_NAMES]
    for name in TOKEN_NAMES:
        assert a[name].dtype == np.uint64
        both = (a[name] != 0) & (b[name] != 0)
        # ids other than RRNs; Latin-only names
        if name in ("rrn_no_b", "rrn_no_c") or name in DEL_COLUMNS or name in RRN_DEL_COLUMNS:
            assert not both.any()
            continue
        assert both.any(), name
        assert not (a.loc[both, name] == b.loc[both, name]).any(), f"{name} does not depend on the key"
    again = _tok(left)
    pd.testing.assert_frame_equal(a, again)  # deterministic under one key
    # nothing of the input, raw or normalized, appears in the output
    norm = normalized_fields(left)
    blob = a.drop(columns=["record_id"]).to_csv(index=False, header=False).replace(",", " ")
    values = set(left.drop(columns=["person_id"]).astype(str).to_numpy().ravel()) | set(
        norm.to_numpy().ravel()
    )
    cells = set(blob.split())
    assert not {str(v) for v in values} & cells
    # text values never appear anywhere (digit strings occur inside 64-bit integers by chance)
    leaked = [v for v in values if len(str(v)) >= 2 and not str(v).isdigit() and str(v) in blob]
    assert not leaked, leaked[:5]
    assert not set(left["person_id"]) & set(a["record_id"])


def test_latin_names_one_typo_apart_share_a_deletion_token_and_hide_their_length() -> None:
    df = pd.DataFrame(
        {
            "given_name": ["michaela", "michela", "bo", "jonathanson"],
            "family_name": ["neumann", "neuman", "li", "smith"],
            "birth_date": ["19151111"] * 4,
        }
    )
    t = tokenize(df, KEY)
    given = t[del_columns("given_del", "dob_swap")].to_numpy()
    surname = t[del_columns("surname_del", "dob_swap")].to_numpy()
    assert (given != 0).all() and (surname != 0).all()  # every slot filled: length does not show
    assert given.shape[1] == DEL_SLOTS
    assert set(given[0]) & set(given[1]) and set(surname[0]) & set(surname[1])
    assert not set(given[0]) & set(given[2]) and not set(given[0]) & set(given[3])
    other = tokenize(df, bytes(32))
    assert not set(t[DEL_COLUMNS[0]]) & set(other[DEL_COLUMNS[0]])


def test_no_bare_low_entropy_token() -> None:
    check_specs()
    for spec in TOKEN_SPECS:
        assert spec.min_entropy >= MIN_ENTROPY_BITS, spec
        if len(spec.fields) == 1:
            assert FIELD_MIN_ENTROPY[spec.fields[0]] >= MIN_ENTROPY_BITS, spec
    assert not any(s.fields in (("surname",), ("sex",), ("given",), ("postcode",)) for s in TOKEN_SPECS)
    with pytest.raises(TokenSpecError, match="surname"):
        check_specs([TokenSpec("surname", ("surname",))])


def test_tokenize_rejects_bad_input() -> None:
    df = pd.DataFrame({"a": ["x"], "b": ["y"]})
    with pytest.raises(ValueError, match="no identity field"):
        tokenize(df, KEY)
    with pytest.raises(ValueError, match="unknown identity field"):
        tokenize(df, KEY, mapping={"a": "shoe_size"})
    with pytest.raises(ValueError, match="not in the input"):
        tokenize(df, KEY, mapping={"zzz": "phone"})
    with pytest.raises(ValueError, match="16 bytes"):
        tokenize(pd.DataFrame({"phone": ["01012345678"]}), b"short")
    # malformed values become absent tokens, not errors
    t = tokenize(pd.DataFrame({"birth_date": ["garbage", None], "phone": ["1", "010-1111-2222"]}), KEY)
    assert t["dob"].tolist() == [0, 0] and t["phone"].iloc[0] == 0 and t["phone"].iloc[1] != 0


def test_without_rrn_drops_every_rrn_token() -> None:
    left, _ = _two_sources(50, seed=4)
    t = _tok(left, with_rrn=False)
    for name in ("rrn", "rrn_no_a", "rrn_no_b", "rrn_no_c", "rrn_dob_b", "rrn_dob_c"):
        assert (t[name] == 0).all()


# --- frequency attack -------------------------------------------------------------------------


def test_frequency_attack_reads_bare_surnames_but_not_the_tokens() -> None:
    people = make_people(20_000, seed=5)
    public = collections.Counter(p.family_name for p in make_people(20_000, seed=6))
    df = _frame(people)
    truth = df["family_name"].tolist()
    tokens = _tok(df)
    bare = _token_ints(KEY, "surname", [normalized_fields(df)["surname"].to_numpy()])
    naive = frequency_attack("surname", bare, truth, public)
    assert naive.recovered_share > 0.5  # the attack works where the design would be naive
    for spec in TOKEN_SPECS:
        if "surname" in spec.fields and spec.name in tokens.columns:  # slot specs: Latin-only names
            r = frequency_attack(spec.name, tokens[spec.name].to_numpy(), truth, public)
            assert r.recovered_share <= 0.01, r
            assert r.lift < 0.1, r


# --- linkage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("with_rrn, goal", [(True, 0.998), (False, 0.99)])
def test_linkage_quality_on_synthetic_hospitals(with_rrn: bool, goal: float) -> None:
    left, right = _two_sources(4000, seed=11)
    res = link_tables(_tok(left, with_rrn=with_rrn), _tok(right, with_rrn=with_rrn))
    f1 = _f1(res.pairs, left, right)
    assert f1 >= goal, f1
    assert res.pairs["left_id"].is_unique and res.pairs["right_id"].is_unique
    assert set(res.pairs["stage"]) <= {"exact", "probabilistic"}
    if with_rrn:
        assert (res.pairs["stage"] == "exact").mean() > 0.8


def test_em_learns_sensible_m_and_u() -> None:
    left, right = _two_sources(4000, seed=12)
    model = link_tables(_tok(left), _tok(right)).model
    assert model is not None and model.iterations >= 2
    for f, k in FIELDS.items():
        assert model.m[f].shape == (k,) and model.u[f].shape == (k,)
        assert np.isclose(model.m[f].sum(), 1) and np.isclose(model.u[f].sum(), 1)
    # the generator changes a field of each record with probability ~0.15, so a pair agrees ~0.85^2
    assert 0.65 <= model.m["phone"][1] <= 0.8
    assert 0.65 <= model.m["dob"][2] <= 0.8
    assert model.m["surname"][2] > 0.95  # surnames are never mistyped by the generator
    assert model.u["phone"][1] < 1e-3 and model.u["dob"][2] < 1e-3 and model.u["rrn"][3] < 1e-6
    assert 0.03 <= model.u["surname"][2] <= 0.2  # two people born the same day share a surname ~8%
    # lambda: ~2000 true pairs among 4000 x 4000
    assert 0.5 * 2000 / 16e6 <= model.lam <= 1.5 * 2000 / 16e6


def test_link_tables_refuses_foreign_columns() -> None:
    left, right = _two_sources(20, seed=13)
    a, b = _tok(left), _tok(right)
    with pytest.raises(LinkageError, match="unexpected column"):
        link_tables(a.assign(name="kim"), b)
    with pytest.raises(LinkageError, match="lacks column"):
        link_tables(a.drop(columns=["phone"]), b)
    with pytest.raises(LinkageError, match="repeats record id"):
        link_tables(pd.concat([a, a.head(1)]), b)


def test_one_to_one_and_cluster_constraints() -> None:
    li, ri = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    keep = one_to_one(li, ri, np.array([5.0, 4.0, 4.5, 1.0]))
    assert sorted(zip(li[keep].tolist(), ri[keep].tolist(), strict=True)) == [(0, 0), (1, 1)]
    # nodes 0,1 from source 0; node 2 from source 1; both link to 2: only the better one joins
    roots = cluster(np.array([0, 0, 1]), np.array([0, 1]), np.array([2, 2]), np.array([3.0, 9.0]))
    assert roots[1] == roots[2] != roots[0]


# --- the unit: master IDs and project pseudonyms ----------------------------------------------


def test_one_patient_at_three_hospitals_gets_one_master_id(settings) -> None:
    people = make_people(600, seed=21)
    unit = LinkageUnit(settings.linkage_dir)
    round_id = "r-test"
    key = intake.round_key(settings, round_id)
    sources = {}
    for h in range(3):
        chosen = [p for i, p in enumerate(people) if (i + h) % 4 != 0]  # each hospital sees 3/4 of them
        recs = [hospital_record(p, random.Random(h * 10_000 + i)) for i, p in enumerate(chosen)]
        df = _frame(recs)
        df["mrn"] = [f"H{h}-{i:05d}" for i in range(len(df))]  # the hospital's own pseudonymous id
        sources[f"hosp{h}"] = df
        unit.receive(round_id, f"hosp{h}", tokenize(df.drop(columns=["person_id"]), key, id_column="mrn"))
    report = unit.resolve(round_id)
    assert report.sources == 3 and report.records == sum(len(d) for d in sources.values())
    keys = [(s, m) for s, d in sources.items() for m in d["mrn"]]
    truth = {(s, m): p for s, d in sources.items() for m, p in zip(d["mrn"], d["person_id"], strict=True)}
    masters = unit.master_ids(keys)
    by_person = collections.defaultdict(set)
    by_master = collections.defaultdict(set)
    for k, mid in masters.items():
        by_person[truth[k]].add(mid)
        by_master[mid].add(truth[k])
    split = sum(len(v) > 1 for v in by_person.values()) / len(by_person)
    merged = sum(len(v) > 1 for v in by_master.values()) / len(by_master)
    assert split <= 0.01 and merged <= 0.01, (split, merged)
    assert report.masters == pytest.approx(len(by_person), rel=0.02)
    # master ids are random, not derived from identities
    assert all(len(m) == 32 for m in masters.values())
    # a second resolve of the same round keeps the master ids
    unit.resolve(round_id)
    assert unit.master_ids(keys) == masters


def test_project_pseudonyms_differ_between_projects_and_cannot_be_joined(settings) -> None:
    left, right = _two_sources(400, seed=22, overlap=1.0)
    unit = LinkageUnit(settings.linkage_dir)
    round_id = "r-test"
    key = intake.round_key(settings, round_id)
    for name, df in (("a", left), ("b", right)):
        df = df.assign(mrn=[f"{name}{i}" for i in range(len(df))])
        unit.receive(round_id, name, tokenize(df.drop(columns=["person_id"]), key, id_column="mrn"))
    unit.resolve(round_id)
    keys = [("a", f"a{i}") for i in range(len(left))] + [("b", f"b{i}") for i in range(len(right))]
    p1 = unit.project_pseudonyms("proj-1", keys)
    p2 = unit.project_pseudonyms("proj-2", keys)
    assert p1 == unit.project_pseudonyms("proj-1", keys)  # stable
    # within a project, one patient seen at two hospitals has one pseudonym
    same = sum(p1[("a", f"a{i}")] == p1[("b", f"b{i}")] for i in range(len(left)))
    assert same >= 0.98 * len(left)
    # across projects, no pseudonym repeats: extracts cannot be joined
    assert not set(p1.values()) & set(p2.values())
    masters = set(unit.master_ids(keys).values())
    assert not masters & set(p1.values())  # master ids never leave the unit
    with pytest.raises(KeyError, match="does not know"):
        unit.project_pseudonyms("proj-1", [("a", "nobody")])


def test_round_keys_live_with_the_custodian_and_the_unit_holds_none(settings) -> None:
    unit = LinkageUnit(settings.linkage_dir)
    round_id = "r-test"
    key = intake.round_key(settings, round_id)
    left, _ = _two_sources(30, seed=23)
    unit.receive(round_id, "a", _tok(left, key))
    unit.resolve(round_id)
    unit.project_pseudonyms("p", [("a", "r0")])
    files = [p for p in settings.linkage_dir.rglob("*") if p.is_file()]
    assert any(p.name == "linkage.sqlite3" for p in files)
    # the token key is in the custodian's key store, never beside the tokens it made
    assert intake.round_key(settings, round_id) == key
    assert not any(key in p.read_bytes() for p in files)
    key_files = [p for p in settings.key_dir.rglob("*.key")]
    assert any(p.read_bytes() == key for p in key_files)
    project_key = custodian.project_key_path(settings.linkage_dir, "p")
    assert stat.S_IMODE(project_key.stat().st_mode) == 0o600
    assert len(project_key.read_bytes()) == 32
    # nothing of the unit sits in the hub home or the hub key store
    for d in (settings.home, settings.key_dir):
        if d.exists():
            names = {p.name for p in d.rglob("*")}
            assert not names & {"linkage.sqlite3", "p.key"}
    with pytest.raises(ValueError, match="invalid"):
        intake.round_key(settings, "../escape")
    with pytest.raises(LinkageError, match="no token tables"):
        unit.resolve("empty-round")


def test_one_day_slip_meets_crosswise_and_dates_cannot_be_chained() -> None:
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels
    from medhub.privacy.linkage.unit import candidate_pairs

    a = pd.DataFrame(
        {
            "family_name": ["김"],
            "given_name": ["민준"],
            "birth_date": ["1990-03-09"],
            "phone": ["010-1111-2222"],
            "sex": ["M"],
        }
    )
    b = a.assign(birth_date=["1990-03-10"], phone=["010-3333-4444"])  # two digits apart, one day apart
    ta, tb = tokenize(a, KEY), tokenize(b, KEY)
    li, ri = candidate_pairs(ta, tb)
    assert (li.tolist(), ri.tolist()) == ([0], [0])  # found by the crosswise name+dob tokens only
    lv = comparison_levels(ta, tb, li, ri)
    assert lv["dob"][0] == 1 and lv["surname"][0] == 2 and lv["given"][0] == 3 and lv["phone"][0] == 0
    # no bare "next day" token: the unit cannot chain birth dates into calendar order
    assert "dob_next" not in TOKEN_NAMES
    assert not set(ta["dob"]) & set(tb.drop(columns=["record_id", "dob"]).to_numpy().ravel())


@pytest.mark.parametrize("key", [b"k" * 16, bytes(range(32)), b"long-key" * 20])
def test_fast_hmac_is_exactly_hmac_sha256(key: bytes) -> None:
    msgs = ["", "a", "김민준\x1f1980:03:12", "x" * 200]
    want = [hmac.digest(key, b"spec\x1f" + m.encode(), "sha256") for m in msgs]
    assert hmac_sha256_many(key, b"spec\x1f", msgs) == want


def test_names_written_swapped_agree_in_latin_and_hangul() -> None:
    a = pd.DataFrame(
        {
            "given_name_roman": ["joselyn", "minjun"],
            "family_name_roman": ["dakin", "kim"],
            "birth_date": ["19261205", "19900304"],
        }
    )
    b = a.rename(columns={"given_name_roman": "family_name_roman", "family_name_roman": "given_name_roman"})
    na, nb = normalized_fields(a), normalized_fields(b)
    assert (na["names_unordered"] == nb["names_unordered"]).all()
    assert (na["surname"] != nb["surname"]).all()


def test_latin_names_one_typo_apart_are_close_through_the_address_when_the_date_differs() -> None:
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels

    a = pd.DataFrame(
        {
            "given_name_roman": ["jamie"],
            "family_name_roman": ["hoffman"],
            "birth_date": ["19700102"],
            "address": ["12 dalrymple street vaucluse"],
            "postcode": ["2030"],
        }
    )
    b = a.assign(given_name_roman=["jajie"], family_name_roman=["hofman"], birth_date=["19930508"])
    ta, tb = tokenize(a, KEY), tokenize(b, KEY)
    lv = comparison_levels(ta, tb, np.array([0]), np.array([0]))
    assert lv["residence"][0] == 4 and lv["dob"][0] == 0
    assert lv["surname"][0] == 1 and lv["given"][0] == 2
    far = tokenize(a.assign(given_name_roman=["robert"], family_name_roman=["sheldon"]), KEY)
    lv = comparison_levels(ta, far, np.array([0]), np.array([0]))
    assert lv["surname"][0] == 0 and lv["given"][0] == 0


def test_latent_class_u_holds_when_matches_outnumber_different_people() -> None:
    from medhub.privacy.linkage.fellegi_sunter import latent_class_u

    rng = np.random.default_rng(0)
    n_match, n_non = 5000, 600  # as among FEBRL's pairs born the same day
    true_u = {"surname": 0.004, "given": 0.003, "residence": 0.002}
    true_m = {"surname": 0.9, "given": 0.9, "residence": 0.8}
    levels = {}
    for f in true_u:
        agree = np.concatenate([rng.random(n_match) < true_m[f], rng.random(n_non) < true_u[f]])
        levels[f] = agree.astype(np.int8)
    start_m = {f: np.array([0.2, 0.8]) for f in levels}
    start_u = {f: np.array([0.9, 0.1]) for f in levels}
    u = latent_class_u(levels, start_m, start_u)
    for f in levels:
        assert u[f][1] < 0.03, (f, u[f])  # true 0.002-0.004; the share agreeing is ~0.8


def test_latin_names_written_the_other_way_round_with_a_typo_are_close() -> None:
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels

    a = pd.DataFrame(
        {"given_name_roman": ["henry"], "family_name_roman": ["mccarthy"], "birth_date": ["19770913"]}
    )
    swapped = tokenize(a.assign(given_name_roman=["mccarwthy"], family_name_roman=["henry"]), KEY)
    other = tokenize(a.assign(given_name_roman=["mcbride"], family_name_roman=["harris"]), KEY)
    ta = tokenize(a, KEY)
    lv = comparison_levels(ta, swapped, np.array([0]), np.array([0]))
    assert lv["surname"][0] == 1 and lv["given"][0] == 2 and lv["dob"][0] == 2
    lv = comparison_levels(ta, other, np.array([0]), np.array([0]))
    assert lv["surname"][0] == 0 and lv["given"][0] == 0


def test_hangul_given_names_one_slip_apart_are_close_not_different() -> None:
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels

    a = pd.DataFrame(
        {"family_name": ["김"] * 4, "given_name": ["민준"] * 4, "birth_date": ["1990-03-09"] * 4}
    )
    b = a.assign(given_name=["민존", "준민", "서연", "민수"])  # vowel slip, transposed, other, other
    lv = comparison_levels(tokenize(a, KEY), tokenize(b, KEY), np.arange(4), np.arange(4))
    assert lv["given"].tolist()[:2] == [2, 2]
    assert lv["given"][2] == 0 and lv["given"][3] == 0  # 민수: another syllable, not a slip


def test_other_ids_one_swap_apart_agree_as_a_typo_but_korean_rrns_get_no_deletion_tokens() -> None:
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels
    from medhub.privacy.linkage.tokens import RRN_DEL_COLUMNS

    a = pd.DataFrame({"rrn": ["8930836", "4173804", "900101-1234567"], "given_name_roman": ["x", "y", "z"]})
    b = a.assign(rrn=["8938036", "5280915", "900101-1234576"])  # swapped digits, another id, Korean
    ta, tb = tokenize(a, KEY), tokenize(b, KEY)
    assert (ta[list(RRN_DEL_COLUMNS)].iloc[2] == 0).all()  # the RRN has its own part tokens
    lv = comparison_levels(ta, tb, np.arange(3), np.arange(3))
    assert lv["rrn"].tolist() == [2, 0, 1]  # (the Korean one: its birth date and next 3 digits agree)


def test_birth_dates_one_day_apart_meet_through_a_shared_phone_or_address_whatever_the_names() -> None:
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels
    from medhub.privacy.linkage.tokens import DOB_NEXT_ON, DOB_ON

    a = pd.DataFrame(
        {
            "family_name": ["김", "이", "박"],
            "given_name": ["민준", "서연", "지호"],
            "birth_date": ["1990-03-09", "1971-12-31", "1985-06-20"],
            "phone": ["010-1111-2222", "010-5555-6666", "010-7777-8888"],
            "address": [
                "서울특별시 중구 세종대로 110",
                "부산광역시 중구 중앙대로 120",
                "대전광역시 서구 둔산로 100",
            ],
            "sex": ["M", "F", "M"],
        }
    )
    # the given name mistyped, and the birth date one day on: through the phone (another address),
    # through the address (another phone, across a year's end), and a date three days apart
    b = a.assign(
        given_name=["민존", "서현", "지후"],
        birth_date=["1990-03-10", "1972-01-01", "1985-06-23"],
        phone=["010-1111-2222", "010-9999-0000", "010-7777-8888"],
        address=["광주광역시 서구 내방로 111", "부산광역시 중구 중앙대로 120", "대전광역시 서구 둔산로 100"],
    )
    ta, tb = tokenize(a, KEY), tokenize(b, KEY)
    lv = comparison_levels(ta, tb, np.arange(3), np.arange(3))
    assert lv["dob"].tolist() == [1, 1, 0]
    # the crosswise tokens exist only bound to their anchor: no bare "next day" to chain dates with
    assert all(s.startswith("dob_next+") for s in DOB_NEXT_ON) and "dob_next" not in TOKEN_NAMES
    c = b.assign(phone=["010-4444-3333"] * 3, address=["제주특별자치도 제주시 문연로 6"] * 3)
    tc = tokenize(c, KEY)
    assert not set(ta[DOB_ON[0]]) & set(tc[list(DOB_NEXT_ON)].to_numpy().ravel())
    assert comparison_levels(ta, tc, np.arange(3), np.arange(3))["dob"].tolist() == [0, 0, 0]


def test_the_full_name_on_the_street_says_both_names_agree() -> None:
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels

    a = pd.DataFrame(
        {
            "given_name_roman": ["samantha"],
            "family_name_roman": ["ryan"],
            "birth_date": ["19100210"],
            "address": ["12 forsythe street winthrop"],
            "postcode": ["2107"],
        }
    )
    b = a.assign(birth_date=["19100120"], address=["16 forsythe street winthrop"], postcode=["4800"])
    lv = comparison_levels(tokenize(a, KEY), tokenize(b, KEY), np.array([0]), np.array([0]))
    assert lv["residence"][0] == 2 and lv["surname"][0] == 2 and lv["given"][0] == 3
    swapped = tokenize(b.assign(given_name_roman=["ryan"], family_name_roman=["samantha"]), KEY)
    lv = comparison_levels(tokenize(a, KEY), swapped, np.array([0]), np.array([0]))
    assert lv["residence"][0] == 2 and lv["surname"][0] == 2 and lv["given"][0] == 3
    other = tokenize(b.assign(given_name_roman=["sarah"]), KEY)
    lv = comparison_levels(tokenize(a, KEY), other, np.array([0]), np.array([0]))
    assert lv["surname"][0] == -1 and lv["given"][0] == -1  # (no shared anchor: names unknown)


def test_street_is_the_whole_address_when_it_has_no_building_number() -> None:
    assert nz.street("12 eggleston crescent granville") == nz.street("eggleston crescent granville")
    assert nz.street("eggleston crescent granville") == "egglestoncrescentgranville"
    assert nz.street(None) == "" and nz.street("") == ""


def test_full_name_in_either_order_meets_through_the_building_number_or_postcode() -> None:
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels
    from medhub.privacy.linkage.unit import candidate_pairs

    a = pd.DataFrame(
        {
            "given_name_roman": ["luke", "alisa"],
            "family_name_roman": ["gazzola", "kalinowski"],
            "birth_date": ["19420929", "19991012"],
            "address": ["10 newman morris circuit lakemba", "99 morrison street lavington"],
            "postcode": ["3046", "4870"],
        }
    )
    # names swapped, birth date, street and postcode mistyped; and the same name, only the number kept
    b = pd.DataFrame(
        {
            "given_name_roman": ["gazzola", "alisa"],
            "family_name_roman": ["luke", "kalinowski"],
            "birth_date": ["19590318", ""],
            "address": ["10 newman morr is circuit lakebma", "99 lavington"],
            "postcode": ["3036", "4878"],
        }
    )
    ta, tb = tokenize(a, KEY), tokenize(b, KEY)
    li, ri = candidate_pairs(ta, tb)
    assert sorted(zip(li.tolist(), ri.tolist(), strict=True)) == [(0, 0), (1, 1)]
    lv = comparison_levels(ta, tb, np.arange(2), np.arange(2))
    assert lv["surname"].tolist() == [2, 2] and lv["given"].tolist() == [3, 3]
    assert lv["residence"].tolist() == [5, 5]  # the same building number only


def test_street_and_postcode_anchors_names_one_typo_apart_and_blocks_only_where_rare(monkeypatch) -> None:
    from medhub.privacy.linkage import unit
    from medhub.privacy.linkage.fellegi_sunter import comparison_levels
    from medhub.privacy.linkage.tokens import STREET_POSTCODE
    from medhub.privacy.linkage.unit import BLOCK_CAPS, candidate_pairs

    a = pd.DataFrame(
        {
            "given_name_roman": ["kynan"],
            "family_name_roman": ["dooley"],
            "birth_date": ["19310924"],
            "address": ["92 mcintyre street woollahra"],
            "postcode": ["6021"],
        }
    )
    # both names one typo apart, the birth date mistyped, another building of the same street
    b = a.assign(
        given_name_roman=["kynzn"],
        family_name_roman=["doolqey"],
        birth_date=["19319924"],
        address=["14 mcintyre street woollahra"],
    )
    ta, tb = tokenize(a, KEY), tokenize(b, KEY)
    li, ri = candidate_pairs(ta, tb)
    assert (li.tolist(), ri.tolist()) == ([0], [0])
    lv = comparison_levels(ta, tb, li, ri)
    assert lv["residence"][0] == 2 and lv["surname"][0] == 1 and lv["given"][0] == 2
    other = tokenize(b.assign(given_name_roman=["jake"], family_name_roman=["smith"]), KEY)
    lv = comparison_levels(ta, other, li, ri)
    assert lv["surname"][0] == 0 and lv["given"][0] == 0
    # a street shared by many pairs is not used to block
    n = int(np.sqrt(BLOCK_CAPS[STREET_POSTCODE])) + 1
    many_a = pd.concat([a] * n, ignore_index=True).assign(given_name_roman=[f"a{i}" for i in range(n)])
    many_b = pd.concat([b] * n, ignore_index=True).assign(given_name_roman=[f"b{i}" for i in range(n)])
    tma, tmb = tokenize(many_a, KEY), tokenize(many_b, KEY)
    assert len(candidate_pairs(tma, tmb)[0]) == 0
    monkeypatch.setattr(unit, "BLOCK_CAPS", {})
    assert len(candidate_pairs(tma, tmb)[0]) == n * n  # (they meet through the street alone)


def test_u_of_the_building_number_and_postcode_level_leaves_out_the_matches_found_by_the_rest() -> None:
    rng = random.Random(5)
    names = ["".join(rng.choice("abcdefghiklmnoprstuvw") for _ in range(7)) for _ in range(400)]
    n = 200
    a_ = range(n)
    a = pd.DataFrame(
        {
            "given_name_roman": names[:n],
            "family_name_roman": names[n:],
            "birth_date": [f"19{rng.randint(20, 99)}0{rng.randint(1, 9)}{rng.randint(10, 28)}" for _ in a_],
            "address": [f"{i + 1} {names[i][:5]} street" for i in range(n)],
            "postcode": [str(2000 + i) for i in range(n)],
        }
    )
    b = a.assign(address=[f"{i + 1} {names[i][:5]}x street" for i in range(n)])  # a typo in each street
    res = link_tables(tokenize(a, KEY), tokenize(b, KEY))
    assert len(res.pairs) == n
    hp_only_rate = n / (n * n)  # every pair sharing number and postcode (not the address) is a match
    assert res.model.u["residence"][3] < 0.05 * hp_only_rate


def test_fast_hmac_encodes_messages_holding_nul_one_by_one() -> None:
    msgs = ["a\0b", "", "c"]
    want = [hmac.digest(KEY, b"p\x1f" + m.encode(), "sha256") for m in msgs]
    assert hmac_sha256_many(KEY, b"p\x1f", msgs) == want
    assert hmac_sha256_many(KEY, b"p\x1f", []) == []


def test_link_tables_reads_rows_by_position_whatever_the_index() -> None:
    left, right = _two_sources(300, seed=11)
    ta, tb = _tok(left), _tok(right)
    plain = link_tables(ta, tb).pairs
    other = link_tables(ta.set_axis(np.arange(len(ta))[::-1] * 3), tb.set_axis(np.arange(len(tb)) + 7))
    cols = ["left_row", "right_row", "left_id", "right_id", "stage"]
    assert len(plain) > 100
    pd.testing.assert_frame_equal(plain[cols], other.pairs[cols])
