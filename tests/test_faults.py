"""Faults a user can cause, one row each: nothing the user had is lost, no wrong "verified", refusals before the work.

Fast tier (CI): output files and folders (existing, a folder, a mount point), what killed runs leave beside a folder,
and the verification's promises (a class the model never recognised, a codebook of another model, an edit that costs
the retained classes, a data set whose labels are not the model's), each through the common path of any method.
Slow tier (``-m slow``, also run in CI): SIGKILL and SIGINT at several moments of ``hf-unlearn train
--overwrite_output_dir``, of ``hf-unlearn forget --overwrite_output_dir`` and of a save, each followed by a check that
the previous folder is byte-identical and that the next run leaves no temporary folder behind.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import clone_params, offline_env, same_tensors, split_classes, train_with_codes

from hf_unlearn import FisherUnlearner, MnemonicCodebook, UnlearningConfig
from hf_unlearn.cli import main
from hf_unlearn.hub import publish
from hf_unlearn.methods import METHODS, MethodResult, UnlearningMethod
from hf_unlearn.unlearner import UnlearningIncompleteError


def folder_bytes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


def beside(folder: Path) -> list[str]:
    """What lies beside ``folder`` under its name (hidden temporaries included), other than the folder itself."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name and folder.name in p.name)


def a_mount_point() -> str | None:
    return next((p for p in ("/proc", "/sys", "/dev", "/dev/shm") if os.path.ismount(p)), None)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ----------------------------------------------------------------------------------- toy methods (any method goes)
class _LowerBias(UnlearningMethod):
    """Forgets by lowering the forget classes' output bias: nothing else moves (the retained classes are kept)."""

    name = "_faults_lower_bias"
    uses_codebook = True

    def run(self, model, request):
        with torch.no_grad():
            model.classifier.bias[request.forget_classes] -= 1e4
        return MethodResult(details={"complete": True})


class _Wreck(_LowerBias):
    """Forgets as above, and also wrecks the encoder: the retained classes fall too (as Fisher noise or SSD at
    their defaults did on some architectures)."""

    name = "_faults_wreck"

    def run(self, model, request):
        with torch.no_grad():
            for n, p in model.named_parameters():
                if not n.startswith("classifier"):
                    p.mul_(0.0).add_(torch.randn_like(p))
        return super().run(model, request)


@pytest.fixture(scope="module", autouse=True)
def toy_methods():
    for cls in (_LowerBias, _Wreck):
        METHODS[cls.name] = cls
    yield
    for cls in (_LowerBias, _Wreck):
        METHODS.pop(cls.name, None)


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """A tiny ViT trained briefly with codes: it recognises every class and its codes."""
    from hf_unlearn.data import tiny_vit

    train, test = digits
    model, codebook = train_with_codes(
        tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0),
        train,
        tmp_path_factory.mktemp("vit"),
        num_train_epochs=6,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        mnemonic_mix_ratio=0.3,
    )
    return model, codebook, train, test.select(range(300))


def _copy(model):
    import copy

    return copy.deepcopy(model)


# ------------------------------------------------------------------------------------------- verification matrix
def _never_learned(trained):
    """A class the model never recognised (its output bias far down): 'nothing to forget', never 'forgotten'."""
    base, book, train, test = trained
    model = _copy(base)
    with torch.no_grad():
        model.classifier.bias[3] -= 1e4
    return model, dict(forget_classes=[3], method="_faults_lower_bias"), dict(eval_dataset=test, codebook=book)


def _foreign_codebook(trained):
    """A plain model (never trained with codes) given another model's codebook, with data that shows forgetting."""
    base, _, _, test = trained
    from hf_unlearn.data import tiny_vit

    other = MnemonicCodebook.for_model(tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2), seed=99)
    return _copy(base), dict(forget_classes=[3], method="_faults_lower_bias"), dict(eval_dataset=test, codebook=other)


