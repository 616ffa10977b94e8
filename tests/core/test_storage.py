"""Storage: an S3 round trip against moto's server on 127.0.0.1, retries with backoff, and a
failed upload that loses nothing."""

import json
import logging

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from cinerl.core.errors import UserError
from cinerl.training.character.dataset.actors import generate_actor_dataset
from cinerl.core.storage import LocalStorage, S3Storage, UploadFailed, parse_storage
from tests.fixtures.faces import FACE


def test_s3_round_trip(tmp_path, bucket, aws_env, caplog):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "actor"
    res = generate_actor_dataset(
        FACE, "mythical", out, storage=f"s3://{bucket}/actors/a1", width=128, batch_size=6
    )
    assert (res.generated, res.target) == (17, 17) and not res.upload_failures
    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    images = sorted(k for k in keys if k.startswith("actors/a1/images/"))
    assert len(images) == 17
    assert {f"actors/a1/payloads/request_payload_{i:02d}.json" for i in range(1, 18)} <= keys
    assert {"actors/a1/training_grid.jpg", "actors/a1/portrait.jpg", "actors/a1/result.json"} <= keys
    assert res.image_locations == [f"s3://{bucket}/{k}" for k in images]
    local = res.images[9]
    body = s3.get_object(Bucket=bucket, Key=f"actors/a1/images/{local.name}")
    assert body["ContentType"] == "image/jpeg" and body["Body"].read() == local.read_bytes()
    remote = json.loads(s3.get_object(Bucket=bucket, Key="actors/a1/result.json")["Body"].read())
    assert remote["generated"] == 17 and remote["image_locations"] == res.image_locations
    logged = " ".join(r.getMessage() for r in caplog.records)  # botocore's DEBUG included
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in logged
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("cinerl"))
    assert aws_env["AWS_ACCESS_KEY_ID"] not in ours


class Flaky:
    """A real S3 client whose upload_file fails a set number of times per key."""

    def __init__(self, client, fail_times: dict):
        self.client, self.fail_times, self.calls = client, dict(fail_times), []

    def head_bucket(self, **kw):
        return self.client.head_bucket(**kw)

    def upload_file(self, path, bucket, key, ExtraArgs=None):
        self.calls.append(key)
        for name, left in self.fail_times.items():
            if key.endswith(name) and left > 0:
                self.fail_times[name] = left - 1
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return self.client.upload_file(path, bucket, key, ExtraArgs=ExtraArgs)


def test_retry_with_backoff_then_report_and_keep_local(tmp_path, bucket):
    flaky = Flaky(boto3.client("s3"), {"_02_eye_contact_closeup.jpg": 2, "_05_parking_garage.jpg": 99})
    sleeps = []
    store = S3Storage(bucket, "p", client=flaky, attempts=4, backoff_s=0.5, sleep=sleeps.append)
    res = generate_actor_dataset(FACE, "creature", tmp_path / "a", storage=store, width=128)
    assert res.generated == 17
    assert sleeps[:2] == [0.5, 1.0]  # image 2: two failures, then success
    assert sleeps[2:] == [0.5, 1.0, 2.0]  # image 5: every attempt fails
    assert flaky.calls.count("p/images/training_image_02_eye_contact_closeup.jpg") == 3
    assert [f["key"] for f in res.upload_failures] == ["images/training_image_05_parking_garage.jpg"]
    assert "after 4 attempts" in res.upload_failures[0]["error"]
    assert res.locations[2] == f"s3://{bucket}/p/images/training_image_02_eye_contact_closeup.jpg"
    assert res.locations[5] == str(res.images[5].resolve()) and res.images[5].exists()
    summary = json.loads((tmp_path / "a" / "result.json").read_text())
    assert summary["upload_failures"][0]["file"] == str(res.images[5])


def test_storage_specs_and_preflight(tmp_path, bucket, aws_env):
    assert isinstance(parse_storage(None, tmp_path), LocalStorage)
    s = parse_storage(f"s3://{bucket}/x/y/", tmp_path)
    assert (s.bucket, s.prefix, s.url("a.jpg")) == (bucket, "x/y", f"s3://{bucket}/x/y/a.jpg")
    s.check()
    for bad in ("gs://b/p", "s3://UPPER/p", "s3://a/p", "/some/folder"):
        with pytest.raises(UserError, match="--storage"):
            parse_storage(bad, tmp_path)
    with pytest.raises(UserError, match="'no-such-bucket-here' does not exist"):
        parse_storage("s3://no-such-bucket-here/p", tmp_path).check()
    with pytest.raises(UploadFailed):
        S3Storage(
            bucket, "", client=Flaky(boto3.client("s3"), {"f.txt": 9}), attempts=2, sleep=lambda s: None
        ).put((tmp_path / "f.txt"), "f.txt")
