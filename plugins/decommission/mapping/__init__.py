"""Apply a mapping spec to staged rows: transforms, rules, identities, code systems, text codecs.

May import ``source``, ``plan`` and the shared core.
"""