def _retained_fall(trained):
    """An edit that forgets the class and wrecks the rest: incomplete, however clean the forget classes look."""
    base, book, train, test = trained
    return _copy(base), dict(forget_classes=[3], method="_faults_wreck"), dict(eval_dataset=test, codebook=book)


def _retained_fall_on_retain_data(trained):
    """The same, with the retained samples (no eval data, no codes) as the only evidence on the rest."""
    base, _, train, _ = trained
    forget, retain = split_classes(train.select(range(400)), [3])
    cfg = dict(forget_classes=[3], method="_faults_wreck")
    return _copy(base), cfg, dict(forget_dataset=forget, retain_dataset=retain)


VERIFICATION_CASES = {
    # name: (build, expected status, words the reason must hold)
    "never-learned class": (_never_learned, "unverified", ["nothing to forget", "accuracy 0.00 before"]),
    "codebook of another model": (_foreign_codebook, "unverified", ["`codebook` does not belong", "chance"]),
    "retained classes fall (eval, codes)": (_retained_fall, "incomplete", ["max_retained_drop", "eval_dataset"]),
    "retained classes fall (retain data)": (_retained_fall_on_retain_data, "incomplete", ["retain_dataset"]),
}


@pytest.mark.parametrize("case", list(VERIFICATION_CASES))
def test_no_false_verified(trained, case):
    """Refused and restored bit-identical by default; with allow_incomplete kept and reported, never 'verified'."""
    build, status, words = VERIFICATION_CASES[case]
    model, cfg, inputs = build(trained)
    before = clone_params(model)
    with pytest.raises(UnlearningIncompleteError) as err:
        FisherUnlearner(UnlearningConfig(**cfg)).unlearn(model, **inputs)
    message = str(err.value)
    assert all(w in message for w in words), message
    assert err.value.report.details["verification"] == status
    assert same_tensors(clone_params(model), before)  # restored bit-identical
    report = FisherUnlearner(UnlearningConfig(**cfg, allow_incomplete=True)).unlearn(model, **inputs)
    assert report.details["verification"] == status and not same_tensors(clone_params(model), before)


def test_a_clean_edit_is_verified_with_the_retained_classes_checked(trained):
    base, book, train, test = trained
    model = _copy(base)
    forget, retain = split_classes(train.select(range(400)), [3])
    report = FisherUnlearner(UnlearningConfig(forget_classes=[3], method="_faults_lower_bias")).unlearn(
        model, codebook=book, eval_dataset=test, forget_dataset=forget, retain_dataset=retain
    )
    checks = report.details["verification_checks"]
    assert report.details["verification"] == "verified", report.details["verification_reason"]
    assert {"codes", "eval_dataset", "retain_dataset", "forget_dataset"} <= set(checks)
    for name in ("codes", "eval_dataset", "retain_dataset"):
        # nothing else moved: retained rows once read as 3 can only become right
        assert checks[name]["retain_accuracy"] >= checks[name]["retain_accuracy_before"]
    assert checks["eval_dataset"]["per_class_before"]["3"] > 0.05  # the class was there to forget
    assert "retained-class accuracy within 0.05" in report.details["verification_reason"]


def test_the_retained_bound_is_the_config_field(trained):
    base, book, _, test = trained
    cfg = UnlearningConfig(forget_classes=[3], method="_faults_wreck", max_retained_drop=1.0)
    report = FisherUnlearner(cfg).unlearn(_copy(base), codebook=book, eval_dataset=test)
    assert report.details["verification"] == "verified" and report.details["max_retained_drop"] == 1.0


def _relabelled(dataset, names):
    from datasets import ClassLabel

    return dataset.cast_column("labels", ClassLabel(names=names))


LABEL_CASES = {
    "other names": [f"class_{i}" for i in range(10)],
    "the model's names in another order": ["digit 1", "digit 0"],
    "more classes": [str(i) for i in range(12)],
}


