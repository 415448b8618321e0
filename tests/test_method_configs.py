"""Each method's own config class: registration, validation, the deprecated flat names, saving, the command line,
and a toy method with its own settings run from Python and from `hf-unlearn forget --config x.yaml`."""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field

import pytest
import torch
from safetensors.torch import load_file

from hf_unlearn import FisherUnlearner, UnlearningConfig
from hf_unlearn.cli import main
from hf_unlearn.methods import METHOD_CONFIGS, METHODS, MethodConfig, MethodResult, UnlearningMethod, register_method
from hf_unlearn.methods.configs import NegGradPlusConfig
from hf_unlearn.methods.fisher_mask import FisherMaskConfig
from hf_unlearn.methods.mnemonic import MnemonicDeepConfig, MnemonicHeadConfig
from hf_unlearn.methods.mnemonic.deep import (
    ALPHAS,
    KEEP_MARGIN,
    MAX_FORGET_PER_CLASS,
    MAX_RETAIN,
    MAX_RETAIN_DROP,
    RIDGE,
)
from hf_unlearn.methods.ssd import SSDConfig


def call(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------- the built-in configs
def test_every_method_has_a_documented_config_class():
    for name, method in METHODS.items():
        config_cls = METHOD_CONFIGS[name]
        assert method.config_class is config_cls and issubclass(config_cls, MethodConfig)
        config_cls()  # the defaults are valid
        for f in dataclasses.fields(config_cls):
            assert f.metadata.get("help"), f"{config_cls.__name__}.{f.name} has no help"
    assert METHOD_CONFIGS["mnemonic"] is MnemonicDeepConfig and METHOD_CONFIGS["mnemonic_head"] is MnemonicHeadConfig
    assert issubclass(MnemonicDeepConfig, MnemonicHeadConfig)  # the deep method runs the head edit as variants


def test_deep_edit_settings_default_to_the_module_constants():
    c = MnemonicDeepConfig()
    assert (c.deep_ridge, c.deep_keep_margin, c.deep_max_retain_drop) == (RIDGE, KEEP_MARGIN, MAX_RETAIN_DROP)
    assert (c.deep_max_forget_per_class, c.deep_max_retain_samples) == (MAX_FORGET_PER_CLASS, MAX_RETAIN)
    assert c.deep_alphas is None and MnemonicDeepConfig(deep_alphas=ALPHAS).deep_alphas == list(ALPHAS)
    assert c.mnemonic_variant == "deep" and MnemonicHeadConfig().mnemonic_variant == "search"


@pytest.mark.parametrize(
    ("config_cls", "bad"),
    [
        (FisherMaskConfig, {"mask_ratio": 1.0}),
        (FisherMaskConfig, {"mask_fisher_kind": "diagonal"}),
        (SSDConfig, {"ssd_alpha": float("inf")}),
        (SSDConfig, {"ssd_lambda": True}),
        (MnemonicHeadConfig, {"mnemonic_variant": "deep"}),  # the deep edit is method `mnemonic`'s
        (MnemonicHeadConfig, {"mnemonic_retain_margin": 1.0}),
        (MnemonicDeepConfig, {"deep_alphas": [1.5]}),
        (MnemonicDeepConfig, {"deep_max_retain_samples": 2.5}),
        (MnemonicDeepConfig, {"deep_keep_margin": -0.1}),
        (NegGradPlusConfig, {"known_poison": "yes"}),
        (NegGradPlusConfig, {"suspect_poison": 1}),
    ],
)
def test_config_classes_refuse_bad_values_naming_the_field(config_cls, bad):
    with pytest.raises(ValueError, match=f"`{next(iter(bad))}`"):
        config_cls(**bad)


def test_method_config_from_an_instance_a_dict_or_json():
    for given in (FisherMaskConfig(mask_ratio=0.05), {"mask_ratio": 0.05}, '{"mask_ratio": 0.05}'):
        cfg = UnlearningConfig(method="fisher_mask", method_config=given)
        assert cfg.method_config == FisherMaskConfig(mask_ratio=0.05)
    assert UnlearningConfig(method="ssd").method_config == SSDConfig()  # the method's defaults
    assert UnlearningConfig(forget_scope="samples").method_config == METHOD_CONFIGS["neggrad_plus"]()
    with pytest.raises(ValueError, match="`mask_ratio` is a setting of method 'fisher_mask', not of method 'ssd'"):
        UnlearningConfig(method="ssd", method_config={"mask_ratio": 0.05})
    with pytest.raises(ValueError, match="`method_config` has no setting 'nope'"):
        UnlearningConfig(method="ssd", method_config={"nope": 1})
    with pytest.raises(ValueError, match="`method_config` must be a SSDConfig"):
        UnlearningConfig(method="ssd", method_config=FisherMaskConfig())
    with pytest.raises(ValueError, match="`method_config` is not valid JSON"):
        UnlearningConfig(method="ssd", method_config="{ssd_alpha: 5}")
    cfg = UnlearningConfig(method="fisher_mask")
    cfg.method = "ssd"  # its settings no longer fit the method: the method says so instead of misreading them
    with pytest.raises(ValueError, match="not the SSDConfig of method 'ssd'"):
        METHODS["ssd"](cfg).method_config  # noqa: B018


# -------------------------------------------------------------------------------------------------- old flat names
def test_old_flat_names_still_work_with_a_future_warning():
    with pytest.warns(FutureWarning, match=r"method_config=\{'mask_ratio': \.\.\.\}"):
        cfg = UnlearningConfig(method="fisher_mask", mask_ratio=0.05)
    assert cfg.method_config == FisherMaskConfig(mask_ratio=0.05)
    with pytest.warns(FutureWarning, match=r"config\.method_config\.mask_ratio"):
        assert cfg.mask_ratio == 0.05
    with pytest.warns(FutureWarning, match=r"config\.method_config\.mask_ratio"):
        cfg.mask_ratio = 0.1
    assert cfg.method_config.mask_ratio == 0.1
    with pytest.raises(ValueError, match="`ssd_alpha` is a setting of method 'ssd', not of method 'fisher_mask'"):
        UnlearningConfig(method="fisher_mask", ssd_alpha=5.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_field'"):
        UnlearningConfig(no_such_field=1)
    with pytest.raises(AttributeError):
        cfg.ssd_alpha  # noqa: B018  (another method's setting)
    with warnings.catch_warnings():  # the new spelling, and dataclasses.replace, warn about nothing
        warnings.simplefilter("error")
        again = dataclasses.replace(cfg, seed=3)
        assert again.method_config == cfg.method_config and again.seed == 3


def test_save_and_load_the_nested_config_and_an_old_flat_file(tmp_path):
    cfg = UnlearningConfig(method="mnemonic", forget_classes=[3], method_config={"deep_alphas": [0.5, 0.0]})
    path = cfg.save_pretrained(tmp_path / "new")
    saved = json.loads(open(path).read())
    assert saved["method_config"]["deep_alphas"] == [0.5, 0.0] and "hf_unlearn_version" in saved
    assert list(saved) == sorted(saved) and "deep_alphas" not in saved
    assert UnlearningConfig.from_pretrained(tmp_path / "new") == cfg

    old = {"method": "mnemonic_head", "forget_classes": ["3"], "seed": 2, "mnemonic_variant": "deep",
           "mnemonic_margin": 2.0, "mask_ratio": 0.02, "ssd_alpha": 10.0, "hf_unlearn_version": "0.4.0"}  # fmt: skip
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "unlearning_config.json").write_text(json.dumps(old))
    with pytest.warns(FutureWarning, match="flat keys"):
        loaded = UnlearningConfig.from_pretrained(tmp_path / "old")
    # "deep" meant "search" for mnemonic_head; the other methods' flat defaults are dropped
    assert loaded.method_config == MnemonicHeadConfig(mnemonic_variant="search", mnemonic_margin=2.0)
    assert loaded.seed == 2 and loaded.forget_classes == ["3"]


# ------------------------------------------------------------------------------------------------- command line
def test_forget_help_lists_each_methods_settings_grouped(capsys):
    code, out, _ = call(capsys, "forget", "--help")
    assert code == 0
    for name, config_cls in METHOD_CONFIGS.items():
        assert f"settings of --method {name} ({config_cls.__name__})" in out
    assert "--mask_ratio" in out and "--mask-ratio" in out and "--deep_ridge" in out
    assert "default: search for --method mnemonic_head, deep for --method mnemonic" in " ".join(out.split())


def test_forget_flags_fill_the_method_config_and_another_methods_flag_is_refused(capsys, tmp_path):
    from hf_unlearn.scripts import forget

    base = ["--model_dir", "m", "--output_dir", "o", "--forget_classes", "3"]
    parser = forget.make_parser()
    parser.parse_namespace([*base, "--method", "fisher_mask", "--mask-ratio", "0.05"])
    assert parser.make_dataclasses()[1].method_config == FisherMaskConfig(mask_ratio=0.05)
    parser = forget.make_parser()
    parser.parse_namespace([*base, "--method", "ssd", "--method_config", '{"ssd_alpha": 3}', "--ssd_alpha", "4"])
    assert parser.make_dataclasses()[1].method_config == SSDConfig(ssd_alpha=4.0)  # the flag wins over the JSON

    from hf_unlearn.data import tiny_vit

    model_dir, out = tmp_path / "model", tmp_path / "out"
    tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(model_dir)
    capsys.readouterr()
    code, _, err = call(capsys, "forget", "--model_dir", model_dir, "--forget_classes", "3", "--output_dir", out,
                        "--method", "ssd", "--mask_ratio", "0.05")  # fmt: skip
    assert code == 2 and "--mask_ratio is a setting of method 'fisher_mask', not of method 'ssd'" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_config_file_takes_a_nested_method_config_and_flat_keys_with_a_warning(tmp_path):
    from hf_unlearn.scripts import forget

    config = tmp_path / "forget.yaml"
    config.write_text(
        "model_dir: m\noutput_dir: o\nforget_classes: [3]\nmethod: ssd\nmethod_config:\n  ssd_alpha: 5\n"
    )
    parser = forget.make_parser()
    _, unlearning, _ = parser.parse(["--config", str(config), "--ssd_lambda", "2"])
    assert unlearning.method_config == SSDConfig(ssd_alpha=5.0, ssd_lambda=2.0)
    config.write_text("model_dir: m\noutput_dir: o\nforget_classes: [3]\nmethod: ssd\nssd_alpha: 5\n")
    with pytest.warns(FutureWarning, match="put it under 'method_config:'"):
        _, unlearning, _ = forget.make_parser().parse(["--config", str(config)])
    assert unlearning.method_config == SSDConfig(ssd_alpha=5.0)


# ------------------------------------------------------------------------------------- a toy method with settings
@dataclass
class ToyShiftConfig(MethodConfig):
    """Settings of the toy method: how far the forgotten classes' output bias moves."""

    toy_shift: float = field(default=1.0, metadata={"help": "Amount subtracted from each forgotten class's bias."})

    def __post_init__(self):
        if not self.toy_shift > 0:
            raise ValueError(f"`toy_shift` must be > 0, got {self.toy_shift!r}.")


class ToyShift(UnlearningMethod):
    """Lowers the forgotten classes' output bias by ``toy_shift`` (a method defined by a user)."""

    def target_parameters(self, model):
        return ["classifier.bias"]

    def run(self, model, request):
        with torch.no_grad():
            for c in request.forget_classes:
                model.classifier.bias[c] -= self.method_config.toy_shift
        return MethodResult(hyperparameters={"shift": self.method_config.toy_shift})


@pytest.fixture
def toy_method():
    register_method("toy_shift", ToyShiftConfig, ToyShift)
    try:
        yield "toy_shift"
    finally:
        METHODS.pop("toy_shift")
    assert "toy_shift" not in METHOD_CONFIGS


def test_a_toy_method_with_its_own_config_from_python_and_from_a_yaml_config(capsys, tmp_path, toy_method):
    from hf_unlearn.data import tiny_vit

    assert ToyShift.name == "toy_shift" and METHOD_CONFIGS["toy_shift"] is ToyShiftConfig
    with pytest.raises(ValueError, match="already registered"):
        register_method("toy_shift", ToyShiftConfig, ToyShift)
    with pytest.raises(ValueError, match="`toy_shift` must be > 0"):
        UnlearningConfig(method="toy_shift", method_config={"toy_shift": -1.0})

    model = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    before = model.classifier.bias.detach().clone()
    cfg = UnlearningConfig(
        method="toy_shift", forget_classes=[3], allow_incomplete=True, method_config={"toy_shift": 2.5}
    )
    report = FisherUnlearner(cfg).unlearn(model)
    assert torch.equal(model.classifier.bias[3], before[3] - 2.5)
    assert torch.equal(model.classifier.bias[:3], before[:3]) and torch.equal(model.classifier.bias[4:], before[4:])
    assert report.method_config == {"toy_shift": 2.5} and report.hyperparameters == {"shift": 2.5}

    model_dir, out = tmp_path / "model", tmp_path / "out"
    model.save_pretrained(model_dir)
    capsys.readouterr()
    config = tmp_path / "toy.yaml"
    config.write_text(
        f"model_dir: {model_dir}\noutput_dir: {out}\nmethod: toy_shift\nforget_classes: [3]\nallow_incomplete: true\n"
        "method_config:\n  toy_shift: 0.75\n"
    )
    code, _, err = call(capsys, "forget", "--config", config)
    assert code == 0, err
    bias_in, bias_out = load_file(model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert torch.equal(bias_out["classifier.bias"][3], bias_in["classifier.bias"][3] - 0.75)
    saved = json.loads((out / "unlearning_report.json").read_text())
    assert saved["method"] == "toy_shift" and saved["method_config"] == {"toy_shift": 0.75}
    assert UnlearningConfig.from_pretrained(out).method_config == ToyShiftConfig(toy_shift=0.75)
    code, out_text, _ = call(capsys, "forget", "--help")
    assert "settings of --method toy_shift (ToyShiftConfig)" in out_text and "--toy_shift" in out_text
