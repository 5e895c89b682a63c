"""Comparison of token tables and the Fellegi-Sunter model, trained by EM without labels.

`comparison_levels(left, right, li, ri)` turns candidate pairs (row indices into two token
tables) into one agreement level per field, decoded from anchored tokens: a bound field
(surname, given name, ...) agrees when its token on some shared anchor agrees, disagrees
when an anchor is shared but its token there differs, and is unknown (-1) otherwise.
`fit_em` estimates m and u per field and level, and the share of matches, on the counts
of distinct agreement patterns (numpy, vectorised), so millions of pairs cost little.
Graded levels: a birth date swapped or one day apart, a name one letter apart (or written
in the other field), the same building number and postcode, the same street, the same
building number only. u of anchor fields is counted over all pairs from token frequencies
(for the building number + postcode, less the matches that the other fields find); u of
bound fields comes from `latent_class_u`, a two-class EM over the pairs born the same day
(robust where the matches outnumber the different people there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medhub.privacy.linkage.tokens import (
    BINDING_ANCHORS,
    DEL_ANCHORS,
    DEL_NAMES,
    DEL_WITH_OTHER_NAME,
    DOB_NEXT_ON,
    DOB_ON,
    GIVEN_NEAR_FIELDS,
    GIVEN_POSTCODE,
    HOUSE_POSTCODE,
    NAME_DOB,
    NAME_DOB_NEXT,
    NAME_STREET,
    NAMES_HOUSE,
    NAMES_POSTCODE,
    NAMES_UNORDERED,
    RRN_DEL_COLUMNS,
    STREET_POSTCODE,
    del_columns,
)

# field -> number of levels (highest = full agreement). -1 in a level array means unknown.
FIELDS: dict[str, int] = {
    # 3 exact; 2 all but one part agree, the birth date not among those kept (a typo); 1 the birth
    # date and part of the rest agree (a typo after the date); 0 differs
    "rrn": 4,
    # 2 exact, 1 day and month swapped or (same full name, phone or address) one day apart, 0 differs
    "dob": 3,
    "phone": 2,
    # 4 same address, 3 same building number and postcode, 2 same street (another building), 1 same
    # postcode, 5 same building number only (another street and postcode), 0 differs
    "residence": 6,
    "surname": 3,  # 2 same, 1 one letter apart (Latin-only names), 0 differs
    # 3 same, 2 one slip apart (a Latin letter; a Hangul syllable's vowel or final, or two syllables
    # transposed), 1 same consonant skeleton only, 0 differs
    "given": 4,
    "sex": 2,
}

# Starting values for EM: records of one person mostly agree; two people's seldom do (public rates
# for Korean names: two random people share a surname ~8% of the time, a given name ~2%).
INITIAL_M = {
    "rrn": [0.02, 0.04, 0.04, 0.9],
    "dob": [0.05, 0.05, 0.9],
    "phone": [0.15, 0.85],
    "residence": [0.1, 0.03, 0.02, 0.05, 0.8, 0.02],
    "surname": [0.02, 0.03, 0.95],
    "given": [0.05, 0.05, 0.05, 0.85],
    "sex": [0.02, 0.98],
}
INITIAL_U = {
    "rrn": [0.98, 0.01, 0.009, 0.001],
    "dob": [0.9, 0.05, 0.05],
    "phone": [0.99, 0.01],
    "residence": [0.88, 0.08, 0.01, 0.005, 0.005, 0.02],
    "surname": [0.9, 0.02, 0.08],
    "given": [0.9, 0.06, 0.01, 0.03],
    "sex": [0.5, 0.5],
}


# anchors that bound fields are tokenized with ("surname+house+postcode", ...)
FIELD_ANCHORS = (*BINDING_ANCHORS, HOUSE_POSTCODE, STREET_POSTCODE)


def _eq(left: pd.DataFrame, right: pd.DataFrame, name: str, li: np.ndarray, ri: np.ndarray):
    a = left[name].to_numpy()[li]
    b = right[name].to_numpy()[ri]
    present = (a != 0) & (b != 0)
    return present & (a == b), present


def _bound(left, right, li, ri, fld: str, anchors_eq: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(agree, disagree) for a field decoded through the anchors both records share."""
    n = len(li)
    agree = np.zeros(n, dtype=bool)
    disagree = np.zeros(n, dtype=bool)
    for a in FIELD_ANCHORS:
        name = f"{fld}+{a}"
        if name not in left.columns:
            continue
        eq, present = _eq(left, right, name, li, ri)
        agree |= eq
        disagree |= anchors_eq[a] & present & ~eq
    return agree, disagree & ~agree


