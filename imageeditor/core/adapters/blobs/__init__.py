"""Blob stores: local disk and S3-compatible object storage, chosen by URL in `factory`."""
