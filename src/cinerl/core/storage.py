"""Where finished files go: a local folder (default) or an S3 bucket.

Files are always written locally first, so an upload that fails loses nothing: it is retried
with exponential backoff, then reported, and the local file stays where it is. S3 uses boto3's
standard credential chain (environment, shared config, instance role; an `AWS_ENDPOINT_URL`
points it at an S3-compatible server); credentials are never read or logged here.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cinerl.core.errors import UserError

log = logging.getLogger(__name__)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class UploadFailed(RuntimeError):
    """Every retry of one upload failed; the local file is kept."""


class Storage(Protocol):
    def put(self, local: Path, key: str) -> str:
        """Store the file under key and return its location (a path or an s3:// URL)."""
        ...

    def describe(self) -> str: ...


@dataclass
class LocalStorage:
    """The files already sit in the output folder; their location is their path."""

    root: Path

    def put(self, local: Path, key: str) -> str:
        return str(Path(local).resolve())

    def describe(self) -> str:
        return f"local folder {self.root}"


@dataclass
class S3Storage:
    bucket: str
    prefix: str = ""
    client: object = None
    attempts: int = 4
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self):
        if self.client is None:
            self.client = make_s3_client()

    def key(self, name: str) -> str:
        return f"{self.prefix.strip('/')}/{name}" if self.prefix.strip("/") else name

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}"

    def check(self) -> None:
        """Reach the bucket once before any work, so a wrong bucket or missing credentials end
        the command at the start with a clear message."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise UserError(
                "no AWS credentials found (environment, ~/.aws or instance role); "
                f"cannot use {self.describe()}"
            ) from None
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "?")
            why = {
                "404": "does not exist",
                "NoSuchBucket": "does not exist",
                "403": "is not accessible with these credentials",
            }.get(code, f"failed ({code})")
            raise UserError(f"S3 bucket {self.bucket!r} {why}") from None
        except BotoCoreError as e:
            raise UserError(f"cannot reach S3 for {self.describe()}: {e}") from None

    def put(self, local: Path, key: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        ctype = mimetypes.guess_type(str(local))[0] or "application/octet-stream"
        last = None
        for attempt in range(self.attempts):
            try:
                self.client.upload_file(
                    str(local), self.bucket, self.key(key), ExtraArgs={"ContentType": ctype}
                )
                return self.url(key)
            except (BotoCoreError, ClientError, OSError) as e:
                last = e
                if attempt + 1 < self.attempts:
                    wait = self.backoff_s * 2**attempt
                    log.warning(
                        "upload of %s to %s failed (%s); retry %d/%d in %.1fs",
                        local.name,
                        self.url(key),
                        type(e).__name__,
                        attempt + 1,
                        self.attempts - 1,
                        wait,
                    )
                    self.sleep(wait)
        raise UploadFailed(
            f"upload of {local} to {self.url(key)} failed after {self.attempts} attempts: {last}"
        )


def make_s3_client():
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise UserError("S3 storage needs boto3: pip install 'cinerl[references]'") from None
    cfg = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 2})
    return boto3.client("s3", config=cfg)


def parse_storage(spec: str | None, out_dir: Path, client=None) -> Storage:
    """`None` or a folder -> LocalStorage(out_dir); `s3://bucket/prefix` -> S3Storage."""
    if not spec:
        return LocalStorage(out_dir)
    if not spec.startswith("s3://"):
        raise UserError(
            f"--storage must look like s3://bucket/prefix (got {spec!r}); leave it out "
            "to keep the files in --out only"
        )
    bucket, _, prefix = spec[5:].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise UserError(f"--storage {spec!r}: {bucket!r} is not a valid S3 bucket name")
    return S3Storage(bucket, prefix.strip("/"), client=client)
