"""The only code that reads legacy databases: catalogue, partitions, extraction, Parquet staging.

May import ``plan`` and the shared core.
"""
