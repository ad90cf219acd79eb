"""The programme as its leaders see it: each system's state, the risks, the economics, the board report.

Reads only the plan, the ledger and the report files the ledger vouches for; writes only the board report.
"""
