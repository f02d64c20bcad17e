from __future__ import annotations

import pytest

from sweep.cli import main


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "prepare" in capsys.readouterr().out


def test_sweep_help_lists_every_shipped_preset(capsys):
    from sweep.config import PRESETS

    assert main(["sweep", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps at hyphens
    assert all(name in text for name in PRESETS)


def test_prepare_then_reuse(tmp_path, capsys):
    argv = ["prepare", "synthetic", "--num-rows", "500", "--vocab-sizes", "10,50", "--out",
            str(tmp_path / "d")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "rows 500" in out and "C2" in out
    assert main(argv) == 0
    assert (tmp_path / "d" / "manifest.json").is_file()


def test_bad_value_is_a_clear_error(tmp_path, capsys):
    assert main(["prepare", "synthetic", "--num-rows", "3", "--out", str(tmp_path / "d")]) == 2
    assert "collide: error: num_rows must be an int >= 10, got 3" in capsys.readouterr().err


def test_test_windows_on_data_without_time_order_fail_before_ray(tmp_path, capsys, monkeypatch):
    import ray

    monkeypatch.chdir(tmp_path)
    code = main(["sweep", "--preset", "smoke", "--set", "test_windows=4",
                 "--set", "data.params={num_rows: 2000, vocab_sizes: [40, 600], num_dense: 1}",
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert code == 2
    assert ("4 test windows need rows in time order, but this data has a 'random' split and no "
            "per-row time"
            in capsys.readouterr().err)
    assert not ray.is_initialized()


@pytest.mark.parametrize("argv",
                         [["prepare", "nosuch"], ["prepare", "synthetic", "--vocab-sizes", "a,b"]])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_datasets_lists_sources_and_options(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "synthetic:" in out and "--zipf-exponent" in out
    assert "A list option takes comma-separated values (--dense a,b,c)" in out
    assert "--dense STR,..." in out and "--format STR" in out
    for key in ("label:", "label_threshold:", "label_equals:", "label_in:", "dense:",
                "dense_transform:",
                "categorical:", "multi_valued:", "separator:"):
        assert f"    {key}" in out, key


def test_resume_refuses_options_that_would_have_no_effect(capsys):
    assert main(["sweep", "--resume", "--name", "x", "--epochs", "5", "--strategies", "hash"]) == 2
    err = capsys.readouterr().err
    assert ("--resume continues the sweep as it was configured; --epochs, --strategies would have "
            "no effect") in err
    assert main(["sweep", "--resume", "0123abcd", "--preset", "smoke"]) == 2
    assert "--preset would have no effect" in capsys.readouterr().err


def test_num_samples_without_optuna_is_refused(capsys):
    assert main(["sweep", "--preset", "smoke", "--num-samples", "9"]) == 2
    assert "num_samples applies to search 'optuna' only" in capsys.readouterr().err


def test_a_compression_that_leaves_qr_one_row_fails_before_ray_naming_the_feature(
    tmp_path, capsys, monkeypatch):
    import ray

    monkeypatch.chdir(tmp_path)
    code = main(["sweep", "--preset", "smoke", "--strategies", "hash,qr", "--compressions", "4,64",
                 "--set", "data.params={num_rows: 2000, vocab_sizes: [40, 600], num_dense: 1}",
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert ("strategy qr at compression 64 gives feature C1 (train vocab 40) 1 row(s), which it "
            "refuses") in err
    assert "model.full_threshold >= 40" in err
    assert not ray.is_initialized()


def test_errors_are_one_line_with_a_documented_code(tmp_path, capsys):
    from mlflow.exceptions import MlflowException

    from sweep.cli.entry import _handled

    assert _handled(MlflowException("the store said no"))  # exit 2, not a traceback
    assert _handled(OSError(28, "No space left on device", "/data/x.npy"))
    assert not _handled(KeyError("a bug"))  # exit 4 with the traceback
    assert main(["pareto", "--experiment", "x", "--tracking-uri",
                 f"sqlite:///{tmp_path / 'no' / 'mlflow.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("collide: error: MLflow tracking URI sqlite:///")


@pytest.mark.parametrize("error", [KeyError("not a user error"), ValueError("a bug deep in numpy"),
                                   TypeError("a bug")])
def test_an_internal_error_exits_4_with_its_traceback(tmp_path, capsys, monkeypatch, error):
    import sweep.cli.entry as cli

    def broken(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "datasets", broken)
    assert main(["datasets"]) == 4
    err = capsys.readouterr().err
    assert "Traceback" in err and f"collide: internal error: {type(error).__name__}" in err


@pytest.mark.parametrize("how", ["from", "during"])
def test_an_error_raised_from_a_signal_is_an_interruption(capsys, monkeypatch, how):
    """Ray turns the handler's SweepInterrupted into a SystemError when the signal lands while
    `ray.get` unpacks a result: that is the user's Ctrl-C (exit 130), not a bug (exit 4)."""
    import sweep.cli.entry as cli
    from sweep.tune.interrupt import SweepInterrupted

    def interrupted(args):
        try:
            raise SweepInterrupted("SIGTERM")
        except SweepInterrupted as exc:
            if how == "from":
                raise SystemError("returned a result with an exception set") from exc
            raise SystemError("returned a result with an exception set")  # noqa: B904

    monkeypatch.setitem(cli.COMMANDS, "datasets", interrupted)
    assert main(["datasets"]) == 143
    err = capsys.readouterr().err
    assert "interrupted by SIGTERM" in err
    assert "internal error" not in err and "Traceback" not in err


def test_a_user_error_exits_2_in_one_line(capsys, monkeypatch):
    import sweep.cli.entry as cli
    from sweep.errors import DataError

    def refused(args):
        raise DataError("data.csv:3: column 'd' must be a finite number, got 'inf'")

    monkeypatch.setitem(cli.COMMANDS, "datasets", refused)
    assert main(["datasets"]) == 2
    expected = "collide: error: data.csv:3: column 'd' must be a finite number, got 'inf'\n"
    assert capsys.readouterr().err == expected


def test_train_shows_each_epoch_once(tmp_path, capsys):
    data = tmp_path / "d"
    assert main(["prepare", "synthetic", "--num-rows", "2000", "--vocab-sizes", "10,50", "--out",
                 str(data)]) == 0
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--strategy", "hash", "--epochs", "2", "--out",
                 str(tmp_path / "t")]) == 0
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert [line.split(":")[0] for line in lines if "epoch 1" in line or "epoch 2" in line] == [
        "epoch 1", "epoch 2"]
    # the same model with its tables at each precision, and how to ask for fewer
    stored = [line.split()[0] for line in lines if line.split()[:1] in (["fp32"], ["fp16"],
                                                                        ["int8"], ["int4"])]
    assert stored == ["fp32", "fp16", "int8", "int4"]
    assert main(["train", "--data", str(data), "--strategy", "hash", "--epochs", "1",
                 "--precisions", "fp32", "--out", str(tmp_path / "t32")]) == 0
    assert "tables in" not in capsys.readouterr().out


@pytest.mark.parametrize("name", ["pareto.csv", "pareto-trials.csv"])
def test_a_users_file_in_the_results_dir_is_refused_before_anything_runs(tmp_path, capsys, name):
    results = tmp_path / "results"
    results.mkdir()
    (results / name).write_text("mine")
    assert main(["sweep", "--preset", "smoke", "--results-dir", str(results),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 2
    assert name in capsys.readouterr().err
    assert (results / name).read_text() == "mine"  # and no trial ran: the check comes before Ray


def test_a_ctrl_c_while_the_commands_load_exits_130_in_one_line():
    """The console script imports torch before it holds any signal: a KeyboardInterrupt there
    (here raised exactly where torch's import starts) is an interruption, not a traceback."""
    import subprocess
    import sys

    program = (
        "import sys\n"
        "class CtrlC:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        "from sweep.cli import run\n"
        "run(['datasets'])\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130
    assert done.stderr == ("collide: interrupted by SIGINT while starting; nothing was run "
                           "(exit 130)\n")
