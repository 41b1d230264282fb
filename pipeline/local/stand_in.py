"""The AWS stand-in: moto's server on a free loopback port, speaking the real S3 and Batch HTTP APIs."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@dataclass(frozen=True)
class StandIn:
    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS configuration that points any process at the stand-in."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",
            aws_session_token="local",
            region_name=REGION,
        )

    def client(self, service: str) -> Any:
        return self.session().client(service, endpoint_url=self.endpoint)


@contextmanager
def stand_in() -> Iterator[StandIn]:
    """Start the server (Batch without Docker: jobs are run by the local executor), stop it on exit."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _post(f"{endpoint}/moto-api/reset", b"")  # moto's state is per process: start empty
        _post(f"{endpoint}/moto-api/config", json.dumps({"batch": {"use_docker": False}}).encode())
        yield StandIn(endpoint)
    finally:
        server.stop()


def _post(url: str, body: bytes) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10).close()
