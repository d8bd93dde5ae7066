"""imageeditor: asynchronous image-editing jobs over gRPC.

    imageeditor.v1        the contract's generated code (protos/; `make gen`, never edited)
    imageeditor.sdk       the Python SDK: Client, AsyncClient, typed errors
    imageeditor.cli       the `imageeditor` command line
    imageeditor.core      the domain, the use cases and the adapters both processes share
    imageeditor.server    the gRPC edge (production server's composition root: main)
    imageeditor.workers   the pipeline and the Celery worker
    imageeditor.embedded  embedded mode's composition root

Only the SDK's four dependencies come with a plain install; the server and worker need the
`server` and `worker` extras.
"""
