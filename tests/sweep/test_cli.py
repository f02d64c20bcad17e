from __future__ import annotations

import pytest

from sweep.cli import main


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "prepare" in capsys.readouterr().out


def test_prepare_then_reuse(tmp_path, capsys):
    argv = ["prepare", "synthetic", "--num-rows", "500", "--vocab-sizes", "10,50", "--out", str(tmp_path / "d")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "rows 500" in out and "C2" in out
    assert main(argv) == 0
    assert (tmp_path / "d" / "manifest.json").is_file()


def test_bad_value_is_a_clear_error(tmp_path, capsys):
    assert main(["prepare", "synthetic", "--num-rows", "3", "--out", str(tmp_path / "d")]) == 2
    assert "collide: error: num_rows must be an int >= 10, got 3" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["prepare", "nosuch"], ["prepare", "synthetic", "--vocab-sizes", "a,b"]])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_datasets_lists_sources_and_options(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "synthetic:" in out and "--zipf-exponent" in out