@pytest.mark.parametrize("case", list(LABEL_CASES))
def test_a_dataset_whose_labels_are_not_the_models_is_refused(trained, case):
    base, book, _, test = trained
    model = _copy(base)
    model.config.id2label = {i: f"digit {i}" for i in range(10)}  # named classes: names can be compared
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    names = LABEL_CASES[case]
    ds = test.with_format(None).select(range(40))
    ds = ds.filter(lambda r: r["labels"] < len(names))
    relabelled = _relabelled(ds, names).with_format("torch")
    before = clone_params(model)
    with pytest.raises(ValueError, match=r"`eval_dataset` has \d+ classes .* not the model's id2label \(10") as e:
        FisherUnlearner(UnlearningConfig(forget_classes=[3], method="_faults_lower_bias")).unlearn(
            model, codebook=book, eval_dataset=relabelled
        )
    assert "digit 0" in str(e.value) and names[0] in str(e.value)  # both label lists are named
    assert same_tensors(clone_params(model), before)


def test_matching_label_names_pass(trained):
    from hf_unlearn.utils import check_dataset_labels

    _, _, _, test = trained
    check_dataset_labels(
        _relabelled(test.with_format(None), [str(i) for i in range(10)]), {i: str(i) for i in range(10)}
    )
    three = test.with_format(None).filter(lambda r: r["labels"] < 3)  # some of the model's classes, at its ids
    check_dataset_labels(_relabelled(three, ["a", "b", "c"]), {0: "a", 1: "b", 2: "c", 3: "d"})
    # names that say nothing are compared by number only
    check_dataset_labels(_relabelled(test.with_format(None), [f"c{i}" for i in range(10)]), {i: f"LABEL_{i}" for i in range(10)})  # fmt: skip


def test_max_retained_drop_is_checked():
    for bad in (-0.1, 1.5, "x", True):
        with pytest.raises(ValueError, match="`max_retained_drop`"):
            UnlearningConfig(forget_classes=[3], max_retained_drop=bad)


# ------------------------------------------------------------------------------- output files and folders (CLI)
def _model_folder(tmp_path: Path) -> Path:
    from hf_unlearn.data import tiny_vit

    folder = tmp_path / "model"
    tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(folder)
    return folder


def _weights(tmp_path: Path) -> Path:
    f = tmp_path / "vit-no3" / "model.safetensors"
    f.parent.mkdir(exist_ok=True)
    f.write_bytes(b"weights" * 1000)
    return f


