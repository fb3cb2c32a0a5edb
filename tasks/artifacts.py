"""Prefect artifact keys per deployment, and the report published as a link where it has an http(s) address."""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse


def artifact_key(name: str) -> str:
    """'rnnbench-<deployment>-<name>' in a deployment's run, so that each deployment's artifacts keep a history of
    their own (a nightly quick's progress is not a weekly full's); 'rnnbench-<name>' elsewhere (the CLI). Keys
    allow lowercase letters, digits and dashes."""
    from prefect.runtime import deployment

    slug = re.sub(r"[^a-z0-9]+", "-", (deployment.name or "").lower()).strip("-")
    return f"rnnbench-{slug}-{name}" if slug else f"rnnbench-{name}"


def http_location(location: str) -> str | None:
    """An http(s) address of a stored file, or None (a local path, or a scheme with no such address): the
    location itself when it is one; gs://B/K at storage.googleapis.com; s3://B/K under AWS_ENDPOINT_URL (path
    style, as pyarrow writes there) when it is set, else at B.s3.amazonaws.com. Reading it may still need the
    store's credentials."""
    parsed = urlparse(location)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if parsed.scheme in ("http", "https"):
        return location
    if parsed.scheme == "gs":
        return f"https://storage.googleapis.com/{bucket}/{key}"
    if parsed.scheme == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return f"{endpoint.rstrip('/')}/{bucket}/{key}" if endpoint else f"https://{bucket}.s3.amazonaws.com/{key}"
    return None


def publish_report_link(report_html: str) -> str | None:
    """A link artifact to the report when it has an http(s) address (an object store); the address, or None."""
    from prefect.artifacts import create_link_artifact

    url = http_location(report_html)
    if url is not None:
        create_link_artifact(link=url, link_text="report.html", key=artifact_key("report"),
                             description="The sweep's report in its output's object store")
    return url
