"""Audit log with proofs, metering and revenue split.

Not built yet: no issue has asked for it.
"""
