"""The adapters of the ports in `imageeditor.core.ports`, one folder per kind, and each mode's
wiring.

Each kind (memory, redis, sql, celery, blobs) imports the core and its own driver, never
another kind; the two adapters of one port carry the same file name in their folders
(`memory/event_bus.py` beside `redis/event_bus.py`), and both pass the same contract tests.
The modules beside the folders join kinds into one mode: `storage` (what both modes keep
alike: SQL stores and blobs), `embedded` and `production` (everything a process of that mode
holds), each built by plain constructor calls.
"""
