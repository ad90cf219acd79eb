"""The end of the programme for a system: sign-off, the evidence pack, the contract-exit record.

May import every other stage package and the shared core.
"""