CLI_CASES = {
    # name: (argv builder, words in the one line); each must exit 2 before any work and change no file
    "audit --output_file onto existing weights": (
        lambda t: ["audit", "--model_dir", str(t / "nothing"), "--dataset", "digits", "--forget_classes", "3",
                   "--output_file", str(_weights(t))],
        ["--output_file", "exists", "--overwrite_output_file"],
    ),
    "evaluate --output_file onto existing weights": (
        lambda t: ["evaluate", "--model_dir", str(_model_folder(t)), "--dataset", "digits", "--forget_classes", "3",
                   "--output_file", str(_weights(t))],
        ["--output_file", "exists", "--overwrite_output_file"],
    ),
    "evaluate --output_file naming a folder": (
        lambda t: ["evaluate", "--model_dir", str(_model_folder(t)), "--dataset", "digits", "--forget_classes", "3",
                   "--output_file", str(t)],
        ["--output_file", "folder"],
    ),
    "train --output_dir not empty": (
        lambda t: ["train", "--output_dir", str(_weights(t).parent)],
        ["--output_dir", "not empty", "--overwrite_output_dir"],
    ),
    "forget --output_dir a mount point": (
        lambda t: ["forget", "--model_dir", str(_model_folder(t)), "--forget_classes", "3", "--output_dir",
                   a_mount_point(), "--overwrite_output_dir"],
        ["--output_dir", "mount point"],
    ),
    "forget --output_dir the model's own folder": (
        lambda t: ["forget", "--model_dir", str(_model_folder(t)), "--forget_classes", "3", "--output_dir",
                   str(t / "model")],
        ["--output_dir", "the folder the model was loaded from"],
    ),
    "forget --output_dir under a file": (
        lambda t: ["forget", "--model_dir", str(_model_folder(t)), "--forget_classes", "3", "--output_dir",
                   str(_weights(t) / "x")],
        ["--output_dir", "is a file"],
    ),
    "audit --output_file under a file": (
        lambda t: ["audit", "--model_dir", str(t / "nothing"), "--dataset", "digits", "--forget_classes", "3",
                   "--output_file", str(_weights(t) / "a.json")],
        ["--output_file", "is a file"],
    ),
    "train --output_dir a mount point": (
        lambda t: ["train", "--output_dir", a_mount_point(), "--overwrite_output_dir", "true"],
        ["--output_dir", "mount point"],
    ),
    "forget --push_to_hub while offline": (
        lambda t: ["forget", "--model_dir", str(_model_folder(t)), "--forget_classes", "3", "--output_dir",
                   str(t / "out"), "--push_to_hub", "user/no3"],
        ["--push_to_hub", "HF_HUB_OFFLINE"],
    ),
    "forget --push_to_hub with the Hub unreachable": (
        lambda t: ["forget", "--model_dir", str(_model_folder(t)), "--forget_classes", "3", "--output_dir",
                   str(t / "out"), "--push_to_hub", "user/no3"],
        ["--push_to_hub", "could not be reached", "hf-unlearn push"],
    ),
    "demo --push_to_hub with the Hub unreachable": (
        lambda t: ["demo", "--output_dir", str(t / "out"), "--push_to_hub", "user/demo"],
        ["--push_to_hub", "could not be reached"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_refuses_before_any_work(capsys, tmp_path, monkeypatch, case):
    build, words = CLI_CASES[case]
    if "mount point" in case and a_mount_point() is None:
        pytest.skip("no mount point to try")
    if "unreachable" in case:  # a port nothing listens on; the check must fail within seconds, before the work
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    argv = build(tmp_path)
    capsys.readouterr()  # what building the inputs printed (progress bars)
    files = folder_bytes(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[hf-unlearn]")]
    assert code == 2 and len(lines) == 1, err
    assert all(w in lines[0] for w in words), lines[0]
    assert folder_bytes(tmp_path) == files  # nothing written, nothing replaced


def test_output_file_overwrite_flag_and_atomic_write(tmp_path):
    from hf_unlearn.scripts.common import CLIError, check_output_file

    target = _weights(tmp_path)
    with pytest.raises(CLIError, match="--overwrite_output_file"):
        check_output_file(str(target))
    check_output_file(str(target), overwrite=True)  # told to: allowed
    publish.write_file(target, '{"a": 1}\n')
    assert json.loads(target.read_text()) == {"a": 1} and beside(target) == []
    with pytest.raises(ValueError, match="`output_file`.*exists"):
        publish.check_output_file(target)
    with pytest.raises(ValueError, match="is a folder"):
        publish.check_output_file(tmp_path, overwrite=True)


def test_library_check_output_dir_refuses_a_mount_point():
    mount = a_mount_point()
    if mount is None:
        pytest.skip("no mount point to try")
    with pytest.raises(ValueError, match="mount point"):
        publish.check_output_dir(mount, overwrite_output_dir=True)


# --------------------------------------------------------------------------- what interrupted runs leave behind
def _stale_holder(target: Path, pid: int, with_old: bool = False) -> Path:
    holder = target.parent / f".{target.name}.tmp-abc{pid}"
    (holder / "new").mkdir(parents=True)
    (holder / "new" / "model.safetensors").write_bytes(b"half")
    (holder / publish.STAGING_MARKER).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    if with_old:
        (holder / "old").mkdir()
        (holder / "old" / "model.safetensors").write_bytes(b"the user's model")
    return holder


STALE_CASES = {
    # name: (make leftovers -> expected names beside the target after the next run's check, target files after)
    "killed staging folder": (lambda t: _stale_holder(t, dead_pid()), [], {"model.safetensors": b"current"}),
    "staging folder of a run still going": (
        lambda t: _stale_holder(t, os.getppid()), [f".{'out'}.tmp-abc{os.getppid()}"], {"model.safetensors": b"current"},
    ),
    "killed between the two renames": (
        lambda t: (_stale_holder(t, dead_pid(), with_old=True), os.rename(t, t.parent / "gone")),
        ["gone"],
        {"model.safetensors": b"the user's model"},
    ),
    "unmarked half-written save of an earlier version": (
        lambda t: (t.parent / f".{t.name}.tmp-x1y2").mkdir(), [], {"model.safetensors": b"current"},
    ),
    "an earlier version's moved-aside folder (reported, kept)": (
        lambda t: (t.parent / f".{t.name}.replaced-q9").mkdir(), [".out.replaced-q9"], {"model.safetensors": b"current"},
    ),
    "a killed single-file write": (
        lambda t: (t.parent / f".{t.name}.tmp-{dead_pid()}_zz.partial").write_text("{"), [],
        {"model.safetensors": b"current"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(STALE_CASES))
def test_the_next_run_cleans_what_a_killed_run_left(tmp_path, case, caplog):
    make, left, files = STALE_CASES[case]
    target = tmp_path / "out"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"current")
    make(target)
    with caplog.at_level("INFO", logger="hf_unlearn"):
        publish.check_output_dir(target, overwrite_output_dir=True)  # what every save and train runs first
    assert beside(target) == [x for x in left if x != "gone"]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files
    if "reported" in case:
        assert "left in place" in caplog.text


@pytest.mark.parametrize("exchange", [True, False])
def test_commit_staging_replaces_whole(tmp_path, monkeypatch, exchange):
    if not exchange:  # systems without renameat2: the two-rename path
        monkeypatch.setattr(publish, "_renameat2_exchange", lambda a, b: False)
    target = tmp_path / "out"
    target.mkdir()
    (target / "adapter_config.json").write_text("{}")
    new = Path(publish.make_staging(str(target)))
    (new / "model.safetensors").write_bytes(b"new")
    publish.commit_staging(str(new), str(target))
    assert sorted(p.name for p in target.iterdir()) == ["model.safetensors"] and beside(target) == []


def test_staging_creates_missing_parent_folders(tmp_path):
    # `hf-unlearn train --output_dir a/b/c` with `a/b` not there yet: the holder goes beside the target all the same
    target = tmp_path / "a" / "b" / "c"
    new = Path(publish.make_staging(str(target)))
    (new / "model.safetensors").write_bytes(b"new")
    publish.commit_staging(str(new), str(target))
    assert [p.name for p in target.iterdir()] == ["model.safetensors"] and beside(target) == []


# ------------------------------------------------------------------------------- fault injection (slow, subprocess)
TRAIN = [
    "--num_train_epochs", "3", "--learning_rate", "3e-3", "--per_device_train_batch_size", "16",
    "--mnemonic_mix_ratio", "0.3", "--tiny_vit_hidden_size", "16", "--tiny_vit_num_hidden_layers", "1",
    "--max_train_samples", "400", "--max_eval_samples", "100", "--save_strategy", "epoch",
    "--logging_strategy", "no", "--disable_tqdm", "true", "--report_to", "none",
]  # fmt: skip


def _cli(*argv) -> list[str]:
    return [sys.executable, "-m", "hf_unlearn.cli", *map(str, argv)]


def _kill_at(cmd: list[str], sig: int, *, after_line: str | None, delay: float) -> int:
    """Starts ``cmd``, waits for ``after_line`` on its stderr (if given) then ``delay`` seconds, sends ``sig``;
    returns the exit status (whatever it was if it ended first)."""
    child = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=offline_env())
    try:
        if after_line is not None:
            for raw in child.stderr:
                if after_line in raw.decode(errors="replace"):
                    break
        time.sleep(delay)
        if child.poll() is None:
            child.send_signal(sig)
        return child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("kill") / "vit"
    subprocess.run(_cli("train", "--output_dir", out, *TRAIN), check=True, env=offline_env(), capture_output=True)
    return out


# moments: while loading, when training starts, mid-training, near the save
MOMENTS = [(None, 1.0), ("Training", 0.0), ("Training", 2.0), ("Training", 5.0)]
_SEEDS = itertools.count(1)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("moment", MOMENTS, ids=["loading", "start", "mid", "late"])
def test_killed_train_overwrite_leaves_the_old_folder(trained_folder, sig, moment):
    before = folder_bytes(trained_folder)
    # a new seed each time: a run that finishes writes other bytes (a seed reproduces its folder exactly)
    code = _kill_at(_cli("train", "--output_dir", trained_folder, "--overwrite_output_dir", "true", *TRAIN,
                         "--seed", next(_SEEDS)), sig, after_line=moment[0], delay=moment[1])  # fmt: skip
    after = folder_bytes(trained_folder)
    # either the old folder, byte for byte, or (the swap done before the kill landed) the new one, whole
    assert after == before or set(after) == set(before), f"exit {code}: a mixed or partial folder"
    assert code != 0 or after != before  # a run that finished did replace the folder
    publish.check_output_dir(trained_folder, overwrite_output_dir=True)  # what the next run does first
    assert beside(trained_folder) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("delay", [0.5, 3.0, 6.0])
def test_killed_forget_overwrite_leaves_the_old_folder(trained_folder, tmp_path, sig, delay):
    out = tmp_path / "no3"
    cmd = _cli("forget", "--model_dir", trained_folder, "--forget_classes", "3", "--method", "mnemonic_head",
               "--output_dir", out, "--allow_incomplete", "true")  # fmt: skip
    subprocess.run(cmd, check=True, env=offline_env(), capture_output=True)
    before = folder_bytes(out)
    code = _kill_at([*cmd, "--overwrite_output_dir"], sig, after_line=None, delay=delay)
    after = folder_bytes(out)
    assert after == before or set(after) == set(before), f"exit {code}: a mixed or partial folder"
    assert code != 0 or after != before
    publish.check_output_dir(out, overwrite_output_dir=True)
    assert beside(out) == []


_SLOW_SAVE = """
import sys, time
from hf_unlearn.hub import publish
from hf_unlearn.data import tiny_vit
from hf_unlearn.report import UnlearningReport

out, point = sys.argv[1], sys.argv[2]
model = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
real_save, real_commit = model.save_pretrained, publish.commit_staging

def save(path, **kw):  # a big model: the weights take a while to write
    real_save(path, **kw)
    if point == "weights-written":
        print(point, flush=True)
        time.sleep(120)

def commit(new, target):  # everything written, the swap not yet made
    print(point, flush=True)
    time.sleep(120)
    real_commit(new, target)

model.save_pretrained = save
if point == "before-swap":
    publish.commit_staging = commit
report = UnlearningReport(method="mnemonic", forget_classes=[3], forget_labels=["3"], retain_classes=[0],
                          retain_labels=["0"], num_parameters_changed=1, num_parameters_total=2)
publish.save_unlearned(out, model, report, overwrite_output_dir=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("point", ["weights-written", "before-swap"])
def test_killed_save_leaves_the_old_folder(tmp_path, sig, point):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"old weights")
    (out / "config.json").write_text("{}")
    before = folder_bytes(out)
    child = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(out), point], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=offline_env())  # fmt: skip
    try:
        assert child.stdout.readline().decode().strip() == point, child.stderr.read().decode()[-2000:]
        child.send_signal(sig)
        assert child.wait(timeout=60) != 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert folder_bytes(out) == before
    publish.check_output_dir(out, overwrite_output_dir=True)
    assert beside(out) == []
