"""`cinerl batch` refuses a bad prompts file in one line (exit 2) before any folder is made."""

import pytest

from cinerl.core.errors import UserError
from cinerl.runtime.batch import film_name, read_prompts
from tests.e2e.helpers import CINERL, run
from tests.faults.runs import one_line_error


def test_a_prompts_file_without_prompts_is_one_line_and_makes_no_folder(tmp_path):
    listing = tmp_path / "prompts.txt"
    listing.write_text("# only a comment\n\n", encoding="utf-8")
    proc = run([CINERL, "batch", str(listing), "--out", str(tmp_path / "out")])
    assert "holds no prompt" in one_line_error(proc)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content, words",
    [(None, "does not exist"), (b"\xff\xfe", "is not UTF-8"), ("a fox\n\x00\n", "prompts.txt:2")],
)
def test_read_prompts_names_what_is_wrong(tmp_path, content, words):
    listing = tmp_path / "prompts.txt"
    if isinstance(content, str):
        listing.write_text(content, encoding="utf-8")
    elif content is not None:
        listing.write_bytes(content)
    with pytest.raises(UserError, match=words):
        read_prompts(listing)


def test_prompts_are_read_one_a_line_and_each_film_gets_its_own_folder(tmp_path):
    listing = tmp_path / "prompts.txt"
    listing.write_text("# films\nA fox at dawn.\n\n  A baker at night.  \n", encoding="utf-8")
    prompts = read_prompts(listing)
    assert prompts == ["A fox at dawn.", "A baker at night."]
    assert [film_name(i, p) for i, p in enumerate(prompts)] == ["01_a_fox_at_dawn", "02_a_baker_at_night"]
