"""Frequency attacks on token tables: how much of a low-entropy field the tokens give away.

The attacker holds one token column and a public frequency table of the field (for
surnames, the census shares) and knows nothing else. Two attacks are measured:

- rank matching (the classic one): the i-th most frequent token is read as the i-th most
  frequent public value. `recovered_share` is the share of records whose value it reads right.
- quantile matching (stronger against combined tokens): tokens in decreasing frequency are
  labelled with public values in decreasing frequency, each value taking its public share of
  the records. Its `quantile_accuracy` is compared with a blind labelling that uses the public
  table but no token (each record labelled at random with the public shares):
  `lift` = accuracy - blind guess.

Only evaluation code holds the true values; the attack itself reads tokens and the public table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class AttackResult:
    token: str
    records: int
    recovered_share: float  # rank matching: share of records whose value is read right
    values_recovered: int  # rank matching: distinct values read right
    quantile_accuracy: float
    blind_guess: float
    lift: float


def frequency_attack(
    name: str, tokens: np.ndarray, true_values: Sequence[str], public_freq: Mapping[str, float]
) -> AttackResult:
    """Attack one token column; `true_values[i]` is record i's real value (for scoring only)."""
    tokens = np.asarray(tokens)
    truth = np.asarray(true_values, dtype=object)
    keep = tokens != 0
    tokens, truth = tokens[keep], truth[keep]
    n = len(tokens)
    if n == 0:
        return AttackResult(name, 0, 0.0, 0, 0.0, 0.0, 0.0)
    public = sorted(public_freq.items(), key=lambda kv: -kv[1])
    pub_values = [v for v, _ in public]
    pub_share = np.array([f for _, f in public], float)
    pub_share = pub_share / pub_share.sum()
    codes, uniq = pd.factorize(tokens)
    counts = np.bincount(codes)
    order = np.argsort(-counts, kind="stable")  # token codes, most frequent first
    # the real value behind each token code (a token built on the field carries a single value)
    first = np.full(len(uniq), -1)
    first[codes[::-1]] = np.arange(n)[::-1]
    token_truth = truth[first]
    # rank matching
    label = np.full(len(uniq), None, dtype=object)
    m = min(len(order), len(pub_values))
    label[order[:m]] = pub_values[:m]
    hit_token = label == token_truth
    recovered = float(counts[hit_token].sum() / n)
    values_recovered = int(len(set(token_truth[hit_token])))
    # quantile matching
    cum_records = np.cumsum(counts[order]) / n
    bounds = np.cumsum(pub_share)
    idx = np.minimum(np.searchsorted(bounds, cum_records - counts[order] / (2 * n)), len(pub_values) - 1)
    qlabel = np.empty(len(uniq), dtype=object)
    qlabel[order] = np.asarray(pub_values, dtype=object)[idx]
    q_acc = float(counts[qlabel == token_truth].sum() / n)
    share_of = dict(zip(pub_values, pub_share.tolist(), strict=True))
    blind = float(np.mean([share_of.get(v, 0.0) for v in truth]))
    return AttackResult(name, n, recovered, values_recovered, q_acc, blind, q_acc - blind)
