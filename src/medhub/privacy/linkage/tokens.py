"""Keyed linkage tokens, made at the source: the only thing about a person that leaves it.

`tokenize(records, key)` normalizes each record's identity fields (see `normalize`) and
turns them into HMAC-SHA256 tokens under the linkage round's key, truncated to 64 bits
(0 means "absent"). The output table holds a record id and token columns, nothing else.

Design against frequency attacks: a token of a low-entropy field on its own (surname:
김 is 21.5% of Koreans; sex; given names, which repeat within a birth cohort) would let
whoever holds the tokens rank-match token frequencies to public tables and read the
values back. So no such token is ever made. Every token is an *anchor* (a field of high
entropy on its own: date of birth, phone, road address, RRN) or a low-entropy field
*bound to an anchor* ("surname+dob"); `TOKEN_SPECS` lists them and `check_specs` refuses
any whose estimated min-entropy (sum of the fields' min-entropies in `FIELD_MIN_ENTROPY`,
conservative figures for the Korean population) is below `MIN_ENTROPY_BITS`. The
linkage unit decodes field agreement from anchored tokens: when two records share an
anchor, their "field+anchor" tokens agree exactly when the field agrees. Graded agreement
comes from tokens of near values bound the same way: a Latin name's one-letter deletions on
the birth date, the address, the building number + postcode, the street + postcode, or the
other name + postcode; the street (the address without its building number) on an anchor or
the full name; a Hangul given name's one-slip keys on the birth date or address; the birth
date and the day after it on the phone or the address (one day apart, whatever the names);
an id other than a Korean RRN, its one-digit deletions.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import multiprocessing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medhub.privacy.keys import KeyedHmac
from medhub.privacy.linkage import normalize as nz

MIN_ENTROPY_BITS = 12.0

# Conservative min-entropy (bits) = -log2(share of the most common value), Korean population.
FIELD_MIN_ENTROPY: dict[str, float] = {
    "surname": 2.2,  # 김 21.5% (2015 census)
    "given": 4.5,  # the most popular given name of a birth cohort, ~4% of its sex
    "given_skel": 2.0,  # sorted initial consonants: coarse on purpose
    "given_near1": 2.0,  # a Hangul given name, its first syllable cut to its initial consonant
    "given_near2": 2.0,  # ... its second syllable cut to its initial consonant
    "given_sorted": 4.5,  # its syllables sorted (as common as the name itself, at most)
    "sex": 1.0,
    "name_del": 2.0,  # a romanized name with one letter left out (sets of these: names one edit apart)
    "names_unordered": 6.7,  # surname and given name as a set (catches the two written swapped)
    "house": 7.0,  # the building number of the address
    "yob": 5.5,  # largest birth cohorts ~2%
    "dob": 13.5,  # ~1 in 11,000
    "dob_swap": 12.5,  # year and unordered (month, day)
    "dob_next": 13.5,  # the day after the birth date (only ever with the full name, phone or address)
    "phone": 20.0,
    "address": 14.0,  # road address with building number
    "street": 7.0,  # the address without its building number (a road and district; busy roads hold ~0.5%)
    "postcode": 8.0,  # the busiest 5-digit postcodes hold ~0.4%
    "rrn": 30.0,
    "rrn_no_a": 23.0,  # the 7 digits after the birth date
    "rrn_no_b": 16.0,  # other ids of 7+ digits: two of three parts
    "rrn_no_c": 16.0,
    "rrn_dob_b": 26.0,  # Korean RRN: birth date and the last 4 digits
    "rrn_dob_c": 23.0,  # Korean RRN: birth date and the next 3 digits
    "rrn_del": 16.0,  # other ids of 7+ digits, one digit left out
}

# Anchors: fields of high entropy alone. Bound fields: low-entropy ones, only ever tokenized with an anchor.
ANCHORS = ("dob", "dob_swap", "phone", "address")
BOUND_FIELDS = ("surname", "given", "given_skel", "sex", "postcode", "street", "house")
# Keys a Hangul given name shares with its one-slip variants (see normalize.given_near_keys), bound to
# the birth date and the address: a mistyped given name is "close" rather than "different".
GIVEN_NEAR_FIELDS = ("given_near1", "given_near2", "given_sorted")
GIVEN_NEAR_ANCHORS = ("dob_swap", "address")
# Bound fields ride on these anchors ("dob_swap" agrees whenever "dob" does, so "dob" is not needed).
BINDING_ANCHORS = ("dob_swap", "phone", "address")
# The RRN, and the RRN with each of its three parts (birth date | 3 digits | 4 digits) left out:
# two RRNs one typo apart still share one of the three.
RRN_TOKENS = ("rrn", "rrn_no_a", "rrn_no_b", "rrn_no_c", "rrn_dob_b", "rrn_dob_c")
# The full name (both names, in either order) with the street (the address without its building
# number): moved within the street.
NAME_STREET = "names_unordered+street"
GIVEN_POSTCODE = "given+postcode"  # the given name with the postcode (the surname mistyped or changed)
# The full name with the birth date, and with the day after it: two records one day apart meet
# crosswise (left "name+dob" = right "name+dob_next" or the other way round). There is no bare
# "dob_next": chaining dob -> dob_next tokens would let the unit put all birth dates in order.
NAME_DOB = "surname+given+dob"
NAME_DOB_NEXT = "surname+given+dob_next"
# The birth date and the day after it, bound to the phone and to the address: two records that share
# one of those and were born one day apart meet crosswise, whatever their names (a mistyped given
# name and a slipped birth date at once). Bound to an anchor, the crosswise tokens never order dates
# beyond the records that share that anchor.
DOB_NEXT_ANCHORS = ("phone", "address")
DOB_ON = tuple(f"dob+{a}" for a in DOB_NEXT_ANCHORS)
DOB_NEXT_ON = tuple(f"dob_next+{a}" for a in DOB_NEXT_ANCHORS)
NAMES_UNORDERED = "names_unordered+dob_swap"  # surname and given name written the other way round
HOUSE_POSTCODE = "house+postcode"  # the building number and postcode: the address despite typos in the street
# The street (the address without its building number) and the postcode: another building of the same
# street, an anchor of its own (15 bits) for the names' deletion variants (names bound to it exactly
# were worth one FEBRL pair and read as much of the surname as "surname+address" does: not made).
STREET_POSTCODE = "street+postcode"
# Both names in either order with the building number, and with the postcode: the full name where the
# birth date, the street and one of number or postcode were mistyped, or the birth date and the
# address both changed (Splink-style "same full name" blocking, bound so that no token carries the
# bare full name).
NAMES_HOUSE = "names_unordered+house"
NAMES_POSTCODE = "names_unordered+postcode"
# Names written in Latin letters only (no Hangul) also get their one-letter-deletion variants, bound
# to an anchor, so that names one typo apart agree: DEL_SLOTS tokens per name and anchor, padded with
# random values (and shuffled) so that neither the count nor the order gives the length away. The
# anchors: the birth date, and the address, building number + postcode or street + postcode (for a
# mistyped date).
DEL_SLOTS = 14
DEL_NAMES = ("surname_del", "given_del")
DEL_ANCHORS: dict[str, tuple[str, ...]] = {
    "dob_swap": ("dob_swap",),
    "address": ("address",),
    HOUSE_POSTCODE: ("house", "postcode"),
    STREET_POSTCODE: ("street", "postcode"),
}
# ... and bound to the other name and the postcode (one name exact, the other one typo apart, same
# postcode: found even when the birth date and the address changed too).
DEL_WITH_OTHER_NAME: dict[str, tuple[str, tuple[str, ...]]] = {
    "surname_del": ("given+postcode", ("given", "postcode")),
    "given_del": ("surname+postcode", ("surname", "postcode")),
}
DEL_COLUMNS = tuple(
    f"{n}+{a}#{i}"
    for n in DEL_NAMES
    for a in (*DEL_ANCHORS, DEL_WITH_OTHER_NAME[n][0])
    for i in range(DEL_SLOTS)
)


# Ids other than Korean RRNs also get their one-digit deletions (DEL_SLOTS padded, shuffled slots):
# two ids one typo or one swap of neighbouring digits apart share one, wherever it falls.
RRN_DEL = "rrn_del"
RRN_DEL_COLUMNS = tuple(f"{RRN_DEL}#{i}" for i in range(DEL_SLOTS))


def del_columns(name: str, anchor: str) -> list[str]:
    """The DEL_SLOTS token columns of one name's deletion variants bound to one anchor."""
    return [f"{name}+{anchor}#{i}" for i in range(DEL_SLOTS)]


