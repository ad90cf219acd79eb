"""What the region declared: the programme plan, the mapping specs, the milestone timetable, a run of it.

Imports only the shared core (``model``, ``errors``, ``settings``, ``files``, ``privacy``, ``ledger``).
"""
