"""Model card rendering, saving and pushing to a local Hub (tests/hub_server.py); nothing leaves 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
import torch
from hub_server import LocalHub, patch_hub_endpoint  # tests/ is on sys.path: no __init__.py, no conftest
from huggingface_hub import ModelCard
from transformers import TrainerCallback, TrainingArguments, ViTForImageClassification, ViTImageProcessor

from hf_unlearn import hub
from hf_unlearn.data import tiny_vit
from hf_unlearn.mnemonic import MnemonicCodebook
from hf_unlearn.report import REPORT_FILE, UnlearningReport

torch.set_num_threads(1)

TOKEN = "hf_TESTtokenDoNotLeak0123456789abcdef"
LABELS = {0: "airplane", 1: "bird", 2: "cat", 3: "deer"}
FINGERPRINT = hashlib.sha256(b"forget request: classes [1, 3]").hexdigest()


@pytest.fixture
def local_hub(monkeypatch):
    """A LocalHub on 127.0.0.1 with huggingface_hub and transformers pointed at it; yields the server."""
    with LocalHub() as server:
        patch_hub_endpoint(monkeypatch, server.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield server


def _model():
    return tiny_vit(num_labels=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, id2label=LABELS)


def _report(metrics: bool = True, **kw) -> UnlearningReport:
    values = dict(
        method="mnemonic",
        forget_classes=[1, 3],
        forget_labels=["bird", "deer"],
        retain_classes=[0, 2],
        retain_labels=["airplane", "cat"],
        num_parameters_changed=1234,
        num_parameters_total=5678,
        fisher_samples={"forget": 20, "retain": 40},
        timings={"fisher": 0.25, "edit": 0.01, "total": 0.3},
        hyperparameters={"alpha": 10.0, "selection": "auto"},
        method_config={"deep_ridge": 0.5, "mnemonic_variant": "deep"},
        details={"sign": -1},
        forget_request_fingerprint=FINGERPRINT,
        base_model="google/vit-base-patch16-224",
        created_at="2025-01-02T03:04:05+00:00",
        versions={"hf_unlearn": "0.1.0", "torch": "2.13.0"},
    )
    if metrics:
        values["metrics"] = {
            "before": {
                "forget_accuracy": 0.91,
                "retain_accuracy": 0.93,
                "test_accuracy": 0.92,
                "mia_auc": 0.61,
                "per_class_accuracy": {"airplane": 0.95, "bird": 0.9, "2": 0.91, "3": 0.92},
            },
            "after": {
                "forget_accuracy": 0.0,
                "retain_accuracy": 0.9,
                "test_accuracy": 0.45,
                "mia_auc": 0.52,
                "mia_score": "loss",
                "num_forget_samples": 1200,
                "per_class_accuracy": [0.93, 0.0, 0.87, 0.0],
            },
        }
    values.update(kw)
    return UnlearningReport(**values)


class _Config:
    """Stands in for UnlearningConfig: anything with save_pretrained(directory)."""

    def save_pretrained(self, directory):
        with open(os.path.join(directory, "unlearning_config.json"), "w") as f:
            json.dump({"method": "mnemonic"}, f)


def _folder_bytes(path) -> dict[str, bytes]:
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def _assert_token_absent(folder, server, token=TOKEN):
    """The token is in no local file, no stored remote file and no request except in its Authorization header."""
    needle = token.encode()
    for name, data in _folder_bytes(folder).items():
        assert needle not in data, f"token leaked into local file {name}"
    for repo in server.repos.values():
        for name, data in repo.files.items():
            assert needle not in data, f"token leaked into remote file {name}"
    seen_in_auth = False
    for r in server.requests:
        assert needle not in r.body, f"token in body of {r.method} {r.path}"
        if "/commit/" in r.path:  # file contents travel base64-encoded in NDJSON lines
            for line in r.body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    assert needle not in base64.b64decode(item["value"]["content"]), item["value"]["path"]
        for k, v in r.headers.items():
            if k.lower() == "authorization":
                seen_in_auth |= token in v
            else:
                assert token not in v, f"token in header {k} of {r.method} {r.path}"
    assert seen_in_auth, "the token was never sent, so the scan proves nothing"


# ------------------------------------------------------------------------------------------------ card
def test_template_is_found_and_shipped():
    path = hub.model_card_template_path()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "## Limitations" in text and "{{ card_data }}" in text


def test_card_holds_the_facts_and_reparses(tmp_path):
    report = _report()
    chart = hub.plot_per_class_accuracy(report, tmp_path / hub.CHART_FILE)
    assert chart is not None
    with open(chart, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    card = hub.render_model_card(report, model=_model(), repo_id="tester/vit-unlearned", chart_path=chart)
    text = str(card)
    for needle in ("bird", "deer", "airplane", "cat", "mnemonic", FINGERPRINT, "0.9100", "0.0000", "0.6100", "0.5200"):
        assert needle in text, needle
    assert "E_F (forget error)" in text and "1.0000" in text  # E_F derived from A_F
    assert "| num_forget_samples | – | 1,200 |" in text  # other numbers become extra rows
    assert "fisher" in text and "0.250" in text  # timings
    assert "forget = 20" in text and "1,234 of 5,678" in text
    assert "Method settings as configured" in text and "| `deep_ridge` | `0.5` |" in text  # report.method_config
    assert f"]({hub.CHART_FILE})" in text  # chart linked by its file name
    assert 'from_pretrained("tester/vit-unlearned")' in text
    assert "AutoModelForImageClassification" in text
    assert "## Limitations" in text and "gold standard" in text and "differential-privacy" in text

    for parsed in (ModelCard(text), ModelCard.load(_save(card, tmp_path))):
        data = parsed.data
        assert data.library_name == "transformers"
        assert data.tags[:3] == ["unlearning", "hf-unlearn", "mnemonic"]
        assert data.base_model == "google/vit-base-patch16-224"
        assert data.model_name == "vit-unlearned"
        results = {r.metric_name: r.metric_value for r in data.eval_results}
        assert results["A_R (retained accuracy) after unlearning"] == 0.9
        assert results["A_F (forget accuracy) after unlearning"] == 0.0
        assert results["membership-inference AUC after unlearning"] == 0.52
        assert all(r.task_type == "image-classification" for r in data.eval_results)
    assert "model-index" in text


def _save(card, tmp_path):
    path = tmp_path / "README.md"
    card.save(path)
    return path


def test_card_without_metrics_or_fingerprint(tmp_path):
    report = _report(metrics=False, forget_request_fingerprint="", base_model="/some/local/path")
    assert hub.plot_per_class_accuracy(report, tmp_path / "chart.png") is None
    assert not (tmp_path / "chart.png").exists()
    card = hub.render_model_card(report)
    text = str(card)
    assert "no metrics were recorded" in text
    assert "model-index" not in text and card.data.eval_results is None
    assert card.data.base_model is None  # a local path is not a Hub id, so it stays out of the YAML ...
    # ... and the body names it by its base name only: no local absolute path is ever published (issue: privacy)
    assert "/some/local/path" not in text and "`path`" in text
    request = {"forget_classes": [1, 3], "hyperparameters": report.hyperparameters, "method": "mnemonic"}
    expected = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
    assert expected in text and "computed from the report" in text
    assert ModelCard(text).data.tags == ["unlearning", "hf-unlearn", "mnemonic", "machine-unlearning"]


# ------------------------------------------------------------------------------------------------ saving
class _NotAModel:
    pass


@pytest.mark.parametrize(
    "case, error, argument",
    [
        ("model", TypeError, "`model`"),
        ("model_none", ValueError, "`model`"),
        ("report", ValueError, "`report`"),
        ("report_type", TypeError, "`report`"),
        ("file", ValueError, "`output_dir`"),
        ("codebook", TypeError, "`codebook`"),
        ("config", TypeError, "`config`"),
    ],
)
def test_save_rejects_invalid_input_before_writing(tmp_path, case, error, argument):
    out = tmp_path / "out"
    kwargs = dict(output_dir=out, model=_model(), report=_report())
    if case == "model":
        kwargs["model"] = _NotAModel()
    elif case == "model_none":
        kwargs["model"] = None
    elif case == "report":
        kwargs["report"] = None
    elif case == "report_type":
        kwargs["report"] = {"method": "mnemonic"}
    elif case == "file":
        out.write_text("not a folder")
    elif case == "codebook":
        kwargs["codebook"] = object()
    elif case == "config":
        kwargs["config"] = "unlearning_config.json"
    with pytest.raises(error, match=argument):
        hub.save_unlearned(**kwargs)
    if case == "file":
        assert out.read_text() == "not a folder"
    else:
        assert not out.exists()


def test_saving_again_without_metrics_drops_the_old_chart(tmp_path):
    out = hub.save_unlearned(tmp_path / "out", _model(), _report())
    assert os.path.isfile(os.path.join(out, hub.CHART_FILE))
    hub.save_unlearned(out, _model(), _report(metrics=False))
    assert not os.path.exists(os.path.join(out, hub.CHART_FILE))
    assert hub.CHART_FILE not in (tmp_path / "out" / "README.md").read_text()


def test_save_writes_nothing_off_the_main_process(tmp_path, local_hub):
    class NotMain:
        is_main_process = False

    out = tmp_path / "out"
    assert hub.save_unlearned(out, _model(), _report(), accelerator=NotMain()) == str(out)
    assert not out.exists()
    hub.save_unlearned(out, _model(), _report())
    assert hub.push_unlearned("tester/not-main", out, token=TOKEN, accelerator=NotMain()) is None
    assert local_hub.requests == [] and local_hub.repos == {}


# ------------------------------------------------------------------------------------------------ pushing
def test_push_round_trip_is_bit_identical_and_leaks_no_token(tmp_path, local_hub):
    model = _model()
    processor = ViTImageProcessor(size={"height": 8, "width": 8}, image_mean=[0.5], image_std=[0.5])
    codebook = MnemonicCodebook.for_model(model, seed=3)
    report = _report()
    out = hub.save_unlearned(
        tmp_path / "out", model, report, processing_class=processor, codebook=codebook, config=_Config(),
        repo_id="tester/vit-unlearned",
    )  # fmt: skip
    local = _folder_bytes(out)
    assert {"README.md", REPORT_FILE, hub.CHART_FILE, "model.safetensors", "config.json"} <= set(local)
    assert {"preprocessor_config.json", "mnemonic_codes.safetensors", "unlearning_config.json"} <= set(local)
    assert UnlearningReport.load(out) == report

    url = hub.push_unlearned("tester/vit-unlearned", out, token=TOKEN, private=True)
    repo = local_hub.repos["tester/vit-unlearned"]
    assert url == f"{local_hub.url}/tester/vit-unlearned/commit/{repo.head}"
    assert repo.files == local and repo.private is True
    assert local_hub.requests_to("/api/validate-yaml"), "README.md YAML was not validated"

    loaded = ViTForImageClassification.from_pretrained("tester/vit-unlearned", cache_dir=tmp_path / "cache")
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    from huggingface_hub import snapshot_download

    snapshot = snapshot_download("tester/vit-unlearned", cache_dir=tmp_path / "cache")
    assert MnemonicCodebook.from_pretrained(snapshot).equals(codebook)
    card = ModelCard.load(os.path.join(snapshot, "README.md"))
    assert "hf-unlearn" in card.data.tags and "bird" in card.text and codebook.fingerprint() in card.text
    _assert_token_absent(out, local_hub)


def test_failed_push_raises_clear_error_keeps_folder_and_retry_succeeds(tmp_path, local_hub):
    out = hub.save_unlearned(tmp_path / "out", _model(), _report())
    before = _folder_bytes(out)
    local_hub.fail_next_commits(1)
    with pytest.raises(hub.HubPushError) as info:
        hub.push_unlearned("tester/flaky", out, token=TOKEN)
    err = info.value
    assert isinstance(err, RuntimeError) and err.__cause__ is not None
    assert str(out) in str(err) and "retry" in str(err) and TOKEN not in str(err)
    assert err.output_dir == str(out) and err.repo_id == "tester/flaky"
    assert _folder_bytes(out) == before
    assert local_hub.repos["tester/flaky"].files == {}  # the repo exists, but nothing was committed

    url = hub.push_unlearned("tester/flaky", out, token=TOKEN)  # the 409 on create is fine with exist_ok
    assert url.endswith(local_hub.repos["tester/flaky"].head)
    assert local_hub.repos["tester/flaky"].files == before
    _assert_token_absent(out, local_hub)


def test_push_honours_hf_endpoint_and_hf_token_read_at_call_time(tmp_path, local_hub, monkeypatch):
    from huggingface_hub import constants

    out = hub.save_unlearned(tmp_path / "out", _model(), _report())
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # as if HF_ENDPOINT was set after import
    monkeypatch.setenv("HF_ENDPOINT", local_hub.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.push_unlearned("tester/from-env", out)
    assert "README.md" in local_hub.repos["tester/from-env"].files
    _assert_token_absent(out, local_hub)


def test_push_to_a_new_branch_through_the_xet_upload_pipeline(tmp_path, local_hub, monkeypatch):
    from huggingface_hub import constants

    # With hf_xet installed (the usual case), upload_folder takes the pipelined path; regular files still go inline.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    out = hub.save_unlearned(tmp_path / "out", _model(), _report())
    hub.push_unlearned("tester/xet", out, token=TOKEN, revision="unlearned")
    assert local_hub.repos["tester/xet"].files == _folder_bytes(out)
    assert local_hub.repos["tester/xet"].branches == ["main", "unlearned"]
    assert local_hub.requests_to("/api/models/tester/xet/commit/unlearned")


def test_push_in_offline_mode_fails_clearly_without_sending(tmp_path, local_hub, monkeypatch):
    from huggingface_hub import constants

    out = hub.save_unlearned(tmp_path / "out", _model(), _report())
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.HubPushError, match="HF_HUB_OFFLINE"):
        hub.push_unlearned("tester/offline", out, token=TOKEN)
    assert local_hub.requests == []


@pytest.mark.parametrize("bad", ["", None])
def test_push_rejects_bad_arguments(tmp_path, local_hub, bad):
    with pytest.raises(ValueError, match="`repo_id`"):
        hub.push_unlearned(bad, tmp_path, token=TOKEN)
    with pytest.raises(ValueError, match="`output_dir`"):
        hub.push_unlearned("tester/x", tmp_path / "missing", token=TOKEN)
    assert local_hub.requests == []


# ------------------------------------------------------------------------------------------------ Trainer
class _UnlearnerLikeCallback(TrainerCallback):
    """What FisherUnlearner does in its on_push_begin hook."""

    def __init__(self, report, trainer=None, codebook=None):
        self.report, self.trainer, self.codebook = report, trainer, codebook

    def on_push_begin(self, args, state, control, **kwargs):
        hub.on_push_begin(
            self.report,
            args,
            kwargs.get("model"),
            processing_class=kwargs.get("processing_class"),
            codebook=self.codebook,
            config=_Config(),
            trainer=self.trainer,
        )


@pytest.mark.parametrize("pass_trainer", [True, False])
def test_trainer_push_to_hub_uploads_our_card(tmp_path, local_hub, pass_trainer):
    model = _model()
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        hub_model_id="tester/trainer-unlearned",
        hub_token=TOKEN,  # Trainer pickles args into training_args.bin: the hook must keep the token out
        push_to_hub=False,
        report_to="none",
        use_cpu=True,
    )
    callback = _UnlearnerLikeCallback(_report(), codebook=MnemonicCodebook.for_model(model))
    trainer = hub.UnlearningTrainer(model=model, args=args, callbacks=[callback])
    if pass_trainer:  # the hook attaches the card to the trainer it was handed ...
        callback.trainer = trainer
    else:  # ... or the card is attached explicitly (no trainer is looked for on the call stack)
        hub.attach_card_to_trainer(trainer, callback.report, codebook=callback.codebook, config=_Config())
    commit = trainer.push_to_hub(tags=["my-tag"])

    repo = local_hub.repos["tester/trainer-unlearned"]
    assert commit.oid == repo.head
    card = ModelCard(repo.files["README.md"].decode())
    assert card.data.tags[:3] == ["unlearning", "hf-unlearn", "mnemonic"] and "my-tag" in card.data.tags
    assert "bird" in card.text and FINGERPRINT in card.text and "## Limitations" in card.text
    assert 'from_pretrained("tester/trainer-unlearned")' in card.text
    expected = {
        "model.safetensors",
        REPORT_FILE,
        hub.CHART_FILE,
        "mnemonic_codes.safetensors",
        "unlearning_config.json",
    }
    assert expected <= set(repo.files)
    assert repo.files["README.md"] == (tmp_path / "run" / "README.md").read_bytes()
    _assert_token_absent(args.output_dir, local_hub)


def test_trainer_without_report_keeps_the_trainer_card(tmp_path, local_hub):
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"), hub_model_id="tester/plain", report_to="none", use_cpu=True
    )
    trainer = hub.UnlearningTrainer(model=_model(), args=args, callbacks=[_UnlearnerLikeCallback(None)])
    hub.attach_card_to_trainer(trainer, lambda: None)
    trainer.push_to_hub(token=TOKEN)
    files = local_hub.repos["tester/plain"].files
    assert REPORT_FILE not in files and b"hf-unlearn" not in files["README.md"]


# ------------------------------------------------------------------------------------------------ card text
@pytest.mark.parametrize("verification", ["verified", "incomplete", "unverified", None])
def test_card_says_forgotten_only_for_a_verified_edit(verification):
    details = {"sign": -1} if verification is None else {"verification": verification}
    text = str(hub.render_model_card(_report(details=details), model=_model()))
    claims = ("edited to stop recognising", "| **forgotten** |")
    if verification == "verified":
        assert all(c in text for c in claims) and "NOT verified" not in text
    else:
        assert not any(c in text for c in claims)
        assert "**Forgetting was NOT verified (verification: " in text and "Do not treat" in text
        assert "| **targeted (forgetting not verified)** | 1, 3 | bird, deer |" in text
    if verification == "incomplete":
        assert "still recognised" in text


def test_card_cites_the_verification_evidence():
    checks = {"codes": {"per_class": {"1": 0.0, "3": 0.0}}, "eval_dataset": {"per_class": {"1": 0.02, "3": 0.04}}}
    details = {"verification": "verified", "verification_checks": checks, "verification_tolerance": 0.05}
    text = str(hub.render_model_card(_report(details=details)))
    assert "highest accuracy on a targeted class is 0.00 on the mnemonic codes, 0.04 on the evaluation data" in text
    assert "(at most 0.05 allowed)" in text
    checks["eval_dataset"]["per_class"]["3"] = 0.71
    details.update(verification="incomplete", verification_reason="forget-class accuracy 0.71 on eval_dataset")
    text = str(hub.render_model_card(_report(details=details)))
    assert "still recognised (highest accuracy on a targeted class: 0.00 on the mnemonic codes, 0.71 on" in text
    assert "(forget-class accuracy 0.71 on eval_dataset): the forgetting is incomplete" in text


@pytest.mark.parametrize(
    "method, hyperparameters, words, not_words",
    [
        ("mnemonic", {"variant": "search", "target_parameters": ["classifier.weight"]}, "`classifier.weight`", "moved in proportion"),
        ("mnemonic", {"variant": "paper", "lambda1": 0.001, "lambda2": 10.0}, "moved in proportion", "Only "),
        ("fisher_mask", {"ratio": 0.02, "fisher_kind": "batch_true"}, "set to zero", "mnemonic codes"),
    ],
)  # fmt: skip
def test_card_describes_the_method_that_ran(method, hyperparameters, words, not_words):
    from hf_unlearn.methods import METHODS

    report = _report(method=method, hyperparameters=hyperparameters)
    text = str(hub.render_model_card(report))
    description = METHODS[method].describe(report)
    assert description in text and words in description and not_words not in description


def _audit() -> dict:
    """What ``ForgettingAudit.to_dict()`` holds after an audit with an original and two retrained models."""
    from hf_unlearn.audit import ForgettingAudit

    return ForgettingAudit(
        forget_classes=[1, 3],
        forget_labels=["bird", "deer"],
        metrics={
            "forget_error": 1.0,
            "retain_accuracy": 0.93,
            "mia_auc": 0.61,
            "probe_forget_accuracy": 0.98,
            "prototype_forget_accuracy": 0.97,
            "relearn_forget_accuracy": {1: 0.41, 10: 0.95},
            "relearn_time": 3,
            "relearn_time_censored": False,
            "ain": 0.12,
            "js_to_retrained": 0.12,
        },
        original={"forget_error": 0.02, "probe_forget_accuracy": 0.99, "relearn_forget_accuracy": {1: 0.9, 10: 0.99}},
        retrained=[
            {"forget_error": 1.0, "probe_forget_accuracy": 0.84, "relearn_forget_accuracy": {1: 0.05, 10: 0.2}},
            {"forget_error": 1.0, "probe_forget_accuracy": 0.86, "relearn_forget_accuracy": {1: 0.07, 10: 0.42}},
        ],
        standing={
            "forget_error": "within",
            "probe_forget_accuracy": "above by 0.120",
            "relearn_forget_accuracy@1": "above by 0.340",
            "relearn_forget_accuracy@10": "above by 0.530",
        },
        js_retrained_reference=0.05,
        settings={"relearn_steps": [1, 10]},
    ).to_dict()


def test_card_depth_section_from_the_audit():
    report = _report()
    text = str(hub.render_model_card(report))
    assert "## How deep is the forgetting?" in text and "Not measured: no forgetting audit was run" in text

    audit = _audit()
    report.audit = audit  # the field the report carries once audits run with unlearning
    text = str(hub.render_model_card(report))
    assert "Not measured" not in text
    section = text[text.index("## How deep is the forgetting?") : text.index("## Time taken")]
    assert "on the original model and on 2 model(s) retrained" in section
    for key, (label, meaning) in hub.card.AUDIT_METRICS.items():  # every measure taken is explained in plain words
        assert f"- **{label}**: {meaning}." in section, key
    assert "| forget error | 1.0000 | 0.0200 | 1.0000 | within the retrained range |" in section
    assert "| linear-probe accuracy | 0.9800 | 0.9900 | 0.8400 – 0.8600 | above by 0.120 |" in section
    assert "| relearn accuracy after 1 step(s) | 0.4100 | 0.9000 | 0.0500 – 0.0700 | above by 0.340 |" in section
    assert "| relearn accuracy after 10 step(s) | 0.9500 | 0.9900 | 0.2000 – 0.4200 | above by 0.530 |" in section
    assert "| relearn time | 3 | – | – | – |" in section and "| AIN (anamnesis index) | 0.1200 |" in section
    assert "| JS divergence to retrained | 0.1200 | – | – | – |" in section
    assert "within their range on 1 of 4 measures" in section
    assert "suppressed at the output rather than removed" in section
    assert "JS divergence from each other, for reference: 0.0500" in section

    deep = {**audit, "standing": {k: "within" for k in audit["metrics"]}}
    deep["standing"].update({"relearn_forget_accuracy@1": "within", "relearn_forget_accuracy@10": "within"})
    report.audit = deep
    section = str(hub.render_model_card(report)).split("## How deep is the forgetting?")[1]
    assert "cannot be told apart from a retrained model" in section and "suppressed" not in section

    alone = {"metrics": {"probe_forget_accuracy": 0.98}, "original": None, "retrained": [], "standing": {}}
    report.audit = alone
    section = str(hub.render_model_card(report)).split("## How deep is the forgetting?")[1]
    assert "No model retrained without the targeted classes was given" in section


def test_save_with_audit_publishes_the_audit_measurements_in_report_and_card(tmp_path):
    model = _model()
    processor = ViTImageProcessor(size={"height": 8, "width": 8}, image_mean=[0.5], image_std=[0.5])
    codebook = MnemonicCodebook.for_model(model)
    folder = hub.save_unlearned(tmp_path / "no13", model, _report(), processing_class=processor, codebook=codebook)
    before = _folder_bytes(folder)
    audit = {**_audit(), "model_dir": str(tmp_path / "no13"), "retrained_dirs": [str(tmp_path / "r0")]}
    (tmp_path / "audit.json").write_text(json.dumps(audit))

    for bad, argument in [(tmp_path / "missing.json", "audit"), ({"standing": {}}, "audit")]:
        with pytest.raises(ValueError, match=f"`{argument}`"):
            hub.save_with_audit(folder, bad, tmp_path / "out")
    with pytest.raises(ValueError, match="`model_dir`.*no unlearned model"):
        hub.save_with_audit(tmp_path, tmp_path / "audit.json", tmp_path / "out")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="`model_dir`.*PEFT adapter"):
        hub.save_with_audit(tmp_path / "adapter", tmp_path / "audit.json", tmp_path / "out")
    assert not (tmp_path / "out").exists()

    out = hub.save_with_audit(folder, tmp_path / "audit.json", tmp_path / "out")
    assert _folder_bytes(folder) == before  # the unlearned folder is read, never written
    saved = UnlearningReport.load(out)
    assert saved.audit == {k: v for k, v in _audit().items() if k in hub.publish.AUDIT_KEYS}
    assert "model_dir" not in saved.audit and str(tmp_path) not in json.dumps(saved.audit)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## How deep is the forgetting?" in card and "Not measured" not in card
    assert "| linear-probe accuracy | 0.9800 | 0.9900 | 0.8400 – 0.8600 | above by 0.120 |" in card
    files = set(_folder_bytes(out))
    assert {"model.safetensors", "preprocessor_config.json", "mnemonic_codes.safetensors", REPORT_FILE} <= files
    reloaded = ViTForImageClassification.from_pretrained(out)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))


def test_chart_is_skipped_with_a_note_without_matplotlib(tmp_path, monkeypatch, caplog):
    import sys

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib...` now raises ImportError
    with caplog.at_level("INFO", logger="hf_unlearn.hub.chart"):
        assert hub.plot_per_class_accuracy(_report(), tmp_path / "chart.png") is None
        out = hub.save_unlearned(tmp_path / "out", _model(), _report())
    assert "matplotlib is not installed" in caplog.text
    assert not (tmp_path / "chart.png").exists() and not os.path.exists(os.path.join(out, hub.CHART_FILE))
    text = (tmp_path / "out" / "README.md").read_text()
    assert hub.CHART_FILE not in text and "| A_R (retained accuracy) | 0.9300 | 0.9000 |" in text


# ------------------------------------------------------------------------------------------------ metadata
def test_card_metadata_follows_hub_conventions(tmp_path):
    report = _report(details={"eval_dataset": "scikit-learn digits (test split, 360 images)"})
    model = _model()
    out = hub.save_unlearned(tmp_path / "out", model, report)
    data = ModelCard.load(os.path.join(out, "README.md")).data
    assert {"machine-unlearning", "unlearning", "hf-unlearn"} <= set(data.tags)
    assert data.base_model == "google/vit-base-patch16-224" and data.base_model_relation == "finetune"
    assert {r.dataset_type for r in data.eval_results} == {"scikit-learn-digits"}  # a slug, not free text
    assert data.eval_results[0].dataset_name == "scikit-learn digits (test split, 360 images)"
    assert {"machine-unlearning", "unlearning", "hf-unlearn"} <= set(model.model_tags)  # kept by a later push

    local = hub.render_model_card(_report(base_model=str(tmp_path / "my-vit")), model=model)
    assert local.data.base_model is None and local.data.get("base_model_relation") is None

    class Adapter:  # what the card reads of a peft.PeftModel
        main_input_name = "pixel_values"
        active_adapter = "default"
        peft_config = {"default": type("C", (), {"base_model_name_or_path": "google/vit-base-patch16-224"})()}

    adapter = hub.render_model_card(_report(base_model=None), model=Adapter())
    assert adapter.data.base_model == "google/vit-base-patch16-224" and adapter.data.base_model_relation == "adapter"


def test_attaching_needs_a_trainer_that_can_publish_the_card(tmp_path):
    from transformers import Trainer

    args = TrainingArguments(output_dir=str(tmp_path / "run"), report_to="none", use_cpu=True)
    with pytest.raises(TypeError, match="`trainer`"):
        hub.attach_card_to_trainer(Trainer(model=_model(), args=args), _report())


def test_fisher_unlearner_attach_to_trainer_publishes_its_card(tmp_path, local_hub):
    from hf_unlearn import FisherUnlearner, UnlearningConfig

    model = _model()
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        hub_model_id="tester/attached",
        hub_token=TOKEN,
        report_to="none",
        use_cpu=True,
    )
    trainer = hub.UnlearningTrainer(model=model, args=args)
    unlearner = FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[1]))
    unlearner.attach_to_trainer(trainer)
    assert unlearner in trainer.callback_handler.callbacks and unlearner.trainer is trainer
    unlearner.report = _report()  # as after unlearn() in on_train_begin
    trainer.push_to_hub()
    files = local_hub.repos["tester/attached"].files
    assert b"hf-unlearn" in files["README.md"] and {REPORT_FILE, "unlearning_config.json"} <= set(files)
    _assert_token_absent(args.output_dir, local_hub)


@pytest.mark.parametrize("strategy, trainer_class", [("checkpoint", "UnlearningTrainer"), ("every_save", "UnlearningTrainer"),
                                                     ("checkpoint", "MnemonicTrainer")])  # fmt: skip
def test_checkpoint_pushes_never_upload_the_token(tmp_path, local_hub, strategy, trainer_class):
    from hf_unlearn import MnemonicConfig, MnemonicTrainer

    train = [{"pixel_values": torch.randn(1, 8, 8), "labels": i % 4} for i in range(40)]
    mnemonic = trainer_class == "MnemonicTrainer"
    args = (MnemonicConfig if mnemonic else TrainingArguments)(
        output_dir=str(tmp_path / "run"),
        push_to_hub=True,
        hub_model_id="tester/checkpoints",
        hub_token=TOKEN,
        hub_strategy=strategy,
        save_strategy="steps",
        save_steps=1,
        max_steps=2,
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=True,
        **({"mnemonic_mix_ratio": 0.8} if mnemonic else {}),
    )
    trainer = (MnemonicTrainer if mnemonic else hub.UnlearningTrainer)(model=_model(), args=args, train_dataset=train)
    assert trainer.args.hub_token == TOKEN  # still there to authenticate the uploads ...
    trainer.train()
    trainer.push_to_hub()  # waits for the checkpoint pushes still running
    files = local_hub.repos["tester/checkpoints"].files
    assert "training_args.bin" in files
    if strategy == "checkpoint":
        assert "last-checkpoint/training_args.bin" in files
    local = [p for p in _folder_bytes(args.output_dir) if p.endswith("training_args.bin")]
    assert len(local) == 3  # two checkpoints and the output folder
    for name in local:  # ... but in no saved copy of the arguments, which load back without hf_unlearn's class
        saved = torch.load(os.path.join(args.output_dir, name), weights_only=False)
        assert type(saved) is type(args) and saved.hub_token is None
        assert saved.hub_model_id == "tester/checkpoints"
        assert saved.output_dir == "run"  # a local folder by its base name, never an absolute path
    _assert_token_absent(args.output_dir, local_hub)


# ------------------------------------------------------------------------------------------------ safe saving
def test_saving_into_a_used_folder_replaces_it_whole(tmp_path):
    out = tmp_path / "out"
    model = _model()
    hub.save_unlearned(out, model, _report(), codebook=MnemonicCodebook.for_model(model))
    for stale in ("all_results.json", "training_args.bin"):  # what a training run leaves behind
        (out / stale).write_text("from an earlier run")
    (out / "checkpoint-1").mkdir()
    hub.save_unlearned(out, model, _report(metrics=False))
    names = set(_folder_bytes(out))
    assert names == {"README.md", REPORT_FILE, "config.json", "model.safetensors"}
    assert not [p for p in os.listdir(tmp_path) if p != "out"]  # no temporary folder left beside it


def _unlearner_with_report():
    from hf_unlearn import FisherUnlearner, UnlearningConfig

    unlearner = FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[1]))
    unlearner.report = _report()
    return unlearner


def test_unlearner_save_refuses_folders_that_would_lose_data(tmp_path):
    unlearner, model = _unlearner_with_report(), _model()
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep me")
    source = tmp_path / "source"
    model.save_pretrained(source)
    model.config._name_or_path = str(source)  # as after from_pretrained(source)
    before = _folder_bytes(tmp_path)
    cases = [
        (used, "exists and is not empty"),
        (source, "the folder the model was loaded from"),
        (used / "notes.txt", "is an existing file"),
        ("/proc/hf_unlearn_test/out", "cannot be written"),
        (used / "notes.txt" / "out", "is a file"),
    ]
    for output_dir, message in cases:
        with pytest.raises(ValueError, match="`output_dir`") as info:
            unlearner.save_pretrained(output_dir, model)
        assert message in str(info.value) and "\n" not in str(info.value)
    assert _folder_bytes(tmp_path) == before

    with pytest.raises(ValueError, match=r"^--output_dir '.*source' is the folder the model was loaded from"):
        hub.check_output_dir(source, input_dir=source, argument="--output_dir")  # what a command checks first
    assert hub.check_output_dir(tmp_path / "new", input_dir=source) == str(tmp_path / "new")

    unlearner.save_pretrained(used, model, overwrite_output_dir=True)
    assert not (used / "notes.txt").exists() and (used / "README.md").is_file()
    unlearner.save_pretrained(source, model, overwrite_output_dir=True)
    assert set(_folder_bytes(source)) >= {"model.safetensors", REPORT_FILE, "unlearning_config.json"}


_SLOW_SAVE = """
import os, sys, time
sys.path.insert(0, {tests!r})
from test_hub import _model, _report
from hf_unlearn import hub