@dataclass(frozen=True)
class TokenSpec:
    name: str
    fields: tuple[str, ...]
    domain: str = ""  # HMAC domain, when tokens of two specs must be comparable ("dob_next" with "dob")

    @property
    def min_entropy(self) -> float:
        return sum(FIELD_MIN_ENTROPY[f] for f in self.fields)


def _specs() -> tuple[TokenSpec, ...]:
    specs = [TokenSpec(a, (a,)) for a in ANCHORS]
    specs += [TokenSpec(r, (r,)) for r in RRN_TOKENS]
    specs += [
        TokenSpec(f"{f}+{a}", (f, a))
        for a in BINDING_ANCHORS
        for f in BOUND_FIELDS
        if not (f in ("postcode", "street", "house") and a == "address")
    ]
    specs += [TokenSpec(f"{f}+{a}", (f, a)) for a in GIVEN_NEAR_ANCHORS for f in GIVEN_NEAR_FIELDS]
    specs.append(TokenSpec(NAME_STREET, ("names_unordered", "street")))
    specs.append(TokenSpec(NAME_DOB, ("surname", "given", "dob")))
    specs.append(TokenSpec(NAME_DOB_NEXT, ("surname", "given", "dob_next"), domain=NAME_DOB))
    for a, on, nxt in zip(DOB_NEXT_ANCHORS, DOB_ON, DOB_NEXT_ON, strict=True):
        specs.append(TokenSpec(on, ("dob", a)))
        specs.append(TokenSpec(nxt, ("dob_next", a), domain=on))
    specs.append(TokenSpec(NAMES_UNORDERED, ("names_unordered", "dob_swap")))
    specs.append(TokenSpec(HOUSE_POSTCODE, ("house", "postcode")))
    specs += [TokenSpec(f"{f}+{HOUSE_POSTCODE}", (f, "house", "postcode")) for f in ("surname", "given")]
    specs.append(TokenSpec(STREET_POSTCODE, ("street", "postcode")))
    specs.append(TokenSpec(NAMES_HOUSE, ("names_unordered", "house")))
    specs.append(TokenSpec(NAMES_POSTCODE, ("names_unordered", "postcode")))
    specs += [TokenSpec(f"{n}+{a}", ("name_del", *f)) for n in DEL_NAMES for a, f in DEL_ANCHORS.items()]
    specs += [TokenSpec(f"{n}+{a}", ("name_del", *f)) for n, (a, f) in DEL_WITH_OTHER_NAME.items()]
    specs.append(TokenSpec(GIVEN_POSTCODE, ("given", "postcode")))
    specs.append(TokenSpec(RRN_DEL, ("rrn_del",)))
    return tuple(specs)


