"""Property tests of what a user can type: any prompt, seed, size or plan file given to the real
CLI ends in exit 0, or exit 2 with exactly one error line, never a traceback, and a refused run
leaves nothing written (issue 12)."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cinerl.core.settings import MAX_SEED
from cinerl.planning.offline import plan_story
from tests.faults.conftest import PROMPT, assert_one_line_error, cli

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_SHOOT = ["--backend", "no-such-backend"]  # every check passes or fails before a frame is made


def exits_cleanly(res) -> None:
    out = (res.stdout or "") + (res.stderr or "")
    assert "Traceback" not in out and not isinstance(res.exception, (AssertionError, TypeError))
    if res.exit_code != 0:
        assert_one_line_error(res)


# any text: control characters, lone surrogates (argv bytes that are not UTF-8), very long
prompts = st.one_of(
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=200),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3).map(
        lambda s: "a knight " + s
    ),
    st.tuples(st.text(min_size=1, max_size=20), st.sampled_from([1_000, 2_500])).map(lambda t: t[0] * t[1]),
    st.just(PROMPT + "\x00\x1b[31m"),
)


@FAST
@given(prompt=prompts)
def test_any_prompt(prompt):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "plan"
        res = cli("plan", prompt, "--out", out, "--scenes", "1")
        exits_cleanly(res)
        if res.exit_code == 2:
            assert not out.exists()


seeds = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([-1, 0, MAX_SEED, MAX_SEED + 1, 2**63, 2**70]),
)  # text that is no integer at all is click's usage error (several lines): not covered here


@FAST
@given(seed=seeds)
def test_any_seed(seed):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "plan"
        res = cli("plan", PROMPT, "--out", out, "--scenes", "1", "--seed", str(seed))
        exits_cleanly(res)
        valid = 0 <= seed <= MAX_SEED
        assert (res.exit_code == 0) == valid, (seed, res.stderr)
        if not valid:
            assert not out.exists() and "seed" in (res.stderr or "")


sizes = st.one_of(
    st.tuples(st.integers(-10, 10_000), st.integers(-10, 10_000)).map(lambda t: f"{t[0]}x{t[1]}"),
    st.text(max_size=12).filter(lambda t: not t.startswith("-")),  # "-x" would be an option
)


@FAST
@given(size=sizes, scenes=st.integers(-5, 40))
def test_any_size_and_scene_count(size, scenes):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        res = cli("make", PROMPT, "--out", out, "--size", size, "--scenes", str(scenes), *NO_SHOOT)
        exits_cleanly(res)
        assert res.exit_code == 2 and not out.exists()  # refused: by a check, or by the backend


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
GOOD = plan_story(PROMPT, seed=0, scenes=1).model_dump(mode="json")
PATHS = [
    ("title",),
    ("characters", 0, "id"),
    ("characters", 0, "age"),
    ("characters", 0, "wardrobe"),
    ("locations", 0, "id"),
    ("locations", 0, "palette"),
    ("scenes", 0, "character_ids"),
    ("scenes", 0, "location_id"),
    ("scenes", 0, "duration_s"),
    ("scenes",),
]
hostile_ids = st.sampled_from(["x/../../TRAVERSED", "../a", "/etc/x", "a\\b", "con", "A B", "é", "[/]"])


def put(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


plans = st.one_of(
    json_values,
    st.tuples(st.sampled_from(PATHS), st.one_of(json_values, hostile_ids)).map(
        lambda pv: put(json.loads(json.dumps(GOOD)), *pv)
    ),
)


@FAST
@given(plan=plans)
def test_any_plan_file(plan):
    with tempfile.TemporaryDirectory() as d:
        plan_dir, out = Path(d) / "plan", Path(d) / "out"
        plan_dir.mkdir()
        (plan_dir / "creative_document.json").write_text(json.dumps(plan))
        (plan_dir / "scene_prompts.json").write_text("[]")
        res = cli("make", "--from-plan", plan_dir, "--out", out, *NO_SHOOT)
        exits_cleanly(res)
        assert res.exit_code == 2 and not out.exists()
        assert not list(Path(d).rglob("TRAVERSED*"))
