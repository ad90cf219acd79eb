"""``make bench``: the pipeline's throughput against PostgreSQL's own COPY speed (issue 4, point 7)."""