TOKEN_SPECS: tuple[TokenSpec, ...] = _specs()
_SINGLE_SPECS = tuple(s for s in TOKEN_SPECS if "name_del" not in s.fields and s.name != RRN_DEL)
TOKEN_NAMES: tuple[str, ...] = tuple(s.name for s in _SINGLE_SPECS) + DEL_COLUMNS + RRN_DEL_COLUMNS


class TokenSpecError(ValueError):
    """A token would carry too little entropy to resist a frequency attack."""


def check_specs(specs: Iterable[TokenSpec] = TOKEN_SPECS, min_bits: float = MIN_ENTROPY_BITS) -> None:
    weak = [f"{s.name} ({s.min_entropy:.1f} bits)" for s in specs if s.min_entropy < min_bits]
    if weak:
        raise TokenSpecError(f"tokens below {min_bits} bits of min-entropy: {', '.join(weak)}")


check_specs()

# Input fields a source may supply (column names after any mapping).
INPUT_FIELDS = (
    "family_name",
    "given_name",
    "family_name_roman",
    "given_name_roman",
    "sex",
    "birth_date",
    "rrn",
    "phone",
    "address",
    "postcode",
)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name].astype(object).where(df[name].notna(), None)
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def _map_unique(values: pd.Series, fn) -> np.ndarray:
    """Apply `fn` once per distinct value (names and dates repeat a lot)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    out_u = np.array([fn(u) for u in uniques] + [fn(None)], dtype=object)
    return out_u[codes]  # code -1 picks fn(None)


def normalized_fields(records: pd.DataFrame, *, with_rrn: bool = True) -> pd.DataFrame:
    """The canonical form of every identity field ("" where absent). Stays at the source."""
    fam = _col(records, "family_name")
    fam_r = _col(records, "family_name_roman")
    giv = _col(records, "given_name")
    giv_r = _col(records, "given_name_roman")
    pair_s = pd.Series(list(zip(fam, fam_r, strict=True)), index=records.index)
    pair_g = pd.Series(list(zip(giv, giv_r, strict=True)), index=records.index)
    out = pd.DataFrame(index=records.index)
    out["surname"] = _map_unique(pair_s, lambda p: nz.surname(*p) if p else "")
    out["given"] = _map_unique(pair_g, lambda p: nz.given_name(*p) if p else "")
    out["given_skel"] = _map_unique(pair_g, lambda p: nz.given_skeleton(*p) if p else "")
    near = _map_unique(giv, lambda h: "\x1e".join(nz.given_near_keys(h)))
    for j, f in enumerate(GIVEN_NEAR_FIELDS):
        out[f] = [k.split("\x1e")[j] if k else "" for k in near]
    # both names in one Latin spelling ("r:" prefix and Hangul folded away): written swapped, they agree
    folded = _map_unique(out["surname"], lambda a: nz.name_fold(a) if a else "")
    out["names_unordered"] = [
        ("\x1e".join((f, b) if f <= b else (b, f))) if a and b else ""
        for a, f, b in zip(out["surname"], folded, out["given"], strict=True)
    ]
    out["surname_latin"] = _map_unique(pair_s, lambda p: nz.latin_only(nz.surname(*p)) if p else "")
    out["given_latin"] = _map_unique(
        pair_g, lambda p: nz.given_name(*p) if p and nz.latin_only_pair(*p) else ""
    )
    out["sex"] = _map_unique(_col(records, "sex"), nz.sex)
    dob = _map_unique(_col(records, "birth_date"), nz.birth_date)
    out["dob"] = dob
    out["dob_swap"] = _map_unique(pd.Series(dob, index=records.index), nz.date_unordered)
    out["dob_next"] = _map_unique(pd.Series(dob, index=records.index), nz.next_day)
    out["yob"] = [d[:4] for d in dob]
    out["phone"] = _map_unique(_col(records, "phone"), nz.phone)
    out["postcode"] = _map_unique(_col(records, "postcode"), nz.postcode)
    out["address"] = _map_unique(_col(records, "address"), nz.address)
    out["house"] = _map_unique(_col(records, "address"), nz.house_number)
    out["street"] = _map_unique(_col(records, "address"), nz.street)
    r = _map_unique(_col(records, "rrn"), nz.rrn) if with_rrn else np.array([""] * len(records), dtype=object)
    out["rrn"] = r
    parts = [_rrn_parts(x) for x in r]
    # For a Korean RRN the first part is the birth date, already compared on its own: a token that
    # keeps it agrees for any two people born the same day far more often than its entropy says,
    # so those are named apart ("rrn_dob_*") and the unit weighs them given the birth date.
    korean = [len(x) == 13 for x in r]
    out["rrn_no_a"] = [p[1] + p[2] if p else "" for p in parts]
    out["rrn_no_b"] = [p[0] + "-" + p[2] if p and not k else "" for p, k in zip(parts, korean, strict=True)]
    out["rrn_no_c"] = [p[0] + p[1] if p and not k else "" for p, k in zip(parts, korean, strict=True)]
    out["rrn_dob_b"] = [p[0] + "-" + p[2] if p and k else "" for p, k in zip(parts, korean, strict=True)]
    out["rrn_dob_c"] = [p[0] + p[1] if p and k else "" for p, k in zip(parts, korean, strict=True)]
    return out


def _rrn_parts(d: str) -> tuple[str, str, str] | None:
    """A Korean RRN as birth date | 3 digits | 4 digits; another id of 7+ digits in thirds."""
    if len(d) == 13:
        return d[:6], d[6:9], d[9:]
    if len(d) < 7:
        return None
    a, b = len(d) // 3, 2 * len(d) // 3
    return d[:a], d[a:b], d[b:]


def hmac_sha256_many(key: bytes, prefix: bytes, messages: Iterable[str]) -> list[bytes]:
    """HMAC-SHA256(key, prefix + m) for each message m (UTF-8), exactly as `hmac.digest` computes it,
    with the key's states and the prefix hashed once (`keys.KeyedHmac`): about 2.5x faster than
    calling `hmac.digest` in a loop."""
    keyed = KeyedHmac(key, prefix)
    icopy, ocopy = keyed.inner, keyed.outer
    out: list[bytes] = []
    append = out.append
    for m in _encoded(messages):  # `keyed.raw` inlined: no function call per message
        h = icopy()
        h.update(m)
        o = ocopy()
        o.update(h.digest())
        append(o.digest())
    return out


def _encoded(messages: Iterable[str]) -> list[bytes]:
    """The messages in UTF-8, encoded in one call (split on NUL, which normalized fields never hold)."""
    msgs = list(messages)
    if not msgs:
        return []
    parts = "\0".join(msgs).encode().split(b"\0")
    return parts if len(parts) == len(msgs) else [m.encode() for m in msgs]


def _token_ints(key: bytes, name: str, columns: list[np.ndarray]) -> np.ndarray:
    """HMAC-SHA256(key, name | v1 | v2 ...) truncated to uint64; 0 where any component is empty."""
    n = len(columns[0])
    out = np.zeros(n, dtype=np.uint64)
    cols = [np.asarray(c, dtype=object) for c in columns]
    mask = np.ones(n, dtype=bool)
    for c in cols:
        mask &= c.astype(bool)  # "" and None are absent
    if not mask.any():
        return out
    kept = [c[mask] for c in cols]
    msgs = kept[0]
    for c in kept[1:]:  # "v1\x1fv2...", element-wise on object arrays (no per-row tuple)
        msgs = msgs + "\x1f" + c
    codes, uniques = pd.factorize(msgs)
    raw = b"".join(hmac_sha256_many(key, name.encode() + b"\x1f", uniques))
    vals = np.frombuffer(raw, dtype="<u8").reshape(-1, 4)[:, 0].copy()
    vals[vals == 0] = 1
    out[mask] = vals[codes]
    return out


def tokenize_normalized(norm: pd.DataFrame, key: bytes, record_ids: Iterable[str]) -> pd.DataFrame:
    """Tokens from already-normalized fields (see `normalized_fields`)."""
    if len(key) < 16:
        raise ValueError("a linkage round key must have at least 16 bytes")
    cols = {f: norm[f].to_numpy(dtype=object) for f in norm.columns}
    out = {"record_id": pd.array([str(r) for r in record_ids], dtype="string")}
    if len(out["record_id"]) != len(norm):
        raise ValueError("record_ids and records differ in length")
    for spec in _SINGLE_SPECS:
        out[spec.name] = _token_ints(key, spec.domain or spec.name, [cols[f] for f in spec.fields])
    out.update(_deletion_tokens(key, cols))
    return pd.DataFrame(out)


def _deletions(s: str) -> list[str]:
    return sorted({s, *(s[:i] + s[i + 1 :] for i in range(len(s)))})[:DEL_SLOTS]


def _slots(
    key: bytes, domain: str, variants: dict[int, list[str]], bound: list[str], n: int, rng
) -> np.ndarray:
    """(n, DEL_SLOTS) tokens of each row's variants (with its `bound` value), padded and shuffled."""
    slots = np.zeros((n, DEL_SLOTS), dtype=np.uint64)
    rows = [i for i in variants if bound[i]]
    if not rows:
        return slots
    slots[rows] = rng.integers(1, 2**63, size=(len(rows), DEL_SLOTS), dtype=np.uint64)
    flat_rows = [(i, j) for i in rows for j in range(len(variants[i]))]
    variant_vals = np.asarray([variants[i][j] for i, j in flat_rows], dtype=object)
    bound_vals = np.asarray([bound[i] for i, _ in flat_rows], dtype=object)
    where = tuple(np.asarray(flat_rows, dtype=np.int64).T)
    slots[where] = _token_ints(key, domain, [variant_vals, bound_vals])
    # shuffle each row's slots so that where the padding starts does not give the length away
    perm = np.argsort(rng.random((len(rows), DEL_SLOTS)), axis=1)
    slots[rows] = np.take_along_axis(slots[rows], perm, axis=1)
    return slots


