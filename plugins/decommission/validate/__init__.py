"""Our offline package validator: schemas, CSIP/SIP/eHealth1 requirement ids, fixity, missing and extra files.

May import ``package`` and everything upstream of it. r7sim uses it to judge what it ingests.
"""