def _cross_eq(left, right, lname: str, rname: str, li, ri) -> np.ndarray:
    a, b = left[lname].to_numpy()[li], right[rname].to_numpy()[ri]
    return (a == b) & (a != 0)


def _one_day_apart(left, right, li, ri) -> np.ndarray:
    """Birth dates one day apart with the same full name, phone or address (crosswise dob / dob_next
    tokens on that anchor)."""
    out = np.zeros(len(li), dtype=bool)
    for on, nxt in ((NAME_DOB, NAME_DOB_NEXT), *zip(DOB_ON, DOB_NEXT_ON, strict=True)):
        if on in left.columns:
            out |= _cross_eq(left, right, on, nxt, li, ri) | _cross_eq(left, right, nxt, on, li, ri)
    return out


def _one_apart(
    left, right, li, ri, name: str, anchors_eq: dict[str, np.ndarray], other: str = "", chunk: int = 200_000
):
    """(one letter apart, known to be further apart) for a Latin-only name, through any shared anchor.

    With `other`, the left record's `name` is compared with the right record's `other` (names swapped)."""
    near = np.zeros(len(li), dtype=bool)
    far = np.zeros(len(li), dtype=bool)
    other = other or name
    if name not in DEL_NAMES or other not in DEL_NAMES:
        return near, far
    for anchor in DEL_ANCHORS:
        cols_a, cols_b = del_columns(name, anchor), del_columns(other, anchor)
        if cols_a[0] not in left.columns:
            continue
        a_all = left[cols_a].to_numpy()
        b_all = right[cols_b].to_numpy()
        has_a = a_all.any(axis=1)
        has_b = b_all.any(axis=1)
        both = np.flatnonzero(has_a[li] & has_b[ri] & anchors_eq[anchor] & ~near)
        hit = _slot_hits(a_all, b_all, li[both], ri[both], chunk)
        near[both] |= hit
        far[both] |= ~hit
    return near, far & ~near


def _slot_hits(
    a_all: np.ndarray, b_all: np.ndarray, li: np.ndarray, ri: np.ndarray, chunk: int
) -> np.ndarray:
    """For each pair (li[i], ri[i]): whether any slot of the left row equals any slot of the right,
    in chunks of `chunk` pairs (the slot-by-slot comparison is slots^2 wide)."""
    hit = np.zeros(len(li), dtype=bool)
    for start in range(0, len(li), chunk):
        a, b = a_all[li[start : start + chunk]], b_all[ri[start : start + chunk]]
        hit[start : start + chunk] = (a[:, :, None] == b[:, None, :]).any(axis=(1, 2))
    return hit


def slots_meet(left, right, li: np.ndarray, ri: np.ndarray, cols: list[str], chunk: int = 200_000):
    """Pairs whose records share a value among the slot columns `cols` (padding never repeats)."""
    out = np.zeros(len(li), dtype=bool)
    if cols[0] not in left.columns:
        return out
    a_all = left[cols].to_numpy()
    b_all = right[cols].to_numpy()
    both = np.flatnonzero(a_all.any(axis=1)[li] & b_all.any(axis=1)[ri])
    out[both] = _slot_hits(a_all, b_all, li[both], ri[both], chunk)
    return out