def _deletion_tokens(key: bytes, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(cols["dob_swap"])
    out: dict[str, np.ndarray] = {}
    rng = np.random.default_rng()  # fresh OS entropy: padding must never repeat across tables
    for name, src in (("surname_del", "surname_latin"), ("given_del", "given_latin")):
        variants = {i: _deletions(cols[src][i]) for i in range(n) if cols[src][i]}
        for anchor, fields in (*DEL_ANCHORS.items(), DEL_WITH_OTHER_NAME[name]):
            slots = np.zeros((n, DEL_SLOTS), dtype=np.uint64)
            if variants:  # (none in a Korean hospital's table: every slot stays empty)
                rows = zip(*(cols[f] for f in fields), strict=True)
                bound = ["\x1f".join(t) if all(t) else "" for t in rows]
                # one HMAC domain for both names on a shared anchor: a surname written as the given
                # name still meets
                domain = f"name_del+{anchor}" if anchor in DEL_ANCHORS else f"{name}+{anchor}"
                slots = _slots(key, domain, variants, bound, n, rng)
            for j, col in enumerate(del_columns(name, anchor)):
                out[col] = slots[:, j].copy()
    # ids other than Korean RRNs: one digit left out (a typo or two swapped digits anywhere)
    variants = {i: _deletions(r) for i, r in enumerate(cols["rrn"]) if len(r) >= 7 and len(r) != 13}
    slots = _slots(key, RRN_DEL, variants, ["1"] * n, n, rng)
    out.update({col: slots[:, j].copy() for j, col in enumerate(RRN_DEL_COLUMNS)})
    return out


def tokenize(
    records: pd.DataFrame,
    key: bytes,
    *,
    id_column: str | None = None,
    mapping: Mapping[str, str] | None = None,
    with_rrn: bool = True,
    workers: int = 1,
) -> pd.DataFrame:
    """Token table for `records`: column `record_id` plus one uint64 column per name in TOKEN_NAMES.

    `mapping` renames the source's columns to INPUT_FIELDS ({"surname": "family_name_roman"}).
    `id_column` names the record's local id (default: the row number). With `with_rrn=False`
    the RRN is ignored. No input value, normalized or not, is copied into the output.
    `workers` > 1 tokenizes chunks of rows in that many processes (worth it from ~50k rows).
    """
    if mapping:
        unknown = sorted(set(mapping.values()) - set(INPUT_FIELDS))
        if unknown:
            raise ValueError(f"unknown identity field(s) {unknown}; known: {', '.join(INPUT_FIELDS)}")
        missing = sorted(set(mapping) - set(records.columns))
        if missing:
            raise ValueError(f"column(s) {missing} named in the mapping are not in the input")
        records = records.rename(columns=dict(mapping))
    if not set(INPUT_FIELDS) & set(records.columns):
        raise ValueError(
            f"no identity field found among columns {list(records.columns)[:20]}; "
            f"map them to {', '.join(INPUT_FIELDS)}"
        )
    if id_column is not None:
        if id_column not in records.columns:
            raise ValueError(f"id column {id_column!r} is not in the input")
        ids = records[id_column].astype(str).tolist()
    else:
        ids = [str(i) for i in range(len(records))]
    records = records[[c for c in INPUT_FIELDS if c in records.columns]].reset_index(drop=True)
    if workers > 1 and len(records) >= 2 * _MIN_CHUNK:
        bounds = np.linspace(0, len(records), workers + 1).astype(int)
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            parts = pool.map(
                _tokenize_chunk,
                [records.iloc[a:b] for a, b in itertools.pairwise(bounds)],
                [ids[a:b] for a, b in itertools.pairwise(bounds)],
                [key] * workers,
                [with_rrn] * workers,
            )
            return pd.concat(list(parts), ignore_index=True)
    return _tokenize_chunk(records, ids, key, with_rrn)


_MIN_CHUNK = 10_000


def _tokenize_chunk(records: pd.DataFrame, ids: list[str], key: bytes, with_rrn: bool) -> pd.DataFrame:
    norm = normalized_fields(records.reset_index(drop=True), with_rrn=with_rrn)
    return tokenize_normalized(norm, key, ids)