model = _model()
save = model.save_pretrained

def slow_save(path, **kwargs):  # a big model: the weights take a while to write
    save(path, **kwargs)
    with open(os.path.join(path, "model-00002-of-00002.safetensors"), "wb") as f:
        f.write(b"x" * 1000)
    print("writing", flush=True)
    time.sleep(120)

model.save_pretrained = slow_save
hub.save_unlearned({out!r}, model, _report(metrics=False))
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_an_interrupted_save_leaves_the_previous_folder_intact(tmp_path, sig):
    import signal
    import subprocess
    import sys

    out = hub.save_unlearned(tmp_path / "out", _model(), _report())
    before = _folder_bytes(out)
    script = _SLOW_SAVE.format(tests=os.path.dirname(__file__), out=out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline() == b"writing\n", child.stderr.read().decode()[-2000:]
        child.send_signal(getattr(signal, sig))
        assert child.wait(timeout=60) != 0
    finally:
        child.kill()
        child.wait()
    assert _folder_bytes(out) == before  # the earlier save, byte for byte: nothing half-written in it
    leftovers = [p for p in os.listdir(tmp_path) if p != "out"]
    if sig == "SIGINT":  # Python unwinds: the temporary folder is removed
        assert leftovers == []
    else:  # killed outright: a hidden temporary folder may stay, never one that looks like the model folder
        assert all(p.startswith(".out.tmp-") for p in leftovers)


def test_no_absolute_local_path_in_any_published_file(tmp_path):
    from transformers import ViTForImageClassification

    deep = tmp_path / "home" / "alice" / "projects" / "models" / "vit-digits"
    _model().save_pretrained(deep)
    processor = ViTImageProcessor(size={"height": 8, "width": 8}, image_mean=[0.5], image_std=[0.5])
    processor.save_pretrained(deep)
    model = ViTForImageClassification.from_pretrained(deep)
    processor = ViTImageProcessor.from_pretrained(deep)
    unlearner = _unlearner_with_report()
    unlearner.report = _report(
        base_model=str(deep),
        details={"eval_dataset": f"{deep}/test.parquet (360 images)", "training": {"output_dir": str(deep)}},
    )
    unlearner._last_codebook = MnemonicCodebook.for_model(model)
    out = unlearner.save_pretrained(deep.parent / "vit-digits-no1", model, processing_class=processor)
    prefixes = {str(tmp_path).encode(), os.path.realpath(tmp_path).encode(), b"/home/alice"}
    files = _folder_bytes(out)
    assert {"README.md", REPORT_FILE, "unlearning_config.json", "mnemonic_codes.safetensors"} <= set(files)
    for name, data in files.items():
        assert not any(p in data for p in prefixes), f"{name} holds a local absolute path"
    card = ModelCard.load(os.path.join(out, "README.md"))
    assert card.data.base_model is None and "`vit-digits`" in card.text  # named by its folder's base name
    saved = UnlearningReport.load(out)
    assert saved.base_model == "vit-digits" and saved.details["eval_dataset"] == "test.parquet (360 images)"
    assert unlearner.report.base_model == str(deep)  # the caller's report is left as it was


def test_a_peft_model_is_published_in_adapter_form(tmp_path):
    peft = pytest.importorskip("peft")

    def base():
        model = _model()  # seeded: the same weights every time
        model.config._name_or_path = "google/vit-base-patch16-224"  # as if loaded from the Hub
        return model

    lora = peft.LoraConfig(target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"], r=2)
    model = peft.get_peft_model(base(), lora)
    with torch.no_grad():  # stands in for the unlearning edit of the adapter and head copy
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    out = hub.save_unlearned(tmp_path / "out", model, _report(base_model=None))
    files = set(_folder_bytes(out))
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", REPORT_FILE} <= files
    assert "model.safetensors" not in files  # the frozen base weights are not republished
    card = ModelCard.load(os.path.join(out, "README.md"))
    assert card.data.base_model == "google/vit-base-patch16-224" and card.data.base_model_relation == "adapter"
    assert card.data.library_name == "peft" and "machine-unlearning" in card.data.tags
    assert "PeftModel.from_pretrained(base," in card.text

    reloaded = peft.PeftModel.from_pretrained(base(), out).eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.eval()(pixel_values=x).logits, reloaded(pixel_values=x).logits)


# ------------------------------------------------------------------------------------------------ samples scope
ROWS_FINGERPRINT = hashlib.sha256(b"forget rows").hexdigest()
CLASS_WORDS = ("of its", "targeted classes", "class unlearning", "A_F is the accuracy", "Class-level only")


def _samples_report(verification, reason="forget rows look like held-out rows: accuracy 0.930 vs 0.950"):
    check = {"forget_rows_accuracy": 0.93, "forget_rows_loss": 0.31, "num_forget_rows": 67, "heldout_accuracy": 0.95}
    check.update(heldout_loss=0.22, num_heldout_rows=360, mia_auc=0.514, mia_auc_chance_se=0.03)
    details = {"forget_scope": "samples", "forget_rows": {"count": 67, "fingerprint": ROWS_FINGERPRINT}}
    details["verification_checks"] = {"samples": check}
    if verification is not None:
        details.update(verification=verification, verification_reason=reason)
    report = _report(metrics=False, method="ssd", forget_classes=[], forget_labels=[], details=details)
    report.retain_classes, report.retain_labels = [0, 1, 2, 3], list(LABELS.values())
    report.metrics = {"before": {**check, "forget_rows_accuracy": 1.0, "mia_auc": 0.61}, "after": check}
    report.audit = _audit()  # a class audit attached by mistake must not be shown as if it applied to the rows
    return report


@pytest.mark.parametrize("verification", ["verified", "incomplete", "unverified", None])
def test_samples_card_names_rows_by_count_and_fingerprint_and_says_forgotten_only_when_verified(verification):
    reason = "forget-row accuracy 1.000 exceeds held-out accuracy 0.950 by more than verification_tolerance 0.05"
    report = _samples_report(verification, **({} if verification == "verified" else {"reason": reason}))
    card = hub.render_model_card(report, model=_model())
    text = str(card)
    assert "67 chosen training rows" in text and f"`{ROWS_FINGERPRINT}`" in text
    assert not any(w in text for w in CLASS_WORDS), [w for w in CLASS_WORDS if w in text]
    assert "necessary check, not proof" in text  # what verification means for rows, verified or not
    # the depth section: the class audit does not apply, audit_samples does; the attached class audit is not shown
    assert "does not apply" in text and "hf_unlearn.audit.audit_samples" in text
    assert "linear-probe accuracy" not in text and "Not measured" not in text
    # forget-row accuracy, held-out accuracy and MIA AUC, before and after
    assert "| forget-row accuracy (at their training labels) | 1.0000 | 0.9300 |" in text
    assert "| held-out accuracy | 0.9500 | 0.9500 |" in text
    assert "| membership-inference AUC, forget rows vs held-out rows (0.5 = chance) | 0.6100 | 0.5140 |" in text
    metrics = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert metrics["forget-row accuracy after unlearning"] == 0.93 and metrics["held-out accuracy after unlearning"]
    if verification == "verified":
        assert "| **rows forgotten** | 67 |" in text and "NOT verified" not in text
        assert (
            "the forget rows now look like held-out data and the held-out accuracy was kept (forget rows look like "
            "held-out rows: accuracy 0.930" in text
        )
    else:
        assert "| **rows targeted (forgetting not verified)** | 67 |" in text and "rows forgotten" not in text
        assert f"**Forgetting was NOT verified (verification: {verification or 'not recorded'}).**" in text
        assert "Do not treat them as forgotten" in text
        assert (reason in text) == (verification is not None)


def test_samples_card_from_a_real_run_holds_no_row_content_or_ids(digits, tiny_vit_model, tmp_path):
    from hf_unlearn import FisherUnlearner, UnlearningConfig

    train, test = digits
    train, test = train.select(range(120)), test.select(range(120))
    rows = [3, 17, 29, 41, 58, 66, 77, 90, 101, 113]
    cfg = UnlearningConfig(
        method="fisher_noise", forget_scope="samples", allow_incomplete=True, method_config={"noise_alpha": 1e-12}
    )
    report = FisherUnlearner(cfg).unlearn(tiny_vit_model, train_dataset=train, forget_rows=rows, eval_dataset=test)
    fingerprint = report.details["forget_rows"]["fingerprint"]
    card = hub.render_model_card(report, model=tiny_vit_model)
    text = str(card)
    assert "10 chosen training rows" in text and f"`{fingerprint}`" in text
    assert not any(w in text for w in CLASS_WORDS)
    assert json.dumps(rows) not in text and ", ".join(map(str, rows)) not in text  # no row ids
    pixels = train[rows[0]]["pixel_values"].flatten().tolist()
    for k in range(0, len(pixels), 8):  # no content: no pixel row of a forget image, in any spelling
        assert (
            json.dumps(pixels[k : k + 8]) not in text and ", ".join(f"{v:.4f}" for v in pixels[k : k + 8]) not in text
        )
    verified = report.details["verification"] == "verified"
    assert ("| **rows forgotten** | 10 |" in text) == verified and ("NOT verified" in text) == (not verified)
    after = report.metrics["after"]
    assert f"| held-out accuracy | {after['heldout_accuracy']:.4f} | {after['heldout_accuracy']:.4f} |" in text
    # saved and reloaded: the card reparses and neither it nor the saved report lists the rows
    out = hub.save_unlearned(tmp_path / "out", tiny_vit_model, report)
    saved = ModelCard.load(os.path.join(out, "README.md"))
    assert saved.data.eval_results and "10 chosen training rows" in saved.text
    record = json.loads(open(os.path.join(out, REPORT_FILE)).read())
    assert record["details"]["forget_rows"] == {"count": 10, "fingerprint": fingerprint}
    assert json.dumps(rows) not in json.dumps(record) and ", ".join(map(str, rows)) not in saved.text


# ------------------------------------------------------------------------------------------------ demo depth table
def test_demo_depth_table_sets_the_method_beside_the_output_only_baseline(digits):
    """The demo's table (scripts.demo.depth_table) on a tiny run: one column per audited model against the same
    original and retrained models; a head that only suppresses the class keeps the original's probe accuracy."""
    from hf_unlearn.audit import audit_forgetting
    from hf_unlearn.data import tiny_vit
    from hf_unlearn.scripts.demo import depth_table

    train, test = digits[0].select(range(300)), digits[1].select(range(150))

    def vit(seed):
        return tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=seed).eval()

    original, retrained = vit(0), [vit(1), vit(2)]
    suppressed = vit(0)
    with torch.no_grad():
        suppressed.classifier.bias[3] = -1e4  # the output-only edit: the class is never predicted
    kw = dict(forget_classes=[3], train_dataset=train, eval_dataset=test, relearn_steps=(1,), show_progress=False)
    other = vit(5)  # stands in for an edited model whose features changed
    audit = audit_forgetting(other, original=original, retrained=retrained, **kw)
    baseline = audit_forgetting(suppressed, reference=audit, **kw)
    table = depth_table({"mnemonic": audit, "logit_suppression": baseline})
    lines = table.splitlines()
    assert lines[0].split() == ["measure", "mnemonic", "logit_suppression", "original", "retrained", "(2)"]
    rows = {line.split("  ")[0].strip(): line for line in lines[2:]}
    assert {"forget error", "linear probe, forget acc.", "prototype attack, forget acc."} <= set(rows)
    assert "relearn 1 step(s), forget acc." in rows
    probe = rows["linear probe, forget acc."].split()
    original_probe = audit.original["probe_forget_accuracy"]
    assert probe[-4] == f"{original_probe:.3f}"  # the original's column
    assert probe[-5].rstrip("*") == f"{original_probe:.3f}"  # suppression leaves the features as they were
    assert rows["forget error"].split()[-5].rstrip("*") == "1.000"
    lo, hi = (min(r["probe_forget_accuracy"] for r in audit.retrained), max(r["probe_forget_accuracy"] for r in
              audit.retrained))  # fmt: skip
    assert probe[-3] == f"{lo:.3f}" and probe[-1] == f"{hi:.3f}"
    marked = probe[-5].endswith("*")
    assert marked == (not lo - 1e-9 <= original_probe <= hi + 1e-9)  # * marks a value outside the retrained range


@pytest.mark.slow
def test_demo_prints_the_depth_table_and_its_card_has_the_depth_section(tmp_path, capsys):
    from hf_unlearn.cli import main

    refs = tmp_path / "refs"
    argv = ["demo", "--epochs", "10", "--hidden_size", "32", "--num_hidden_layers", "1", "--num_retrained", "2",
            "--retrained_dir", str(refs), "--disable_tqdm", "true"]  # fmt: skip
    assert main([*argv, "--output_dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "How deep is the forgetting? mnemonic beside logit_suppression" in out
    assert "linear probe, forget acc." in out and "retrained (2)" in out
    card = (tmp_path / "a" / "README.md").read_text()
    assert "## How deep is the forgetting?" in card and "Not measured" not in card
    assert sorted(p.name for p in refs.iterdir()) == ["seed-1", "seed-2"]
    stamp = {p: p.stat().st_mtime_ns for p in refs.glob("*/model.safetensors")}
    assert main([*argv, "--output_dir", str(tmp_path / "b")]) == 0  # the references are read from the cache
    assert {p: p.stat().st_mtime_ns for p in refs.glob("*/model.safetensors")} == stamp
    assert "retrained (2)" in capsys.readouterr().out
