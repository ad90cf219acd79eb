"""Synthetic legacy care systems for demos and tests.

``demo.generate.build(system, target, seed=..., patients=...)`` writes a realistic,
deterministic legacy database (``vas``, ``lab`` or ``anestesi``) with known dirt to a
SQLite file or a PostgreSQL schema and returns its dirt report. Command line::

    python -m demo.generate --system vas --target out/demo/sources/vas.sqlite --seed 7 --patients 200
"""
