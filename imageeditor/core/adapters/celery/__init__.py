"""The Celery side of the core: the app's configuration, and dispatch by task name."""
