"""Table helpers: mean ± sample std cells and markdown tables."""
import pytest

from recbole_neggen.experiments.report import markdown_table, mean_std, write_csv


@pytest.mark.parametrize("values, text", [
    ([0.1, 0.2, 0.3], "0.2000 ± 0.1000"),  # sample std (ddof = 1)
    ([0.25], "0.2500"),
    ([], "–"),
    ([1.0, float("nan"), 3.0], "2.0000 ± 1.4142"),
])
def test_mean_std(values, text):
    assert mean_std(values) == text


def test_markdown_table_escapes_pipes_and_blanks_none():
    assert markdown_table(["a", "b"], [[1, None], ["x|y", 2]]) == "| a | b |\n|---|---|\n| 1 |  |\n| x\\|y | 2 |\n"


def test_write_csv_leaves_missing_values_empty(tmp_path):
    write_csv(tmp_path / "t.csv", ["a", "b"], [{"a": 1}, {"a": None, "b": 2.5}])
    assert (tmp_path / "t.csv").read_text().splitlines() == ["a,b", "1,", ",2.5"]