def comparison_levels(
    left: pd.DataFrame, right: pd.DataFrame, li: np.ndarray, ri: np.ndarray
) -> dict[str, np.ndarray]:
    """Agreement level per field (int8 arrays, -1 = unknown) for the pairs (left[li], right[ri])."""
    anchors_eq = {a: _eq(left, right, a, li, ri)[0] for a in FIELD_ANCHORS}
    out: dict[str, np.ndarray] = {}

    rrn_eq, rrn_present = _eq(left, right, "rrn", li, ri)
    typo = np.zeros(len(li), dtype=bool)
    for t in ("rrn_no_a", "rrn_no_b", "rrn_no_c"):
        typo |= _eq(left, right, t, li, ri)[0]
    typo |= slots_meet(left, right, li, ri, list(RRN_DEL_COLUMNS)) & ~rrn_eq  # other ids one digit apart
    dob_typo = _eq(left, right, "rrn_dob_b", li, ri)[0] | _eq(left, right, "rrn_dob_c", li, ri)[0]
    out["rrn"] = np.select([rrn_eq, typo, dob_typo, rrn_present], [3, 2, 1, 0], default=-1).astype(np.int8)

    dob_eq, dob_present = _eq(left, right, "dob", li, ri)
    out["dob"] = np.select(
        [dob_eq, anchors_eq["dob_swap"] | _one_day_apart(left, right, li, ri), dob_present],
        [2, 1, 0],
        default=-1,
    ).astype(np.int8)
    # RRN level 1 keeps the RRN's birth-date digits: the birth date agrees there even where the
    # date field was mistyped (and level 1's u is counted among pairs born the same day)
    out["dob"][out["rrn"] == 1] = 2

    ph_eq, ph_present = _eq(left, right, "phone", li, ri)
    out["phone"] = np.where(ph_eq, 1, np.where(ph_present, 0, -1)).astype(np.int8)

    np_eq = _eq(left, right, NAMES_POSTCODE, li, ri)[0]  # both names (in either order) and the postcode
    # one name exact and the other at most one letter apart, same postcode (Latin-only names)
    s_with_given, g_with_surname = DEL_WITH_OTHER_NAME["surname_del"][0], DEL_WITH_OTHER_NAME["given_del"][0]
    surname_typo = slots_meet(left, right, li, ri, del_columns("surname_del", s_with_given))  # given exact
    given_typo = slots_meet(left, right, li, ri, del_columns("given_del", g_with_surname))  # surname exact
    gp_eq = _eq(left, right, GIVEN_POSTCODE, li, ri)[0]
    ad_eq, ad_present = _eq(left, right, "address", li, ri)
    pc_agree, pc_dis = _bound(left, right, li, ri, "postcode", anchors_eq)
    pc_agree |= np_eq | surname_typo | given_typo | gp_eq
    hp_eq, hp_present = _eq(left, right, HOUSE_POSTCODE, li, ri)
    pc_agree |= hp_eq
    st_agree, st_dis = _bound(left, right, li, ri, "street", anchors_eq)
    ns_eq = _eq(left, right, NAME_STREET, li, ri)[0]  # both names (in either order) and the street
    sp_eq = _eq(left, right, STREET_POSTCODE, li, ri)[0]
    st_agree |= ns_eq | sp_eq
    nh_eq = _eq(left, right, NAMES_HOUSE, li, ri)[0]  # both names and the building number
    names_eq = np_eq | ns_eq | nh_eq
    ho_agree, ho_dis = _bound(left, right, li, ri, "house", anchors_eq)
    ho_agree |= nh_eq
    out["residence"] = np.select(
        [ad_eq, hp_eq, st_agree, pc_agree, ho_agree, ad_present | pc_dis | hp_present | st_dis | ho_dis],
        [4, 3, 2, 1, 5, 0],
        default=-1,
    ).astype(np.int8)

    swapped = _eq(left, right, NAMES_UNORDERED, li, ri)[0]
    s_agree, s_dis = _bound(left, right, li, ri, "surname", anchors_eq)
    crosswise = (
        _eq(left, right, NAME_DOB, li, ri)[0]
        | _cross_eq(left, right, NAME_DOB, NAME_DOB_NEXT, li, ri)
        | _cross_eq(left, right, NAME_DOB_NEXT, NAME_DOB, li, ri)
    )
    s_agree |= names_eq | swapped | crosswise | given_typo
    s_near, s_far = _one_apart(left, right, li, ri, "surname_del", anchors_eq)
    # Latin names written the other way round (one of them perhaps mistyped): the crosswise
    # comparison counts as "one letter apart" at best, for the field of the left record's name
    s_cross = _one_apart(left, right, li, ri, "surname_del", anchors_eq, other="given_del")[0]
    g_cross = _one_apart(left, right, li, ri, "given_del", anchors_eq, other="surname_del")[0]
    s_near |= (s_cross | surname_typo) & ~s_agree
    s_far &= ~(s_cross | surname_typo)
    out["surname"] = np.select([s_agree, s_near, s_dis | s_far], [2, 1, 0], default=-1).astype(np.int8)

    g_agree, g_dis = _bound(left, right, li, ri, "given", anchors_eq)
    g_agree |= names_eq | swapped | crosswise | surname_typo | gp_eq
    k_agree, k_dis = _bound(left, right, li, ri, "given_skel", anchors_eq)
    g_near, g_far = _one_apart(left, right, li, ri, "given_del", anchors_eq)
    for f in GIVEN_NEAR_FIELDS:  # Hangul: one syllable slipped, or two transposed
        g_near |= _bound(left, right, li, ri, f, anchors_eq)[0]
    g_near |= (g_cross | given_typo) & ~g_agree
    g_far &= ~(g_cross | given_typo)
    out["given"] = np.select(
        [g_agree, g_near, k_agree, g_dis | k_dis | g_far], [3, 2, 1, 0], default=-1
    ).astype(np.int8)

    x_agree, x_dis = _bound(left, right, li, ri, "sex", anchors_eq)
    # a shared given name already says the sex (given names are sex-specific): count sex only otherwise
    out["sex"] = np.where(out["given"] == 3, -1, np.where(x_agree, 1, np.where(x_dis, 0, -1))).astype(np.int8)
    return out


