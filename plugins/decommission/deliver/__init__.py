"""The only code that talks to the archive: transports (HTTP, SFTP), uploads, receipts, the ingest wait.

May import ``validate`` and everything upstream of it.
"""
