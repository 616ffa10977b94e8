"""`cinerl actors`: bad input ends with one message and exit code 2, writing nothing; a real run
through the installed command stores the set in S3 with credentials from the environment."""

import json
import subprocess

from PIL import Image
from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from tests.e2e.helpers import CINERL, env
from tests.fixtures.faces import FACE
from tests.training.character.test_portrait import write_bomb_png


def _bad_inputs(d):
    (d / "notes.jpg").write_text("hello")
    Image.new("RGB", (1, 1)).save(d / "dot.png")
    write_bomb_png(d / "bomb.png")
    return [
        ([str(d / "nope.jpg"), "--type", "human"], "does not exist"),
        ([str(d / "notes.jpg"), "--type", "human"], "is not an image"),
        ([str(d / "dot.png"), "--type", "human"], "1x1 pixels"),
        ([str(d / "bomb.png"), "--type", "human"], "refused before decoding"),
        ([str(FACE), "--type", "alien"], "unknown actor type 'alien'"),
        ([str(FACE), "--type", "human", "--sex", "other"], "unknown sex 'other'"),
        ([str(FACE), "--type", "human", "--batch-size", "0"], "--batch-size must be between"),
        ([str(FACE), "--type", "human", "--storage", "ftp://x/y"], "--storage must look like"),
        ([str(FACE), "--type", "human", "--backend", "diffusers"], "needs a local pipeline folder"),
    ]


def test_bad_input_exit_code_2_and_nothing_written(tmp_path):
    runner = CliRunner()
    for args, message in _bad_inputs(tmp_path):
        out = tmp_path / "out"
        res = runner.invoke(app, ["actors", *args, "--out", str(out)])
        assert res.exit_code == 2, (args, res.output)
        text = " ".join(res.output.split())
        assert message in text and "Traceback" not in text, (args, text)
        assert not out.exists(), args


def test_command_uploads_to_s3(tmp_path, bucket, aws_env):
    out = tmp_path / "set"
    res = subprocess.run(
        [
            CINERL,
            "actors",
            str(FACE),
            "--type",
            "human",
            "--sex",
            "male",
            "--out",
            str(out),
            "--width",
            "128",
            "--batch-size",
            "8",
            "--storage",
            f"s3://{bucket}/team/actor-7",
        ],
        capture_output=True,
        text=True,
        env={**env(), **aws_env},
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 18 and lines[-1].startswith("generated 17/17 images")
    assert all(line.startswith(f"s3://{bucket}/team/actor-7/images/training_image_") for line in lines[:17])
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in res.stdout + res.stderr
    summary = json.loads((out / "result.json").read_text())
    assert summary["image_locations"] == lines[:17] and summary["descriptor"] == "man"