@dataclass
class FSModel:
    """m and u per field and level, and lambda, the prior share of matches among candidate pairs."""

    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    lam: float
    iterations: int = 0
    converged: bool = False
    history: list[float] = field(default_factory=list)

    def log2_bayes_factor(self, levels: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(levels.values())))
        w = np.zeros(n)
        for f, lv in levels.items():
            table = np.log2(self.m[f]) - np.log2(self.u[f])
            known = lv >= 0
            w[known] += table[lv[known]]
        return w

    def match_probability(self, levels: dict[str, np.ndarray]) -> np.ndarray:
        w = self.log2_bayes_factor(levels) + np.log2(self.lam) - np.log2(1 - self.lam)
        return 1.0 / (1.0 + np.exp2(-np.clip(w, -60, 60)))


def agreement_patterns(
    levels: dict[str, np.ndarray], n_levels: dict[str, int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct agreement patterns (rows; -1 unknown), their counts, and each pair's pattern index.

    `n_levels` gives the fields (in order) and their numbers of levels; default FIELDS."""
    sizes = n_levels or FIELDS
    names = list(sizes)
    code = np.zeros(len(levels[names[0]]), dtype=np.int64)
    for f in names:
        code = code * (sizes[f] + 1) + (levels[f].astype(np.int64) + 1)
    uniq, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    pats = np.zeros((len(uniq), len(names)), dtype=np.int64)
    rest = uniq.copy()
    for j in range(len(names) - 1, -1, -1):
        base = sizes[names[j]] + 1
        pats[:, j] = rest % base - 1
        rest //= base
    return pats, counts, inverse


class AgreementCounts:
    """Pairs agreeing on a token over ALL left x right pairs, from value counts (cached per token)."""

    def __init__(self, left: pd.DataFrame, right: pd.DataFrame) -> None:
        self.left, self.right = left, right
        self._cache: dict[str, tuple[float, float]] = {}

    @staticmethod
    def _key(df: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
        cols = [df[n].to_numpy() for n in names]
        key = cols[0].copy()
        for c in cols[1:]:
            key = key * np.uint64(0x9E3779B97F4A7C15) ^ c  # joint value (0 wherever one is absent)
            key[c == 0] = 0
        key[cols[0] == 0] = 0
        return key

    def __call__(self, *names: str) -> tuple[float, float]:
        """(pairs agreeing on every token in `names`, pairs where both records have them all)."""
        name = "&".join(names)
        if name not in self._cache:
            lc = pd.Series(self._key(self.left, names)).value_counts(sort=False)
            rc = pd.Series(self._key(self.right, names)).value_counts(sort=False)
            lc = lc[lc.index != 0]
            rc = rc[rc.index != 0]
            agree = float((lc * rc.reindex(lc.index, fill_value=0)).sum())
            self._cache[name] = (agree, float(lc.sum()) * float(rc.sum()))
        return self._cache[name]


def estimate_u(
    left: pd.DataFrame,
    right: pd.DataFrame,
    levels: dict[str, np.ndarray],
    min_pairs: int = 50,
    model: FSModel | None = None,
    n_pairs: float = 0.0,
    counts: AgreementCounts | None = None,
) -> dict[str, np.ndarray]:
    """u: the chance that two different people agree, per field and level (fixed during EM).

    Anchor fields (rrn, dob, phone, address) are counted exactly over all pairs from token
    frequencies. Bound fields are only visible where two records share an anchor, so their u is
    fitted by `latent_class_u` on the candidate pairs born the same day (blocking keeps them
    all); the public starting values stand in where too few such pairs exist.
    """
    u = {f: np.asarray(INITIAL_U[f], float).copy() for f in FIELDS}
    pairs_agreeing = counts or AgreementCounts(left, right)
    # no level is rarer among different people than half a pair in all of them
    tiny = 0.5 / max(n_pairs, float(len(left)) * float(len(right)), 1.0)

    # Counts over all pairs include the true matches; with a fitted model, take out its expected
    # matches (lambda * n_pairs, agreeing at rate m) so that u describes different people only.
    n_match = model.lam * n_pairs if model is not None else 0.0

    def rate(name: str, m_agree: float = 0.0) -> float:
        agree, total = pairs_agreeing(name)
        if not total:
            return 0.0
        return max(agree - n_match * m_agree, 0.0) / max(total - n_match, 1.0)

    def m_of(f: str, level: int) -> float:
        return float(model.m[f][level]) if model is not None else 0.0

    r_exact = rate("rrn", m_of("rrn", 3))
    exact_pairs, total = pairs_agreeing("rrn")

    def beyond_exact(tokens: tuple[str, ...]) -> float:
        return sum(max(pairs_agreeing(t)[0] - exact_pairs, 0.0) for t in tokens)

    typo_pairs = beyond_exact(("rrn_no_a", "rrn_no_b", "rrn_no_c"))
    r_typo = max(typo_pairs - n_match * m_of("rrn", 2), 0.0) / max(total - n_match, 1.0) if total else 0.0
    # level 1 keeps the birth date: count it among pairs born the same day (the dob field carries the rest)
    dob_pairs = pairs_agreeing("dob")[0]
    dob_typo_pairs = beyond_exact(("rrn_dob_b", "rrn_dob_c"))
    r_dob_typo = max(dob_typo_pairs - n_match * m_of("rrn", 1), 0.0) / max(dob_pairs - n_match, 1.0)
    r_dob_typo = min(r_dob_typo, 0.5) if dob_typo_pairs else 0.0
    u["rrn"] = np.array(
        [
            max(1 - r_exact - r_typo - r_dob_typo, tiny),
            max(r_dob_typo, tiny),
            max(r_typo, tiny),
            max(r_exact, tiny),
        ]
    )
    d_exact = rate("dob", m_of("dob", 2))
    # swapped day and month, or one day apart (two neighbouring days: about twice the same-day rate;
    # counted for any two people, an overestimate where the level needs the same name or anchor too)
    d_swap = max(rate("dob_swap", m_of("dob", 2)) - d_exact, 0.0) + 2 * d_exact
    u["dob"] = np.array([max(1 - d_exact - d_swap, tiny), max(d_swap, tiny), max(d_exact, tiny)])
    p = rate("phone", m_of("phone", 1))
    u["phone"] = np.array([max(1 - p, tiny), max(p, tiny)])
    a = rate("address", m_of("residence", 4))
    # postcode without address: not countable from tokens alone; read it off the dob-sharing pairs below.
    # Bound fields: among candidate pairs that share a birth date, weighted by the chance that they are
    # different people (the fitted model's 1 - posterior; before any fit, the public starting values).
    # Bound fields: u from a two-class EM (m and u both free) over the candidate pairs born the same day,
    # a sample of pairs unbiased by any name ("one day apart" is only seen where a name or anchor agrees).
    # Where the matches outnumber those pairs (small files), taking u as "the rest after the expected
    # matches" drifts up with every refit; a latent-class fit does not.
    shared = levels["dob"] == 2
    if int(shared.sum()) >= min_pairs:
        sub = {f: levels[f][shared] for f in UNANCHORED_FIELDS}
        start_m = model.m if model is not None else INITIAL_M
        fitted = latent_class_u(sub, {f: start_m[f] for f in sub}, {f: u[f] for f in sub})
        for f in ("surname", "given", "sex", "residence"):
            if ((sub[f] >= 0).sum()) >= min_pairs:
                u[f] = fitted[f]
    res = u["residence"].copy()
    res[4] = max(a, tiny)
    hp_agree, hp_total = pairs_agreeing(HOUSE_POSTCODE)
    both_agree = pairs_agreeing(HOUSE_POSTCODE, "address")[0]
    hp_only = max(hp_agree - both_agree, 0.0)
    if model is not None:
        # Take out the matches among them by their posterior from the *other* fields (taking out
        # lambda x n_pairs x m would let a fitted m that absorbed pairs of neighbours drive u to zero
        # and feed on itself; without the residence term the posterior cannot feed on it).
        here = levels["residence"] == 3
        others = {f: lv[here] for f, lv in levels.items() if f != "residence"}
        post = _posterior(model, others)
        hp_only = max(hp_only - float(post.sum()), 0.0)
    res[3] = max(hp_only / max(hp_total - n_match, 1.0), tiny) if hp_total else tiny
    res[[1, 2, 5]] = np.maximum(res[[1, 2, 5]], tiny)
    res[0] = max(1 - res[1:].sum(), tiny)
    u["residence"] = res / res.sum()
    return u


def _posterior(model: FSModel, levels: dict[str, np.ndarray]) -> np.ndarray:
    """Match probability from the fields in `levels` only (the others left out)."""
    n = len(next(iter(levels.values()))) if levels else 0
    w = np.full(n, np.log2(model.lam) - np.log2(1 - model.lam))
    for f, lv in levels.items():
        table = np.log2(model.m[f]) - np.log2(model.u[f])
        known = lv >= 0
        w[known] += table[lv[known]]
    return 1.0 / (1.0 + np.exp2(-np.clip(w, -60, 60)))


# Fields other than the birth date, for the EM over pairs born the same day.
UNANCHORED_FIELDS = ("rrn", "phone", "residence", "surname", "given", "sex")


def latent_class_u(
    levels: dict[str, np.ndarray],
    m0: dict[str, np.ndarray],
    u0: dict[str, np.ndarray],
    max_iter: int = 300,
    tol: float = 1e-7,
) -> dict[str, np.ndarray]:
    """u per field from a two-class mixture (m, u and the share of matches all free) on these pairs."""
    names = list(levels)
    pats, counts, _ = agreement_patterns(levels, {f: len(u0[f]) for f in names})
    counts = counts.astype(float)
    m = {f: np.asarray(m0[f], float).copy() for f in names}
    u = {f: np.asarray(u0[f], float).copy() for f in names}
    lam = 0.5
    for _ in range(max_iter):
        logm = np.zeros(len(pats))
        logu = np.zeros(len(pats))
        for j, f in enumerate(names):
            lv = pats[:, j]
            known = lv >= 0
            logm[known] += np.log(m[f][lv[known]])
            logu[known] += np.log(u[f][lv[known]])
        logit = np.clip(logm - logu + np.log(lam) - np.log1p(-lam), -700, 700)
        post = 1.0 / (1.0 + np.exp(-logit))
        wm, wu = counts * post, counts * (1 - post)
        new_lam = float(np.clip(wm.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        for j, f in enumerate(names):
            lv = pats[:, j]
            known = lv >= 0
            cm = np.bincount(lv[known], weights=wm[known], minlength=len(m[f])) + 1e-3
            cu = np.bincount(lv[known], weights=wu[known], minlength=len(u[f])) + 0.5
            m[f], u[f] = cm / cm.sum(), cu / cu.sum()
        done = abs(new_lam - lam) <= tol
        lam = new_lam
        if done:
            break
    return u


def fit_em(
    levels: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    n_pairs: float,
    max_iter: int = 200,
    tol: float = 1e-6,
    patterns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> FSModel:
    """Estimate m and lambda (the share of matches among ALL n_pairs pairs) by EM, u held fixed.

    Pairs outside the candidate set are taken as non-matches (blocking keeps every likely match).
    Works on the counts of distinct agreement patterns, so it costs little for millions of pairs.
    """
    names = list(FIELDS)
    pats, counts, _ = patterns if patterns is not None else agreement_patterns(levels)
    counts = counts.astype(float)
    m = {f: np.asarray(INITIAL_M[f], float) for f in names}
    lam = min(0.5 * counts.sum() / n_pairs, 0.5)
    logu = np.zeros(len(pats))
    for j, f in enumerate(names):
        lv = pats[:, j]
        known = lv >= 0
        logu[known] += np.log(u[f][lv[known]])
    model = FSModel(m=m, u=u, lam=lam)
    prev = None
    for it in range(1, max_iter + 1):
        logm = np.zeros(len(pats))
        for j, f in enumerate(names):
            lv = pats[:, j]
            known = lv >= 0
            logm[known] += np.log(m[f][lv[known]])
        logit = np.clip(logm - logu + np.log(lam) - np.log1p(-lam), -700, 700)
        post = 1.0 / (1.0 + np.exp(-logit))
        wm = counts * post
        new_lam = float(np.clip(wm.sum() / n_pairs, 1e-15, 0.5))
        for j, f in enumerate(names):
            lv = pats[:, j]
            known = lv >= 0
            cm = np.bincount(lv[known], weights=wm[known], minlength=FIELDS[f]) + 1e-3
            m[f] = cm / cm.sum()
        ll = float(wm.sum())
        model.history.append(ll)
        model.iterations = it
        done = prev is not None and abs(new_lam - lam) <= tol * lam
        lam = new_lam
        prev = ll
        if done:
            model.converged = True
            break
    model.m, model.lam = m, lam
    return model
