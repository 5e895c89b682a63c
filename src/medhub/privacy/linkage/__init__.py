"""The linkage unit: keyed tokens made at the source, linked without plaintext, into master IDs.

tokens.tokenize(records, round_key) -> token table      (at the source)
unit.link_tables(left_tokens, right_tokens) -> pairs     (in the unit: blocking, EM, 1-1)
unit.LinkageUnit(linkage_dir)                            (its own store: master IDs, project keys)
attack.frequency_attack(...)                             (measures what tokens leak)
"""
