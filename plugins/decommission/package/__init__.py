"""Build E-ARK CSIP/SIP + eHealth1 packages: record XML, METS, PREMIS, the tar hashed as written.

May import ``mapping``, ``source``, ``plan`` and the shared core.
"""
