"""Users, access requests, review, permits, workspace jobs and the airlock.

Not built yet: no issue has asked for it. Nothing here is importable as a feature.
"""
