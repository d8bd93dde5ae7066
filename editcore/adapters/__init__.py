"""The adapters of the ports in `editcore.ports`, one folder per kind.

Each kind (memory, redis, sql, celery, blobs) imports the core and its own driver, never
another kind; the two adapters of one port carry the same file name in their folders
(`memory/event_bus.py` beside `redis/event_bus.py`), and both pass the same contract tests.
"""
