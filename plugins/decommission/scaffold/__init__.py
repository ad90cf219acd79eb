"""The mapping scaffold: a draft mapping spec and an inventory, read from a legacy database's live catalogue.

``python -m decommission scaffold --conn-id ID [--schema S ...] --out FILE``. The draft is a guess from
table and column names (:mod:`.patterns`), written for a person to review; it loads as it is, so the
first test delivery can run on it.
"""
