"""Does the archive hold what the source had: counts, breakdowns, fingerprints, read-back, verdict.

May import ``deliver`` and everything upstream of it.
"""
