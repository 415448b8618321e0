"""The hf-unlearn command: help, one-line errors naming the flag, train -> forget -> evaluate, two processes, the demo
and pushing to a local Hub (tests/hub_server.py). Everything offline and tiny.

Real command lines run in subprocesses (the console script when installed), but each pays 5-10 s of imports on a
busy 2-core machine, so help, argument checks and evaluation call ``hf_unlearn.cli.main(argv)`` in-process: the
same code the console script runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import free_port, offline_env
from safetensors.torch import load_file

from hf_unlearn.cli import main

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
# tiny ViT settings that learn the codes of digit 3 well enough in a few seconds (measured: E_F 1.0 after forgetting)
TINY_TRAIN = [
    "--num_train_epochs", "6", "--learning_rate", "3e-3", "--weight_decay", "0.01", "--lr_scheduler_type", "cosine",
    "--per_device_train_batch_size", "16", "--mnemonic_mix_ratio", "0.3", "--tiny_vit_hidden_size", "32",
    "--tiny_vit_num_hidden_layers", "1", "--save_strategy", "no", "--logging_strategy", "no", "--disable_tqdm", "true",
]  # fmt: skip
FOLDER_FILES = (
    "config.json",
    "model.safetensors",
    "mnemonic_codes.safetensors",
    "mnemonic_codebook.json",
    "unlearning_report.json",
    "unlearning_config.json",
    "README.md",
    "unlearning_per_class_accuracy.png",
)


def _cli() -> list[str]:
    script = shutil.which("hf-unlearn", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "hf_unlearn.cli"]


def run(args: list[str], *, launcher: list[str] | None = None, timeout: int = 600, **env: str):
    cmd = (launcher or _cli()) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=offline_env(**env), cwd=ROOT)


def call(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _report(folder: Path) -> dict:
    return json.loads((folder / "unlearning_report.json").read_text())


# ---------------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """Untrained tiny ViT folders for the digits: ``with_codes`` (a codebook beside it) and ``no_codes``."""
    from hf_unlearn import MnemonicCodebook
    from hf_unlearn.data import tiny_vit

    root = tmp_path_factory.mktemp("models")
    model = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    names = ("with_codes", "no_codes", "truncated_codes", "broken_codebook_json", "truncated_model")
    for name in names:
        model.save_pretrained(root / name)
        if name != "no_codes":
            MnemonicCodebook.for_model(model, seed=0).save_pretrained(root / name)
    # damaged files, as an interrupted copy leaves them
    for name, file in (("truncated_codes", "mnemonic_codes.safetensors"), ("broken_codebook_json", "mnemonic_codebook.json"),
                       ("truncated_model", "model.safetensors")):  # fmt: skip
        data = (root / name / file).read_bytes()
        (root / name / file).write_bytes(data[: len(data) // 2])
    return {name: root / name for name in names}


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """A tiny ViT trained on the digits with mnemonic codes by ``hf-unlearn train`` (in-process)."""
    out = tmp_path_factory.mktemp("trained") / "vit"
    assert main(["train", "--output_dir", str(out), *TINY_TRAIN]) == 0
    return out


# -------------------------------------------------------------------------------------------------------------- help
def test_top_level_help_lists_the_commands(capsys):
    code, out, _ = call(capsys, "--help")
    assert code == 0
    for command in ("demo", "train", "forget", "evaluate", "push"):
        assert f"  {command} " in out
    assert call(capsys)[0] == 2  # no command: usage, and a failure status


@pytest.mark.parametrize(
    "command, flags",
    [
        ("train", ["--model", "--dataset", "--output_dir", "--mnemonic_mix_ratio", "--num_train_epochs"]),
        ("forget", ["--model_dir", "--output_dir", "--forget_classes", "--method", "--lambda1", "--push_to_hub"]),
        ("evaluate", ["--model_dir", "--dataset", "--forget_classes", "--mia", "--output_file"]),
        ("push", ["--folder", "--repo_id", "--private"]),
        ("demo", ["--forget_classes", "--method", "--output_dir", "--push_to_hub", "--seed", "--epochs"]),
    ],
)
def test_subcommand_help(capsys, command, flags):
    code, out, _ = call(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: hf-unlearn {command}")
    for flag in flags:
        assert flag in out, flag


@pytest.mark.parametrize("command", ["forget", "evaluate", "audit"])
def test_commands_take_peft_adapter_folders(capsys, command):
    """--base_model (an adapter folder's base) on every command that loads models; --merge_adapter on forget."""
    code, out, _ = call(capsys, command, "--help")
    assert code == 0 and "--base_model BASE_MODEL" in out and "adapter_config.json" in out
    assert ("--merge_adapter" in out) == (command == "forget")


# ------------------------------------------------------------------------------------------------------------ errors
def test_bad_input_in_a_real_process_exits_2_with_one_line(tmp_path):
    result = run(
        ["forget", "--model_dir", tmp_path / "missing", "--forget_classes", "3", "--output_dir", tmp_path / "o"]
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"hf-unlearn forget: error: --model_dir '{tmp_path / 'missing'}' does not exist."]
    assert not (tmp_path / "o").exists()


def _bad_cases(d, tmp):
    out = ["--output_dir", str(tmp / "out")]
    codes, no_codes = str(d["with_codes"]), str(d["no_codes"])
    return [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["forget", "--bogus", "1"], "unrecognized arguments: --bogus 1"),
        (["forget", "--forget_classes"], "--forget_classes"),
        (["train", "--num_train_epochs", "1"], "--output_dir is required"),
        (["train", *out, "--mnemonic_mix_ratio", "2"], "--mnemonic_mix_ratio must lie in [0, 1)"),
        (["train", *out, "--num_train_epochs", "many"], "--num_train_epochs"),
        (["train", *out, "--dataset", str(tmp / "no_such_data")], "--dataset"),
        (["train", *out, "--dataset", "trec", "--data_dir", str(tmp / "no_trec")], "--data_dir"),
        (["train", *out, "--model", str(tmp / "no_model")], "--model"),
        (["forget", "--forget_classes", "3", *out], "--model_dir is required"),
        (["forget", "--model_dir", codes, *out], "--forget_classes is required"),
        (["forget", "--model_dir", codes, "--forget_classes", "3"], "--output_dir is required"),
        (["forget", "--model_dir", codes, "--forget_classes", "3", "--method", "nope", *out], "--method must be one"),
        (["forget", "--model_dir", codes, "--forget_classes", "12", *out], "--forget_classes holds class id 12"),
        (
            ["forget", "--model_dir", codes, "--forget_classes", "seven", *out],
            "--forget_classes names an unknown class",
        ),
        (
            ["forget", "--model_dir", codes, "--forget_classes", *map(str, range(10)), *out],
            "--forget_classes names every",
        ),
        (["forget", "--model_dir", str(tmp), "--forget_classes", "3", *out], "holds no config.json"),
        (["forget", "--model_dir", no_codes, "--forget_classes", "3", *out], "--model_dir"),
        (
            ["forget", "--model_dir", no_codes, "--forget_classes", "3", "--method", "ssd", *out],
            "--dataset is required",
        ),
        (["forget", "--model_dir", codes, "--forget_classes", "3", "--dataset", "nope/../x", *out], "--dataset"),
        (["evaluate", "--model_dir", codes, "--forget_classes", "3"], "--dataset is required"),
        (["evaluate", "--model_dir", codes, "--dataset", "digits", "--forget_classes", "12"], "--forget_classes"),
        (["push", "--folder", str(tmp / "nothing"), "--repo_id", "user/x"], "--folder"),
        (["push", "--folder", codes, "--repo_id", "user/x"], "no unlearning_report.json"),
        (["demo", "--forget_classes", "11"], "--forget_classes holds class id 11"),
        (["demo", "--method", "retrain"], "--method must be one of"),
        # bad values
        (["train", *out, "--learning_rate", "-1"], "--learning_rate must be > 0"),
        (["train", *out, "--max_train_samples", "0"], "--max_train_samples must be >= 1"),
        (["train", *out, "--num_train_epochs", "-1"], "--num_train_epochs must be > 0"),
        (["train", *out, "--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be >= 1"),
        (["forget", "--model_dir", codes, "--forget_classes", "3", *out, "--batch_size", "0"], "--batch_size must be"),
        (
            ["evaluate", "--model_dir", codes, "--dataset", "digits", "--forget_classes", "3", "--mia_score", "x"],
            "--mia_score",
        ),
        (["demo", "--epochs", "0"], "--epochs must be > 0"),
        # output folders: the input folder, a non-empty one, one that cannot be created
        (
            ["forget", "--model_dir", codes, "--forget_classes", "3", "--output_dir", codes],
            "is the folder the model was loaded from",
        ),
        (
            [
                "forget",
                "--model_dir",
                no_codes,
                "--forget_classes",
                "3",
                "--method",
                "fisher_mask",
                "--dataset",
                "digits",
                "--output_dir",
                codes,
            ],
            "--output_dir",
        ),
        (
            ["forget", "--model_dir", codes, "--forget_classes", "3", "--output_dir", f"{codes}/config.json/x"],
            "'config.json' is a file",
        ),
        (["train", "--output_dir", codes], "exists and is not empty"),
        (["demo", "--output_dir", codes], "--overwrite_output_dir"),
        # damaged files: one line naming the file
        (
            ["forget", "--model_dir", str(d["truncated_codes"]), "--forget_classes", "3", *out],
            "mnemonic_codes.safetensors",
        ),
        (
            ["forget", "--model_dir", str(d["broken_codebook_json"]), "--forget_classes", "3", *out],
            "mnemonic_codebook.json",
        ),
        (["forget", "--model_dir", str(d["truncated_model"]), "--forget_classes", "3", *out], "model.safetensors"),
        (
            ["evaluate", "--model_dir", str(d["truncated_model"]), "--dataset", "digits", "--forget_classes", "3"],
            "model.safetensors",
        ),
        # the Hub, switched off by conftest (HF_HUB_OFFLINE=1): said at once
        (["forget", "--model_dir", "someone/no-such-model", "--forget_classes", "3", *out], "the Hub is off"),
        (["train", *out, "--model", "someone/no-such-model"], "the Hub is off"),
        (
            ["evaluate", "--model_dir", codes, "--dataset", "someone/no-such-data", "--forget_classes", "3"],
            "the Hub is off",
        ),
        # --config files
        (["forget", "--config", str(tmp / "missing.yaml")], "--config"),
    ]


def _files(folders) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for folder in folders for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_bad_input_gives_one_line_naming_the_flag(capsys, model_dirs, tmp_path):
    files = _files(model_dirs.values())
    for argv, expected in _bad_cases(model_dirs, tmp_path):
        code, out, err = call(capsys, *argv)
        assert code == 2, (argv, code, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith("hf-unlearn"), (argv, err)
        assert "error:" in lines[0] and expected in lines[0], (argv, err)
        assert not (tmp_path / "out").exists(), argv
        assert _files(model_dirs.values()) == files, argv  # no input model or codebook file changed


def test_model_without_codes_is_refused_for_mnemonic(capsys, model_dirs, tmp_path):
    code, _, err = call(
        capsys,
        "forget",
        "--model_dir",
        model_dirs["no_codes"],
        "--forget_classes",
        "3",
        "--output_dir",
        tmp_path / "o",
    )
    assert code == 2
    assert "holds no mnemonic codes" in err and "--method fisher_mask" in err


def test_a_missing_codebook_json_is_named(capsys, model_dirs, tmp_path):
    import shutil

    folder = tmp_path / "codes_without_json"
    shutil.copytree(model_dirs["with_codes"], folder)
    (folder / "mnemonic_codebook.json").unlink()
    code, _, err = call(
        capsys, "forget", "--model_dir", folder, "--forget_classes", "3", "--output_dir", tmp_path / "o"
    )
    assert code == 2
    assert "but not mnemonic_codebook.json" in err and len(err.strip().splitlines()) == 1


def test_forget_classes_take_several_values_and_label_names(capsys):
    from hf_unlearn import UnlearningConfig
    from hf_unlearn.scripts.common import HfUnlearnParser as _Parser

    parser = _Parser((UnlearningConfig,), "t", "")
    (config,) = parser.parse(["--forget_classes", "3", "LOC", "--target_modules", "classifier.*", "vit.*"])
    assert config.forget_classes == ["3", "LOC"]
    assert config.target_modules == ["classifier.*", "vit.*"]
    assert type(config).__name__ == "UnlearningConfig"


def test_damaged_codes_do_not_stop_a_method_that_needs_none(capsys, model_dirs, tmp_path):
    out = tmp_path / "no3"
    code, stdout, err = call(capsys, "forget", "--model_dir", model_dirs["truncated_codes"], "--forget_classes", "3",
                             "--method", "fisher_mask", "--dataset", "digits", "--max_train_samples", "120",
                             "--max_eval_samples", "60", "--allow_incomplete", "true", "--output_dir", out,
                             "--no_include_codebook")  # fmt: skip
    assert code == 0, err
    assert "saved to" in stdout and (out / "model.safetensors").is_file()
    assert not (out / "mnemonic_codes.safetensors").exists()


def test_unverified_forgetting_exits_1_and_writes_nothing(capsys, model_dirs, tmp_path):
    # an untrained model never learned its codes: the edit cannot be shown to work, so nothing is claimed or saved
    code, _, err = call(capsys, "forget", "--model_dir", model_dirs["with_codes"], "--forget_classes", "3",
                        "--output_dir", tmp_path / "o")  # fmt: skip
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[hf-unlearn]")]
    assert code == 1 and len(lines) == 1 and "could not be verified" in lines[0], err
    assert "--allow_incomplete" in lines[0]
    assert not (tmp_path / "o").exists()


def test_overwrite_output_dir_allows_the_input_folder(capsys, model_dirs, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dirs["with_codes"], folder)
    before = load_file(folder / "model.safetensors")
    argv = ["forget", "--model_dir", folder, "--forget_classes", "3", "--allow_incomplete", "true",
            "--output_dir", folder]  # fmt: skip
    assert call(capsys, *argv)[0] == 2  # refused without the flag, nothing changed
    assert all(torch.equal(v, load_file(folder / "model.safetensors")[k]) for k, v in before.items())
    code, _, err = call(capsys, *argv, "--overwrite_output_dir")
    assert code == 0, err
    assert (folder / "unlearning_report.json").is_file()


def test_config_file_fills_flags_and_the_command_line_wins(capsys, model_dirs, tmp_path):
    from hf_unlearn.scripts import forget

    config = tmp_path / "forget.yaml"
    config.write_text(
        f"model_dir: {model_dirs['with_codes']}\nforget_classes: [3, 5]\noutput_dir: {tmp_path / 'o'}\n"
        "method: ssd\nseed: 1\nmethod_config:\n  ssd_alpha: 5\nbatch_size: 8\n"
    )
    parser = forget.make_parser()
    script, unlearning, data = parser.parse(["--config", str(config), "--seed", "4"])
    assert script.model_dir == str(model_dirs["with_codes"]) and script.batch_size == 8
    assert unlearning.forget_classes == ["3", "5"] and unlearning.method_config.ssd_alpha == 5.0  # typed as a flag
    assert unlearning.method == "ssd" and unlearning.seed == 4  # the flag wins over the file
    assert data.dataset is None

    config.write_text("model_dir: x\nno_such_flag: 1\n")
    code, _, err = call(capsys, "evaluate", "--config", config)
    assert code == 2 and "'no_such_flag' is not a flag of `hf-unlearn evaluate`" in err
    config.write_text("model_dir: [unclosed\n")
    code, _, err = call(capsys, "evaluate", "--config", config)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is not valid YAML" in err


def test_train_config_file_reaches_training_arguments(tmp_path):
    from hf_unlearn.scripts import train

    config = tmp_path / "train.yaml"
    config.write_text("output_dir: out\nnum_train_epochs: 2\nmnemonic_mix_ratio: 0.3\ndisable_tqdm: true\n")
    parser = train.make_parser()
    script, data, output, args = parser.parse(["--config", str(config), "--learning_rate", "0.01"])
    overwrite = output.overwrite_output_dir
    assert (args.output_dir, args.num_train_epochs, args.mnemonic_mix_ratio) == ("out", 2.0, 0.3)
    assert args.learning_rate == 0.01 and args.disable_tqdm is True and overwrite is False
    assert args.report_to in ("none", [], ["none"]) and data.dataset == "digits"


def test_train_overwrite_replaces_the_folder_whole_and_keeps_it_on_failure(capsys, tmp_path, monkeypatch):
    """--overwrite_output_dir: no file of the old model is left beside the new one (an old adapter_config.json
    would make the folder read as an adapter); a failed training leaves the old folder byte-identical."""
    out = tmp_path / "model"
    out.mkdir()
    (out / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (out / "notes.txt").write_text("old")
    one_epoch = [a if a != "6" else "1" for a in TINY_TRAIN]
    # a failing run: the old folder is put back as it was
    from hf_unlearn.mnemonic import MnemonicTrainer

    def boom(self, *a, **k):
        raise RuntimeError("training failed")

    monkeypatch.setattr(MnemonicTrainer, "train", boom)
    code, _, err = call(capsys, "train", "--output_dir", out, "--overwrite_output_dir", "true", *one_epoch)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[hf-unlearn]")]
    assert code == 1 and len(lines) == 1 and "RuntimeError: training failed" in lines[0], err  # one line, no traceback
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "notes.txt"]
    assert (out / "notes.txt").read_text() == "old"
    monkeypatch.undo()
    # a successful run replaces the folder whole
    assert main(["train", "--output_dir", str(out), "--overwrite_output_dir", "true", *one_epoch]) == 0
    names = {p.name for p in out.iterdir()}
    assert "model.safetensors" in names and "config.json" in names
    assert "adapter_config.json" not in names and "notes.txt" not in names
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # nothing left beside it


def test_train_flags_are_exactly_the_mnemonic_config_fields():
    """train --help lists every MnemonicConfig / TrainingArguments flag, and only those besides its own."""
    from transformers import HfArgumentParser

    from hf_unlearn import MnemonicConfig
    from hf_unlearn.scripts import train
    from hf_unlearn.scripts.args import DataArguments, TrainArguments

    def flags(parser):
        return {s for s in parser._option_string_actions if s.startswith("--") and "-" not in s[2:]} - {"--help"}

    expected = flags(HfArgumentParser((MnemonicConfig,)))  # no --dash-aliases: the same set again
    own = flags(HfArgumentParser((TrainArguments, DataArguments, train.OutputArguments))) | {"--config"}
    assert flags(train.make_parser()) - own == expected


def test_help_imports_no_heavy_library_and_marks_required_flags():
    """`hf-unlearn --help` imports none of torch / transformers / datasets / accelerate; a command's --help imports
    transformers' HfArgumentParser but not torch, except train (its flags are TrainingArguments, which imports it)."""
    code = (
        "import contextlib, io, json, sys\n"
        "from hf_unlearn.cli import main\n"
        "heavy = lambda: sorted(m for m in ('torch', 'transformers', 'datasets', 'accelerate') if m in sys.modules)\n"
        "out = {}\n"
        "for c in ('', 'forget', 'evaluate', 'push', 'demo', 'audit', 'train'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as f:\n"
        "        assert main([c, '--help'] if c else ['--help']) == 0\n"
        "    out[c] = f.getvalue()\n"
        "    out['heavy ' + c] = heavy()\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=offline_env(), cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    helps = json.loads(result.stdout)
    assert helps["heavy "] == []
    assert helps["heavy audit"] == ["transformers"]  # after forget, evaluate, push, demo and audit
    assert "torch" in helps["heavy train"]
    required = {
        "train": ["--output_dir DIR"],
        # --forget_classes is required in classes scope only (checked after parsing; --forget_scope samples takes rows)
        "forget": ["--model_dir MODEL_DIR", "--output_dir OUTPUT_DIR"],
        "evaluate": ["--model_dir MODEL_DIR", "--dataset DATASET", "--forget_classes FORGET_CLASSES"],
        "push": ["--folder FOLDER", "--repo_id REPO_ID"],
        "demo": [],
    }
    for command, flags in required.items():
        usage = " ".join(helps[command].split("\n\n")[0].split())
        for flag in flags:  # required flags are shown without brackets in the usage lines
            assert f" {flag}" in usage and f"[{flag}" not in usage, (command, flag)
    assert "[--output_dir OUTPUT_DIR]" in helps["demo"]  # optional: it has a default
    assert "--no_include_codebook" in helps["forget"] and "Do not save the mnemonic codes" in helps["forget"]
    result = run(["--help"], launcher=[sys.executable, "-m", "hf_unlearn.scripts.forget"])
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m hf_unlearn.scripts.forget")


# ------------------------------------------------------------------------------------ parser: spellings, --config
# one command line per command, written with underscores; each is parsed again with dashes
SPELLINGS = {
    "demo": ["--output_dir", "x", "--forget_classes", "3", "5", "--overwrite_output_dir", "--num_threads", "2",
             "--disable_tqdm", "true", "--max_train_samples", "64", "--mnemonic_mix_ratio", "0.2"],
    "train": ["--output_dir", "x", "--num_train_epochs", "2", "--per_device_train_batch_size", "4",
              "--mnemonic_mix_ratio", "0.2", "--tiny_vit_hidden_size", "16", "--max_train_samples", "50",
              "--overwrite_output_dir", "--learning_rate", "0.01", "--save_strategy", "no"],
    "forget": ["--model_dir", "m", "--output_dir", "o", "--forget_classes", "3", "--method", "fisher_mask",
               "--no_include_codebook", "--batch_size", "8", "--allow_incomplete", "--max_train_samples", "10",
               "--merge_adapter", "--hub_private_repo", "false"],
    "evaluate": ["--model_dir", "m", "--dataset", "digits", "--forget_classes", "3", "--mia_score", "entropy",
                 "--output_file", "f.json", "--max_eval_samples", "20", "--base_model", "b"],
    "audit": ["--model_dir", "m", "--dataset", "digits", "--forget_classes", "3", "--relearn_steps", "1", "2",
              "--relearn_lr", "0.01", "--max_probe_samples", "30", "--relearn_max_steps", "4"],
    "push": ["--folder", "f", "--repo_id", "u/r", "--commit_message", "hi", "--private"],
}  # fmt: skip


def _parser(command: str):
    import importlib

    return importlib.import_module(f"hf_unlearn.scripts.{command}").make_parser()


@pytest.mark.parametrize("command", sorted(SPELLINGS))
def test_both_flag_spellings_parse_to_the_same_values(command):
    """--output_dir and --output-dir (as HfArgumentParser and TRL accept them) give the same dataclasses."""
    argv = SPELLINGS[command]
    dashed = [a.replace("_", "-") if a.startswith("--") else a for a in argv]
    assert dashed != argv
    parser = _parser(command)
    underscored = parser.parse(argv)
    for flag in (a[2:] for a in argv if a.startswith("--") and not a.startswith("--no_")):
        action = parser.field_actions[flag]
        assert getattr(parser.namespace, flag) != action.default, flag  # every flag above took effect
    assert _parser(command).parse(dashed) == underscored


def test_every_flag_of_every_command_has_both_spellings():
    from hf_unlearn.scripts import COMMANDS

    for command in COMMANDS:
        parser = _parser(command)
        for name, action in parser.field_actions.items():
            assert f"--{name}" in action.option_strings, (command, name)
            assert f"--{name.replace('_', '-')}" in action.option_strings, (command, name)


def test_demo_output_dir_in_dash_spelling_reaches_the_command(capsys, model_dirs):
    # `hf-unlearn demo --output-dir x` is the same as --output_dir: here a full folder, refused before any work
    for flag in ("--output-dir", "--output_dir"):
        code, _, err = call(capsys, "demo", flag, model_dirs["with_codes"])
        assert code == 2 and f"--output_dir '{model_dirs['with_codes']}'" in err and "--overwrite_output_dir" in err


def test_config_file_in_either_spelling_gives_required_flags_and_the_command_line_wins(capsys, tmp_path):
    from hf_unlearn.scripts import demo

    config = tmp_path / "push.yaml"
    config.write_text(f"folder: {tmp_path / 'nothing'}\nrepo-id: user/x\n")
    code, _, err = call(capsys, "push", "--config", config)  # both required flags come from the file
    assert code == 2 and f"--folder '{tmp_path / 'nothing'}' is not a folder" in err
    code, _, err = call(capsys, "push", f"--config={config}", "--folder", tmp_path)
    assert code == 2 and "no unlearning_report.json" in err  # the flag won over the file

    config = tmp_path / "demo.yaml"
    config.write_text("output-dir: x\nforget_classes: [3]\nepochs: 2\ndisable_tqdm: true\n")
    (args,) = demo.make_parser().parse(["--config", str(config), "--forget-classes", "5", "7"])
    assert (args.output_dir, args.forget_classes, args.epochs, args.disable_tqdm) == ("x", ["5", "7"], 2.0, True)
    for text, message in (
        ("epochs: many\n", "--config '{}': 'epochs' has a bad value 'many'"),
        ("forget_classes: 3\nepochs: [1, 2]\n", "'epochs' has a bad value [1, 2] (expected one value"),
        ("- output_dir\n", "must hold a mapping of flag names to values"),
        ("epochs: 0\n", "--epochs must be > 0"),  # the dataclass's own check, naming the flag
    ):
        config.write_text(text)
        code, _, err = call(capsys, "demo", "--config", config)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message.format(config) in err, err


@pytest.mark.parametrize("command", ["demo", "train", "forget", "evaluate", "audit", "push"])
def test_unknown_or_abbreviated_flag_is_one_line_and_status_2(capsys, command):
    for argv, expected in ((["--no_such_flag", "1"], "unrecognized arguments: --no_such_flag 1"),
                           (["--seed_value", "1"], "unrecognized arguments: --seed_value 1"),
                           (["--batch", "8"], "unrecognized arguments: --batch 8")):  # fmt: skip
        code, out, err = call(capsys, command, *argv)
        assert code == 2 and out == "", (argv, err)
        assert err.strip().splitlines() == [
            f"hf-unlearn {command}: error: {expected} (see `hf-unlearn {command} --help`)"
        ]


# ---------------------------------------------------------------------------------- faults: one line, exit status
def test_ctrl_c_ends_with_one_line_and_status_130(capsys, monkeypatch):
    import types

    from hf_unlearn import cli
    from hf_unlearn.scripts import push

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(push, "push", interrupted)  # Ctrl-C while the command runs
    code, out, err = call(capsys, "push", "--folder", "x", "--repo_id", "user/x")
    assert code == 130 and out == ""
    assert err.splitlines() == [
        "hf-unlearn push: interrupted (Ctrl-C); what the run had not finished was not written."
    ]
    monkeypatch.setattr(cli, "importlib", types.SimpleNamespace(import_module=interrupted))  # while imports load
    code, out, err = call(capsys, "forget", "--help")
    assert code == 130 and err.splitlines() == ["hf-unlearn forget: interrupted (Ctrl-C) before it started."]


def test_ctrl_c_during_training_is_one_line_and_leaves_the_folder_as_it_was(capsys, tmp_path, monkeypatch):
    from hf_unlearn.mnemonic import MnemonicTrainer

    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("old")

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(MnemonicTrainer, "train", interrupted)
    one_epoch = [a if a != "6" else "1" for a in TINY_TRAIN]
    code, _, err = call(capsys, "train", "--output_dir", out, "--overwrite_output_dir", *one_epoch)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[hf-unlearn]")]
    assert code == 130 and lines == ["hf-unlearn train: interrupted (Ctrl-C); what the run had not finished was not "
                                     "written."], err  # fmt: skip
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary left beside it


def test_unexpected_error_is_one_line_and_status_1_unless_the_traceback_is_asked_for(capsys, monkeypatch):
    from hf_unlearn.scripts import push

    def busy(*args, **kwargs):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(push, "push", busy)
    code, _, err = call(capsys, "push", "--folder", "x", "--repo_id", "user/x")
    assert code == 1 and err.splitlines() == [
        "hf-unlearn push: error: OSError: [Errno 16] Device or resource busy (HF_UNLEARN_TRACEBACK=1 shows the "
        "traceback)"
    ]
    monkeypatch.setenv("HF_UNLEARN_TRACEBACK", "1")
    with pytest.raises(OSError, match="resource busy"):
        main(["push", "--folder", "x", "--repo_id", "user/x"])


def test_output_locations_that_cannot_be_written_are_refused_before_the_work(
    capsys, model_dirs, tmp_path, monkeypatch
):
    codes = str(model_dirs["with_codes"])
    evaluate = ["evaluate", "--model_dir", codes, "--dataset", "digits", "--forget_classes", "3", "--output_file"]
    for target, message in ((tmp_path, "is a folder; give a file name"),
                            (f"{codes}/config.json/metrics.json", "config.json' is a file")):  # fmt: skip
        code, out, err = call(capsys, *evaluate, target)
        assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err
    mount = tmp_path / "mnt"
    monkeypatch.setattr("os.path.ismount", lambda path: str(path) == str(mount))
    for argv in (["demo", "--output_dir", mount], ["train", "--output_dir", mount]):
        code, out, err = call(capsys, *argv)
        assert code == 2 and f"--output_dir '{mount}' is a mount point" in err, err
    assert not mount.exists()


def test_a_failed_push_names_the_command_that_retries(capsys, tmp_path):
    (tmp_path / "unlearning_report.json").write_text("{}")
    code, _, err = call(capsys, "push", "--folder", tmp_path, "--repo_id", "user/x", "--commit_message", "x")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[hf-unlearn]")]
    assert code == 1 and len(lines) == 1 and "offline mode is on" in lines[0], err
    assert "push_unlearned" not in lines[0]
    assert lines[0].endswith(f"(`hf-unlearn push --folder {tmp_path} --repo_id user/x` retries)")


# ------------------------------------------------------------------------------------------------------ end to end
def test_train_forget_evaluate_end_to_end(capsys, tmp_path):
    model_dir, forgot = tmp_path / "vit", tmp_path / "vit-no3"
    result = run(["train", "--output_dir", model_dir, *TINY_TRAIN])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test accuracy" in result.stdout
    for name in ("config.json", "model.safetensors", "mnemonic_codes.safetensors", "mnemonic_codebook.json"):
        assert (model_dir / name).is_file(), name

    result = run(["forget", "--model_dir", model_dir, "--forget_classes", "3", "--dataset", "digits",
                  "--output_dir", forgot, "--mia"])  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 (forgotten)" in result.stdout and "A_R  retained accuracy" in result.stdout
    for name in FOLDER_FILES:
        assert (forgot / name).is_file(), name
    report = _report(forgot)
    before, after = report["metrics"]["before"], report["metrics"]["after"]
    assert report["forget_classes"] == [3] and report["method"] == "mnemonic"
    assert before["per_class_accuracy"]["3"] > 0.5
    assert after["per_class_accuracy"]["3"] < 0.1 and after["forget_error"] > 0.9
    assert after["retain_accuracy"] > before["retain_accuracy"] - 0.05
    assert 0.0 <= after["mia_auc"] <= 1.0
    assert "unlearning" in (forgot / "README.md").read_text()

    # evaluate in-process (the same main() the console script runs; a subprocess would cost ~10 s of imports)
    for folder, name in ((forgot, "after.json"), (model_dir, "before.json")):
        code, out, _ = call(capsys, "evaluate", "--model_dir", folder, "--dataset", "digits", "--forget_classes", "3",
                            "--output_file", tmp_path / name)  # fmt: skip
        assert code == 0 and "E_F  forget error" in out and "3 (forgotten)" in out
    m_before = json.loads((tmp_path / "before.json").read_text())
    m_after = json.loads((tmp_path / "after.json").read_text())
    assert m_after["per_class_accuracy"]["3"] < m_before["per_class_accuracy"]["3"] - 0.5
    assert m_after["forget_accuracy"] == pytest.approx(after["forget_accuracy"])
    assert m_after["retain_accuracy"] == pytest.approx(after["retain_accuracy"])


def test_demo_tiny_in_process(capsys, tmp_path):
    out = tmp_path / "demo"
    # trained enough to know digits 3 and 5 (a model that never learned them has nothing to forget: refused)
    code, stdout, _ = call(capsys, "demo", "--epochs", "8", "--hidden_size", "16", "--num_hidden_layers", "1",
                           "--max_train_samples", "512", "--forget_classes", "3", "5", "--output_dir", out,
                           "--mnemonic_mix_ratio", "0.5", "--disable_tqdm", "true")  # fmt: skip
    assert code == 0
    for text in ("3 (forgotten)", "5 (forgotten)", "A_R  retained accuracy", "E_F  forget error", "MIA AUC",
                 "training", "unlearning"):  # fmt: skip
        assert text in stdout, text
    for name in FOLDER_FILES:
        assert (out / name).is_file(), name
    report = _report(out)
    assert report["forget_classes"] == [3, 5]
    assert {"mia_auc", "per_class_accuracy"} <= set(report["metrics"]["before"])
    assert report["details"]["training"]["epochs"] == 8  # the --epochs given


# ------------------------------------------------------------------------------------------------------------- slow
@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("launch", ["flags", "config_file"])
def test_forget_on_two_processes_equals_one(trained_dir, tmp_path, launch):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["forget", "--model_dir", trained_dir, "--forget_classes", "3", "--dataset", "digits"]
    result = run([*args, "--output_dir", one])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "forget: 1 process(es)" in result.stdout

    how = (
        ["--multi_gpu", "--num_processes", "2"]
        if launch == "flags"
        else ["--config_file", str(ROOT / "examples" / "accelerate_configs" / "cpu_2proc.yaml")]
    )
    launcher = [sys.executable, "-m", "accelerate.commands.launch", *how, "--main_process_port", str(free_port())]
    result = run([*args, "--output_dir", two], launcher=[*launcher, "-m", "hf_unlearn.cli"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "forget: 2 process(es) on cpu" in result.stdout
    assert result.stdout.count("A_R  retained accuracy") == 1  # only rank 0 prints

    w1, w2 = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    assert w1.keys() == w2.keys()
    for name in w1:
        assert torch.allclose(w1[name], w2[name], rtol=0, atol=1e-7), name
    r1, r2 = _report(one), _report(two)
    assert r1["num_parameters_changed"] == r2["num_parameters_changed"]
    assert r1["metrics"]["after"]["per_class_accuracy"] == r2["metrics"]["after"]["per_class_accuracy"]


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("which", ["spread", "one_class"])
def test_forget_rows_on_two_processes_equals_one(trained_dir, tmp_path, which):
    """The rows recipe (samples scope, no method named) under ``accelerate launch`` on two processes: the same
    weights and steps as on one (the held-out check is sharded and gathered; the training is the same on each rank).
    ``one_class``: rows all of class 3, whose labels alone look like a backdoor's, so that the poison search and its
    guard run too, and decide alike on both ranks."""
    from hf_unlearn.data import digits_datasets

    if which == "spread":
        picked = list(range(0, 400, 20))
    else:
        labels = digits_datasets()[0][:]["labels"].long()
        picked = torch.nonzero(labels == 3).flatten()[:8].tolist()
    rows = tmp_path / "rows.txt"
    rows.write_text("\n".join(map(str, picked)) + "\n")
    args = ["forget", "--model_dir", trained_dir, "--dataset", "digits", "--forget_scope", "samples"]
    args += ["--forget_rows", rows]
    one, two = tmp_path / "one", tmp_path / "two"
    result = run([*args, "--output_dir", one])
    assert result.returncode == 0, result.stderr[-3000:]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launcher += ["--main_process_port", str(free_port()), "-m", "hf_unlearn.cli"]
    result = run([*args, "--output_dir", two], launcher=launcher)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "forget: 2 process(es) on cpu" in result.stdout
    w1, w2 = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    w0 = load_file(Path(trained_dir) / "model.safetensors")
    assert w1.keys() == w2.keys() and any(not torch.equal(w0[k], w1[k]) for k in w1)  # it edited
    for name in w1:
        assert torch.allclose(w1[name], w2[name], rtol=0, atol=1e-7), name
    r1, r2 = _report(one), _report(two)
    assert r1["method"] == r2["method"] == "neggrad_plus"
    assert r1["details"]["steps"] == r2["details"]["steps"] > 0
    assert r1["details"]["verification"] == r2["details"]["verification"]
    keys = ("poison_target", "poison_rejected", "suspected_poison_rows", "left_out_rows", "ascent_target")
    keys += ("probe_fitted_on",)
    assert [r1["details"].get(k) for k in keys] == [r2["details"].get(k) for k in keys]
    if which == "one_class":
        assert 3 in (r1["details"]["poison_target"], r1["details"]["poison_rejected"])
    else:  # fitted on the held-out rows' features, sharded over the ranks and gathered
        assert r1["details"]["probe_fitted_on"] == "held-out"


@pytest.mark.slow
def test_demo_defaults_but_fewer_epochs_forgets_digit_3(tmp_path):
    out = tmp_path / "demo"
    result = run(["demo", "--epochs", "10", "--output_dir", out, "--disable_tqdm", "true"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 (forgotten)" in result.stdout
    after = _report(out)["metrics"]["after"]
    assert after["forget_error"] > 0.9 and after["retain_accuracy"] > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fisher_mask", "ssd", "fisher_noise"])
def test_demo_other_methods(capsys, tmp_path, method):
    out = tmp_path / method
    code, stdout, _ = call(capsys, "demo", "--method", method, "--epochs", "2", "--hidden_size", "16",
                           "--num_hidden_layers", "1", "--output_dir", out, "--disable_tqdm", "true")  # fmt: skip
    assert code == 0
    report = _report(out)
    assert report["method"] == method and report["fisher_samples"]
    assert f"({method};" in stdout


@pytest.mark.slow
def test_forget_with_other_method_on_a_saved_image_dataset(capsys, tmp_path):
    """train/forget/evaluate on a save_to_disk folder of PIL images, through the image processor."""
    import numpy as np
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
    from PIL import Image as PILImage
    from sklearn.datasets import load_digits

    digits = load_digits()

    def split(idx):
        images = [
            PILImage.fromarray((digits.images[i] * 16).astype(np.uint8)).resize((16, 16)).convert("RGB") for i in idx
        ]
        features = Features({"image": Image(), "label": ClassLabel(names=[f"d{i}" for i in range(10)])})
        return Dataset.from_dict({"image": images, "label": [int(digits.target[i]) for i in idx]}, features=features)

    data = tmp_path / "images"
    DatasetDict({"train": split(range(200)), "test": split(range(200, 300))}).save_to_disk(str(data))
    model = tmp_path / "vit"
    assert main(["train", "--dataset", str(data), "--output_dir", str(model), "--tiny_vit_image_size", "16",
                 "--num_train_epochs", "1", "--mnemonic_mix_ratio", "0.5", "--save_strategy", "no",
                 "--disable_tqdm", "true", "--tiny_vit_hidden_size", "16", "--tiny_vit_num_hidden_layers", "1"]) == 0  # fmt: skip
    assert (model / "preprocessor_config.json").is_file()
    code, out, err = call(capsys, "forget", "--model_dir", model, "--dataset", data, "--forget_classes", "d3",
                          "--method", "ssd", "--output_dir", tmp_path / "no3")  # fmt: skip
    assert code == 0, err
    assert "d3 (forgotten)" in out
    assert (tmp_path / "no3" / "preprocessor_config.json").is_file()
    # the data set is named by its folder's base name only in what may be published
    assert _report(tmp_path / "no3")["details"]["eval_dataset"].startswith("images (test split")
    assert str(tmp_path) not in (tmp_path / "no3" / "unlearning_report.json").read_text()
    code, out, err = call(capsys, "evaluate", "--model_dir", tmp_path / "no3", "--dataset", data,
                          "--forget_classes", "d3", "--mia")  # fmt: skip
    assert code == 0, err
    assert "MIA AUC" in out


@pytest.fixture
def local_hub_with_token(local_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_cliTestTokenNotReal0123456789")
    return local_hub


@pytest.mark.slow
def test_forget_push_to_hub_and_push_command(capsys, trained_dir, tmp_path, local_hub_with_token):
    local_hub = local_hub_with_token
    out = tmp_path / "no3"
    code, stdout, err = call(capsys, "forget", "--model_dir", trained_dir, "--forget_classes", "3",
                             "--output_dir", out, "--push_to_hub", "user/vit-no3")  # fmt: skip
    assert code == 0, err
    assert "pushed to user/vit-no3" in stdout
    files = local_hub.repos["user/vit-no3"].files
    for name in ("README.md", "model.safetensors", "mnemonic_codes.safetensors", "unlearning_report.json"):
        assert files[name] == (out / name).read_bytes(), name
    assert "user/vit-no3" in files["README.md"].decode()

    code, stdout, err = call(capsys, "push", "--folder", out, "--repo_id", "user/copy", "--commit_message", "again")
    assert code == 0, err
    assert set(local_hub.repos["user/copy"].files) == set(files)

    local_hub.fail_next_commits(1)
    code, _, err = call(capsys, "push", "--folder", out, "--repo_id", "user/failing")
    assert code == 1
    assert "hf-unlearn push: error: Pushing" in err and f"--folder {out} --repo_id user/failing` retries" in err
    assert main(["push", "--folder", str(out), "--repo_id", "user/failing"]) == 0  # the retry the message suggests
    assert set(local_hub.repos["user/failing"].files) == set(files)

    demo = tmp_path / "demo"
    code, stdout, err = call(capsys, "demo", "--epochs", "1", "--hidden_size", "16", "--num_hidden_layers", "1",
                             "--max_train_samples", "256", "--mnemonic_mix_ratio", "0.5", "--output_dir", demo,
                             "--push_to_hub", "user/demo",
                             "--disable_tqdm", "true")  # fmt: skip
    assert code == 0, err
    assert "pushed to user/demo" in stdout
    assert (
        local_hub.repos["user/demo"].files["unlearning_report.json"] == (demo / "unlearning_report.json").read_bytes()
    )


@pytest.mark.slow
@pytest.mark.multiprocess
def test_examples_train_then_forget_on_two_processes(tmp_path):
    """examples/train_vit_mnemonic.py (one process), then examples/forget_vit.py on two CPU processes."""
    model = tmp_path / "vit"
    train = [sys.executable, str(ROOT / "examples" / "train_vit_mnemonic.py")]
    result = run(["--model", "tiny-vit", "--dataset", "digits", "--output_dir", model, *TINY_TRAIN], launcher=train)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (model / "mnemonic_codes.safetensors").is_file()

    config = ROOT / "examples" / "accelerate_configs" / "cpu_2proc.yaml"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                "--main_process_port", str(free_port()), str(ROOT / "examples" / "forget_vit.py")]  # fmt: skip
    result = run(["--model_dir", model, "--forget_classes", "3", "--output_dir", tmp_path / "no3"], launcher=launcher)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("forgot ['3'] with mnemonic") == 1  # rank 0 only
    assert "on 2 process(es)" in result.stdout
    for name in FOLDER_FILES:
        assert (tmp_path / "no3" / name).is_file(), name
    assert _report(tmp_path / "no3")["metrics"]["after"]["forget_error"] > 0.9
