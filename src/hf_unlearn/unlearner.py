"""UnlearningConfig and FisherUnlearner: forget whole classes by Fisher-guided weight edits.

``FisherUnlearner`` works standalone (``unlearner.unlearn(model, ...)``) or as a ``TrainerCallback``: added to a
Trainer whose train set is the remaining data, it edits the model in ``on_train_begin``, so training then
fine-tunes the edited model on the remaining data. Per method, as a callback:

- ``mnemonic``: edits from the codebook alone (given to the unlearner, or found in the model's folder); the
  following training is optional (with ``num_train_epochs=0`` nothing else happens).
- ``fisher_mask``: needs ``forget_dataset``; the retain Fisher comes from ``retain_dataset`` or, when not given,
  the Trainer's train set; masking is then followed by fine-tuning (the Fisher-masking recipe).
- ``ssd`` and ``fisher_noise``: as ``fisher_mask`` (forget set given, the train set is the retain set).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback

from .fisher import compute_fisher, dataset_size
from .methods.common import classification_head, count_changed, match_parameters, snapshot
from .methods.fisher_mask import fisher_mask_, scored_parameters
from .methods.fisher_noise import fisher_noise_
from .methods.mnemonic import mnemonic_paper_, mnemonic_search_
from .methods.ssd import ssd_
from .mnemonic.codebook import MnemonicCodebook
from .report import UnlearningReport
from .utils import get_logger, id2label_of, resolve_classes, unwrap_model

logger = get_logger(__name__)

METHODS = ("mnemonic", "fisher_mask", "ssd", "fisher_noise")
CONFIG_FILE = "unlearning_config.json"


@dataclass
class UnlearningConfig:
    """What to forget and how. Every field has the papers' default; ``method`` picks which fields apply.

    Save/load with [`save_pretrained`] / [`from_pretrained`] (a sorted JSON file recording the library version).
    """

    # Parameters that control what is forgotten
    method: str = field(default="mnemonic", metadata={"help": f"Unlearning method, one of {METHODS}."})
    forget_classes: list[str] = field(
        default_factory=list, metadata={"help": "Classes to forget: ids or label names (e.g. 3 or 'LOC')."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for anything random (Fisher-noise draws)."})
    target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Parameters the edit may touch (module/parameter names, wildcards allowed). Default: the output "
            "layer for mnemonic 'search', every parameter for the other methods."
        },
    )

    # Parameters that control the mnemonic method
    mnemonic_variant: str = field(
        default="search",
        metadata={"help": "'search' (ours: data-free step search on the codes) or 'paper' (lambda1/lambda2)."},
    )
    mnemonic_margin: float = field(
        default=1.0,
        metadata={"help": "search: forget codes must end with margin <= -mnemonic_margin x their original margin."},
    )
    mnemonic_retain_margin: float = field(
        default=0.25,
        metadata={"help": "search: retained codes must keep at least this fraction of their original margin."},
    )
    mnemonic_direction: str = field(
        default="code",
        metadata={
            "help": "search: sign of the weight edit, 'code' (ascent on the code's loss) or 'weight' (shrink the "
            "output rows; generalised better to real data on a weakly trained ViT in our tests)."
        },
    )
    lambda1: float = field(default=1e-3, metadata={"help": "paper: step where no weight stands out (MNIST 1e-3)."})
    lambda2: float = field(default=10.0, metadata={"help": "paper: cap of the largest step in a tensor (MNIST 10)."})

    # Parameters that control Fisher masking
    mask_ratio: float = field(default=0.02, metadata={"help": "fisher_mask: fraction of scored weights zeroed."})
    mask_fisher_kind: str = field(
        default="batch_true", metadata={"help": "fisher_mask: Fisher kind ('batch_true' as the authors, 'empirical')."}
    )

    # Parameters that control the peer baselines
    ssd_alpha: float = field(default=10.0, metadata={"help": "ssd: selection threshold (10; 5 for ViT in SSD)."})
    ssd_lambda: float = field(default=1.0, metadata={"help": "ssd: dampening constant."})
    noise_alpha: float = field(default=1e-6, metadata={"help": "fisher_noise: noise scale alpha."})

    # Parameters that control the Fisher passes
    fisher_batch_size: int = field(default=16, metadata={"help": "Samples per Fisher chunk / mini-batch."})
    max_forget_samples: int | None = field(default=None, metadata={"help": "Cap on forget samples for the Fisher."})
    max_retain_samples: int | None = field(default=None, metadata={"help": "Cap on retain samples for the Fisher."})

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {self.method!r}.")
        if isinstance(self.forget_classes, (int, str)):
            self.forget_classes = [self.forget_classes]
        self.forget_classes = list(self.forget_classes)
        if self.mnemonic_direction not in ("code", "weight"):
            raise ValueError(f"`mnemonic_direction` must be 'code' or 'weight', got {self.mnemonic_direction!r}.")
        if self.mnemonic_variant not in ("search", "paper"):
            raise ValueError(f"`mnemonic_variant` must be 'search' or 'paper', got {self.mnemonic_variant!r}.")
        for name in ("mnemonic_margin", "lambda1", "lambda2", "ssd_alpha", "ssd_lambda", "noise_alpha"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0 or v != v or v == float("inf"):
                raise ValueError(f"`{name}` must be a positive finite number, got {v!r}.")
        if not 0.0 <= self.mnemonic_retain_margin < 1.0:
            raise ValueError(f"`mnemonic_retain_margin` must lie in [0, 1), got {self.mnemonic_retain_margin!r}.")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"`mask_ratio` must lie in (0, 1), got {self.mask_ratio!r}.")
        if self.mask_fisher_kind not in ("batch_true", "empirical", "true", "batch"):
            raise ValueError(f"`mask_fisher_kind` is not a Fisher kind: {self.mask_fisher_kind!r}.")
        if int(self.fisher_batch_size) < 1:
            raise ValueError(f"`fisher_batch_size` must be >= 1, got {self.fisher_batch_size}.")
        for name in ("max_forget_samples", "max_retain_samples"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ValueError(f"`{name}` must be >= 1 or None, got {v}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        from . import __version__

        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, CONFIG_FILE)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({**self.to_dict(), "hf_unlearn_version": __version__}, f, indent=2, sort_keys=True)
            f.write("\n")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> UnlearningConfig:
        path = os.path.join(directory, CONFIG_FILE) if os.path.isdir(directory) else str(directory)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"`directory` {str(directory)!r} holds no {CONFIG_FILE}.")
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


def _versions() -> dict[str, str]:
    import accelerate
    import transformers

    from . import __version__

    return {
        "hf_unlearn": __version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "accelerate": accelerate.__version__,
    }


def _check_finite(model: nn.Module) -> None:
    for n, p in unwrap_model(model).named_parameters():
        # a NaN/inf anywhere makes the sum non-finite; only then look element by element (sums can overflow)
        if not torch.isfinite(p.detach().sum()) and not torch.isfinite(p).all():
            raise ValueError(f"`model` parameter {n!r} holds NaN or inf; unlearning needs finite weights.")


class _ShuffledUnion:
    """Rows of two data sets in one seeded random order (SSD's full-data pass), read lazily."""

    def __init__(self, first: Any, second: Any, seed: int = 0):
        self.parts = (first, second)
        self.n_first = dataset_size(first)
        n = self.n_first + dataset_size(second)
        self.order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = self.order[i]
        part, k = (self.parts[0], j) if j < self.n_first else (self.parts[1], j - self.n_first)
        if isinstance(part, dict):
            return {key: v[k] for key, v in part.items()}
        return part[k]


class FisherUnlearner(TrainerCallback):
    """Forgets whole classes of a transformers classifier, standalone or as a ``TrainerCallback``.

    Args:
        config: an [`UnlearningConfig`].
        accelerator: an ``accelerate.Accelerator``; with several processes the Fisher is computed on shards and
            reduced, and every rank applies the same edit.
        codebook / forget_dataset / retain_dataset / data_collator / eval_dataset: defaults for
            [`unlearn`], used by the callback.
    """

    def __init__(
        self,
        config: UnlearningConfig,
        accelerator: Any = None,
        *,
        codebook: MnemonicCodebook | None = None,
        forget_dataset: Any = None,
        retain_dataset: Any = None,
        data_collator: Any = None,
        eval_dataset: Any = None,
    ):
        if not isinstance(config, UnlearningConfig):
            raise TypeError(f"`config` must be an UnlearningConfig, got {type(config).__name__}.")
        self.config = config
        self.accelerator = accelerator
        self.codebook = codebook
        self.forget_dataset = forget_dataset
        self.retain_dataset = retain_dataset
        self.data_collator = data_collator
        self.eval_dataset = eval_dataset
        self.report: UnlearningReport | None = None
        self._done = False

    # ------------------------------------------------------------------ validation
    def _validate(self, model, codebook, forget_dataset, retain_dataset) -> tuple[list[int], list[int]]:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch nn.Module (a transformers model), got {type(model).__name__}.")
        id2label = id2label_of(model)
        if not self.config.forget_classes:
            raise ValueError("`forget_classes` is empty: name at least one class to forget.")
        forget = resolve_classes(self.config.forget_classes, id2label, argument="forget_classes")
        retain = [c for c in id2label if c not in forget]
        if not retain:
            raise ValueError("`forget_classes` names every class of the model; at least one class must remain.")
        method = self.config.method
        if method == "mnemonic":
            if codebook is None:
                raise ValueError(
                    "`codebook` is required for method 'mnemonic': train with MnemonicTrainer and load the codes "
                    "with MnemonicCodebook.from_pretrained(model_dir)."
                )
            if not isinstance(codebook, MnemonicCodebook):
                raise TypeError(f"`codebook` must be a MnemonicCodebook, got {type(codebook).__name__}.")
            codebook.check_compatible(model, argument="codebook")
        else:
            if forget_dataset is None:
                raise ValueError(f"`forget_dataset` is required for method {method!r}.")
            if dataset_size(forget_dataset) == 0:
                raise ValueError("`forget_dataset` is empty.")
            if retain_dataset is None:
                raise ValueError(f"`retain_dataset` is required for method {method!r}.")
            if dataset_size(retain_dataset) == 0:
                raise ValueError("`retain_dataset` is empty.")
        _check_finite(model)
        return forget, retain

    def _fingerprint(self, forget: list[int], codebook, forget_dataset) -> str:
        h = hashlib.sha256()
        h.update(json.dumps({"method": self.config.method, "forget_classes": forget}, sort_keys=True).encode())
        if codebook is not None:
            h.update(codebook.fingerprint().encode())
        if forget_dataset is not None:
            h.update(str(dataset_size(forget_dataset)).encode())
            fp = getattr(forget_dataset, "_fingerprint", None)
            if fp:
                h.update(str(fp).encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ the main entry point
    def unlearn(
        self,
        model: nn.Module,
        *,
        codebook: MnemonicCodebook | None = None,
        forget_dataset: Any = None,
        retain_dataset: Any = None,
        data_collator: Any = None,
        eval_dataset: Any = None,
    ) -> UnlearningReport:
        """Edits ``model`` in place so that it forgets ``config.forget_classes``; returns an [`UnlearningReport`].

        Args:
            model: the classifier (unwrapped or DDP-wrapped; the edit goes to the underlying weights).
            codebook: the model's [`MnemonicCodebook`] (method ``mnemonic``).
            forget_dataset: samples of the forget classes (methods ``fisher_mask``, ``ssd``, ``fisher_noise``).
            retain_dataset: samples of the remaining classes (same methods).
            data_collator: collator for the data sets (e.g. ``DataCollatorWithPadding`` for text).
            eval_dataset: optional labelled test set; when given, ``report.metrics`` holds before/after metrics.

        Every input is checked before any weight changes; errors name the argument at fault.
        """
        codebook = codebook if codebook is not None else self.codebook
        forget_dataset = forget_dataset if forget_dataset is not None else self.forget_dataset
        retain_dataset = retain_dataset if retain_dataset is not None else self.retain_dataset
        data_collator = data_collator if data_collator is not None else self.data_collator
        eval_dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        model = unwrap_model(model)
        forget, retain = self._validate(model, codebook, forget_dataset, retain_dataset)
        if eval_dataset is not None and dataset_size(eval_dataset) == 0:
            raise ValueError("`eval_dataset` is empty.")
        id2label = id2label_of(model)
        cfg = self.config
        metrics: dict[str, Any] | None = None
        if eval_dataset is not None:
            from .evaluation import unlearning_metrics

            metrics = {"before": unlearning_metrics(model, eval_dataset, forget, data_collator=data_collator)}

        names = match_parameters(model, cfg.target_modules)
        timings: dict[str, float] = {}
        samples: dict[str, int] = {}
        t_start = time.perf_counter()
        fkw = dict(data_collator=data_collator, batch_size=cfg.fisher_batch_size, accelerator=self.accelerator)
        if cfg.method == "mnemonic":
            if cfg.target_modules is None and cfg.mnemonic_variant == "search":
                names = classification_head(model)
            saved = snapshot(model, names)
            t0 = time.perf_counter()
            if cfg.mnemonic_variant == "search":
                details = mnemonic_search_(
                    model,
                    codebook,
                    forget,
                    names,
                    margin=cfg.mnemonic_margin,
                    retain_margin=cfg.mnemonic_retain_margin,
                    direction=cfg.mnemonic_direction,
                    accelerator=self.accelerator,
                )
            else:
                details = mnemonic_paper_(
                    model,
                    codebook,
                    forget,
                    names,
                    lambda1=cfg.lambda1,
                    lambda2=cfg.lambda2,
                    accelerator=self.accelerator,
                )
            timings["fisher_and_edit"] = time.perf_counter() - t0
            samples = {"codes": details.pop("num_codes")}
            hyper = {"variant": cfg.mnemonic_variant, "target_parameters": names}
            hyper.update(
                {
                    "margin": cfg.mnemonic_margin,
                    "retain_margin": cfg.mnemonic_retain_margin,
                    "direction": cfg.mnemonic_direction,
                }
                if cfg.mnemonic_variant == "search"
                else {"lambda1": cfg.lambda1, "lambda2": cfg.lambda2}
            )
        else:
            if cfg.method == "fisher_mask":
                scored = scored_parameters(model)
                names = [n for n in names if n in scored]
                kind = cfg.mask_fisher_kind
            elif cfg.method == "ssd":
                kind = "batch"
            else:
                kind = "true"
            t0 = time.perf_counter()
            f_f, n_f = (None, 0)
            if cfg.method != "fisher_noise":
                f_f, n_f = compute_fisher(
                    model,
                    forget_dataset,
                    kind=kind,
                    parameters=names,
                    max_samples=cfg.max_forget_samples,
                    return_count=True,
                    **fkw,
                )
            if cfg.method == "ssd":
                # I_D over the whole training set D in shuffled mini-batches, as SSD does: batches that mix forget
                # and retain samples (averaging pure-forget and pure-retain batches caps I_Df / I_D and can make
                # SSD select nothing)
                whole = _ShuffledUnion(forget_dataset, retain_dataset, seed=cfg.seed)
                cap = None
                if cfg.max_forget_samples is not None or cfg.max_retain_samples is not None:
                    cap = (cfg.max_forget_samples or len(whole)) + (cfg.max_retain_samples or len(whole))
                f_r, n_r = compute_fisher(
                    model, whole, kind=kind, parameters=names, max_samples=cap, return_count=True, **fkw
                )
            else:
                f_r, n_r = compute_fisher(
                    model,
                    retain_dataset,
                    kind=kind,
                    parameters=names,
                    max_samples=cfg.max_retain_samples,
                    return_count=True,
                    **fkw,
                )
            timings["fisher"] = time.perf_counter() - t0
            samples = {"forget": n_f, "retain": n_r} if cfg.method != "fisher_noise" else {"retain": n_r}
            if cfg.method == "ssd":
                samples = {"forget": n_f, "full": n_r}
            if kind in ("batch", "batch_true"):
                samples = {f"{k}_batches": v for k, v in samples.items()}
            saved = snapshot(model, names)
            t0 = time.perf_counter()
            if cfg.method == "fisher_mask":
                details = fisher_mask_(model, f_f, f_r, ratio=cfg.mask_ratio)
                hyper = {"ratio": cfg.mask_ratio, "fisher_kind": kind}
            elif cfg.method == "ssd":
                details = ssd_(model, f_r, f_f, alpha=cfg.ssd_alpha, lam=cfg.ssd_lambda)
                hyper = {"alpha": cfg.ssd_alpha, "lambda": cfg.ssd_lambda}
            else:
                details = fisher_noise_(
                    model, f_r, alpha=cfg.noise_alpha, forget=forget, head=classification_head(model), seed=cfg.seed
                )
                hyper = {"alpha": cfg.noise_alpha, "seed": cfg.seed}
            timings["edit"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_start
        changed = count_changed(model, saved)
        if eval_dataset is not None:
            from .evaluation import unlearning_metrics

            metrics["after"] = unlearning_metrics(model, eval_dataset, forget, data_collator=data_collator)
        self.report = UnlearningReport(
            method=cfg.method,
            forget_classes=forget,
            forget_labels=[id2label[c] for c in forget],
            retain_classes=retain,
            retain_labels=[id2label[c] for c in retain],
            num_parameters_changed=changed,
            num_parameters_total=sum(p.numel() for p in model.parameters()),
            fisher_samples=samples,
            timings=timings,
            hyperparameters=hyper,
            details=details,
            metrics=metrics,
            forget_request_fingerprint=self._fingerprint(forget, codebook, forget_dataset),
            base_model=getattr(model.config, "_name_or_path", None) or None,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            versions=_versions(),
        )
        self._last_codebook = codebook
        self._done = True
        logger.info(
            "Forgot classes %s with %s in %.3fs (%d weights changed)", forget, cfg.method, timings["total"], changed
        )
        return self.report

    # ------------------------------------------------------------------ callback hooks
    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if self._done or model is None:
            return
        retain = self.retain_dataset
        collator = self.data_collator
        if retain is None and train_dataloader is not None and self.config.method != "mnemonic":
            retain = train_dataloader.dataset
            collator = collator or train_dataloader.collate_fn
        codebook = self.codebook
        if codebook is None and self.config.method == "mnemonic":
            path = getattr(unwrap_model(model).config, "_name_or_path", "")
            for folder in (path, args.output_dir):
                if folder and MnemonicCodebook.exists(folder):
                    codebook = MnemonicCodebook.from_pretrained(folder)
                    break
        self.unlearn(model, codebook=codebook, retain_dataset=retain, data_collator=collator)

    # ------------------------------------------------------------------ publishing
    def _require_report(self) -> UnlearningReport:
        if self.report is None:
            raise RuntimeError("Call `unlearn(...)` (or train with this callback) before saving or pushing.")
        return self.report

    def save_pretrained(
        self,
        output_dir: str | os.PathLike,
        model: nn.Module,
        *,
        processing_class: Any = None,
        include_codebook: bool = True,
    ) -> str:
        """Writes the unlearned model, its processing class, the codebook (optional), the unlearning record
        (``unlearning_report.json``), the config, the per-class chart and the model card into ``output_dir``
        (main process only). Call after [`unlearn`]."""
        return self._save(output_dir, model, processing_class=processing_class, include_codebook=include_codebook)

    def _save(self, output_dir, model, *, processing_class, include_codebook, repo_id=None) -> str:
        from . import hub

        report = self._require_report()
        codebook = getattr(self, "_last_codebook", None) or self.codebook
        return hub.save_unlearned(
            output_dir,
            unwrap_model(model),
            report,
            processing_class=processing_class,
            codebook=codebook if include_codebook else None,
            config=self.config,
            repo_id=repo_id,
            accelerator=self.accelerator,
        )

    def push_to_hub(
        self,
        repo_id: str,
        model: nn.Module,
        *,
        processing_class: Any = None,
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
        include_codebook: bool = True,
        output_dir: str | os.PathLike | None = None,
        endpoint: str | None = None,
    ) -> str | None:
        """Saves locally first (``output_dir``, default ``./<repo name>``), then uploads the folder to ``repo_id``
        (``create_repo(exist_ok=True)`` + ``upload_folder``). A failed upload raises ``hub.HubPushError`` and
        leaves the local folder complete; calling again retries. Returns the commit URL (``None`` off rank 0)."""
        from . import hub

        if not isinstance(repo_id, str) or not repo_id.strip():
            raise ValueError("`repo_id` must be a non-empty string such as 'user/model-name'.")
        report = self._require_report()
        output_dir = output_dir or repo_id.rstrip("/").split("/")[-1]
        self._save(
            output_dir, model, processing_class=processing_class, include_codebook=include_codebook, repo_id=repo_id
        )
        return hub.push_unlearned(
            repo_id,
            output_dir,
            private=private,
            token=token,
            revision=revision,
            commit_message=commit_message or f"Unlearn classes {report.forget_labels} with {report.method}",
            endpoint=endpoint,
            accelerator=self.accelerator,
        )

    def on_push_begin(self, args, state, control, **kwargs):
        from . import hub

        hub.on_push_begin(
            self.report,
            args,
            kwargs.get("model"),
            processing_class=kwargs.get("processing_class"),
            codebook=getattr(self, "_last_codebook", None) or self.codebook,
            config=self.config,
            trainer=getattr(self, "trainer", None),
        )
