"""``neggrad_plus``: the library's recipe for forgetting chosen training rows (``forget_scope="samples"``).

Fine-tuning on the retained rows, plus, during its first part (``forget_ascent_fraction``, default half the steps),
gradient ascent on the forget rows' loss (NegGrad+, Kurmanji et al. 2023), each row pushed up to a target loss and
no further (``relu(target - loss)``: rows are pushed to what an unseen row would get, never on to another class; an
ascent batch whose rows all sit at or above their targets adds no gradient and is not backpropagated):

- ``forget_ascent_target="auto"`` (default): ``"chance"`` when the forget rows' labels are concentrated on one class
  far beyond what rows drawn like the retained ones would show ([`poison_target`]: rows relabelled to one target
  class, a backdoor) and, with ``suspect_poison``, the model represents them apart from that class's other rows
  ([`suspected_poison`]; rows that merely share a class, a deletion request within one class, are not poison), else
  ``"probe"``;
- ``"chance"``: ``log(num_labels)`` for every row;
- ``"probe"``: per row, the loss at its label of a fresh linear probe fitted on the output layer's input features of
  64-512 retained rows (half the rows the recipe trains on; [`probe_losses`]), or of the held-out rows when the
  unlearner's check measured at least as many of them, of every label the forget rows carry, before the edit (rows
  the model never saw, at no extra pass; ``details["probe_fitted_on"]``), capped at chance: an ordinary row (a
  deletion request) is pushed only to about a held-out row's loss, a row whose label nothing retained supports
  (mislabeled) further. On a pretrained encoder the probe sees the rows' memorised features and puts most targets
  below the rows' own loss, so the ascent barely acts there;
- ``"heldout"`` (opt-in, needs ``eval_dataset``): per row, at least the probe's target, and the model's loss on the
  held-out row of the same rank (the forget rows ranked by the probe's loss, matched to the quantiles of the held-out
  losses the unlearner measured before the edit; [`heldout_targets`]): a model retrained without the rows sees them as
  held-out rows, so their losses and accuracy end up distributed like the held-out rows'. It pushes harder than the
  probe (the hardest rows past chance): on TREC-MiniLM it brings random rows' accuracy and membership AUC to
  retraining's where the probe leaves them above, at a cost in test accuracy; on digits it goes slightly below
  retraining. The unlearner's check then compares the rows with the same held-out rows that set the targets: audit
  on other held-out rows for an independent figure ([`hf_unlearn.audit.audit_samples`]).

When the forget rows are relabelled to one class (a backdoor) and only part of the poisoned rows is named, the rest
sit among the retained rows: [`suspected_poison`] finds the retained rows of that class that the model represents like
the named ones rather than like the class's other rows, and they are forgotten with them (ascent to chance, left out
of the fine-tuning; ``details["suspected_poison_rows"]`` counts them; rows that might be poison are left out of the
fine-tuning only, ``details["left_out_rows"]``). With ``known_poison`` the user says the named rows are poison (a few of
them, say, found by an audit): they go to chance whatever their labels show, and the search runs on the class most of
them carry without first testing whether they look like poison.

While the ascent pushes poison relabelled to one class away from it, half of each fine-tuning batch is drawn from the
retained rows of that class that the search scores clear of the poison (``ANCHOR_FRACTION``; ``details["anchor_rows"]``
counts the rows drawn from; an unnamed poisoned row among them would teach the trigger again; not with ``known_poison``,
where much of the poison is unfound): alone, the ascent lowers the whole class (on TREC-MiniLM with a one-word trigger,
test questions of the target class went from 5 to 52 of 81 wrong), whereas beside the class's genuine rows it can only
act on what the poisoned rows add.

The last part is plain fine-tuning on the retained rows. The budget is relative to the original training, so that one
default holds across data sets: ``finetune_fraction`` (default 0.1) of the original run's optimizer steps, read from
the ``trainer_state.json`` that ``Trainer`` writes (the model's folder, else its last ``checkpoint-*``), else from the
``training_args.json`` recipe that ``MnemonicTrainer`` saves (its epochs over the retained plus forgotten rows); the
learning rate and batch size come from the same file (the peak logged learning rate and ``train_batch_size``, or the
recipe's). ``finetune_max_steps`` sets the steps directly, ``finetune_max_seconds`` caps the wall time; without either
and without such a file the recipe makes one pass over the retained rows and says so (``details["budget_source"]``).
AdamW (weight decay 0.01), linear decay after a 10% warm-up, seeded by ``config.seed`` (the global random state is
left as it was). Only the parameters the unlearner passes are trained (a PEFT adapter's own weights on a PEFT model).

Measured against models retrained without the rows: ``benchmarks/results/samples/README.md``.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from accelerate.utils import send_to_device
from torch import nn

from ..data_utils import DatasetReader, dataset_size, labels_of, logits_from_outputs, subset
from ..utils import get_logger, unwrap_model
from . import register_method
from .base import ForgetRequest, MethodResult, UnlearningMethod, rows_sentence
from .configs import NegGradPlusConfig

if TYPE_CHECKING:
    from ..report import UnlearningReport

logger = get_logger(__name__)

DEFAULT_LEARNING_RATE = 5e-5  # TrainingArguments' default, when the original run's is unknown
DEFAULT_BATCH_SIZE = 16
WARMUP = 0.1
WEIGHT_DECAY = 0.01


def _from_recipe(path: str, n_rows: int | None) -> dict[str, Any] | None:
    """``training_args.json`` (the recipe ``MnemonicTrainer.save_model`` writes): steps = ``max_steps``, else epochs x
    batches of ``n_rows`` (the retained plus forgotten rows: the set the original was trained on)."""
    try:
        with open(path, encoding="utf-8") as f:
            recipe = json.load(f).get("recipe")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(recipe, dict):
        return None

    def number(key: str) -> float | None:
        v = recipe.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None

    batch, accum = number("per_device_train_batch_size"), number("gradient_accumulation_steps") or 1.0
    steps = number("max_steps")
    if steps is None and number("num_train_epochs") and batch and n_rows:
        steps = number("num_train_epochs") * math.ceil(n_rows / (batch * accum))
    return {
        "steps": int(round(steps)) if steps else None,
        "learning_rate": number("learning_rate"),
        "batch_size": int(batch) if batch else None,
        "source": path,
    }


def original_run(model_dir: str | os.PathLike | None, n_rows: int | None = None) -> dict[str, Any] | None:
    """What the run that trained the model in ``model_dir`` recorded: ``{"steps", "learning_rate", "batch_size",
    "source"}`` from ``trainer_state.json`` (``Trainer``; in the folder, else in its last ``checkpoint-*``), else from
    ``training_args.json`` (``MnemonicTrainer``'s recipe; steps from its epochs over ``n_rows`` training rows), or
    ``None`` when there is none (or it cannot be read). Missing entries are ``None``."""
    if not model_dir or not os.path.isdir(model_dir):
        return None
    candidates = [os.path.join(model_dir, "trainer_state.json")]
    checkpoints = glob.glob(os.path.join(model_dir, "checkpoint-*", "trainer_state.json"))

    def step_of(path: str) -> int:
        m = re.search(r"checkpoint-(\d+)", path)
        return int(m.group(1)) if m else -1

    candidates += sorted(checkpoints, key=step_of, reverse=True)
    for path in candidates:
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict):
            continue
        steps = state.get("max_steps") or state.get("global_step")
        rates = [
            e["learning_rate"]
            for e in state.get("log_history") or []
            if isinstance(e, dict) and isinstance(e.get("learning_rate"), (int, float)) and e["learning_rate"] > 0
        ]
        batch = state.get("train_batch_size")
        return {
            "steps": int(steps) if isinstance(steps, (int, float)) and steps > 0 else None,
            "learning_rate": float(max(rates)) if rates else None,
            "batch_size": int(batch) if isinstance(batch, int) and batch > 0 else None,
            "source": path,
        }
    recipe = os.path.join(model_dir, "training_args.json")
    return _from_recipe(recipe, n_rows) if os.path.isfile(recipe) else None


def plan_budget(config: Any, model: nn.Module, n_retain: int, n_forget: int = 0) -> dict[str, Any]:
    """Steps, learning rate and batch size of the recipe, and where each came from (see the module docstring)."""
    run = original_run(getattr(unwrap_model(model).config, "_name_or_path", None), n_retain + n_forget) or {}
    batch = config.finetune_batch_size or run.get("batch_size") or DEFAULT_BATCH_SIZE
    lr = config.finetune_learning_rate or run.get("learning_rate") or DEFAULT_LEARNING_RATE
    if config.finetune_max_steps is not None:
        steps, source = int(config.finetune_max_steps), "finetune_max_steps"
    elif run.get("steps"):
        steps = max(1, int(round(config.finetune_fraction * run["steps"])))
        source = (
            f"finetune_fraction {config.finetune_fraction} of the original run's {run['steps']} steps "
            f"({os.path.basename(run['source'])})"
        )
    else:
        steps = max(1, math.ceil(n_retain / batch))
        source = (
            "one pass over the retained rows: no trainer_state.json beside the model tells the original run's length "
            "(set finetune_max_steps or finetune_max_seconds)"
        )
        logger.warning("neggrad_plus: %s.", source)
    return {
        "steps": steps,
        "learning_rate": float(lr),
        "batch_size": int(batch),
        "budget_source": source,
        "learning_rate_source": "finetune_learning_rate"
        if config.finetune_learning_rate
        else (f"the original run ({os.path.basename(run['source'])})" if run.get("learning_rate") else "default 5e-5"),
        "original_run": run.get("source"),
    }


# retained rows the probe is fitted on (a forward pass each): half the rows the recipe trains on, within these bounds,
# so that the probe costs a small share of the recipe on a short budget (a pretrained text model fine-tuned briefly)
PROBE_ROWS = (64, 512)


@torch.no_grad()
def head_features(
    model: nn.Module, readers: list[tuple[DatasetReader, list[int]]], data_collator: Any
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per ``(reader, indices)``: the output layer's input features (flattened, float, on the CPU) and the labels of
    those rows, the model in eval mode (its train/eval flags restored); the pass [`hf_unlearn.evaluation.predict`]
    makes (the unlearner's check keeps the same features, ``ForgetRequest.head_features``)."""
    from ..evaluation import _predict_indices
    from .common import classification_head

    name = classification_head(model)[0].rsplit(".", 1)[0]
    head = dict(model.named_modules())[name]
    modes = {m: m.training for m in model.modules()}
    device = next(model.parameters()).device
    out = []
    try:
        model.eval()
        for reader, idx in readers:
            if not len(idx):
                out.append((torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)))
                continue
            _, y, x = _predict_indices(reader, model, list(idx), data_collator, 64, device, head)
            if x is None:
                raise ValueError(
                    f"The output layer `{name}` does not run once per row of `{reader.argument}`: the rows recipe "
                    "cannot read its input features (its probe and poison search need them; "
                    "forget_ascent_target='chance' with suspect_poison=False does without)."
                )
            out.append((x, y))
    finally:
        for m, was in modes.items():
            m.train(was)
    return out


def adamw(params: list[torch.Tensor], **kwargs: Any) -> torch.optim.AdamW:
    """AdamW with the fused kernel where the parameters' device has one (``Trainer``'s default optimizer,
    ``adamw_torch_fused``, since torch 2.8), else the plain one."""
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(params, **kwargs)


# held-out rows whose losses set the forget rows' targets (``forget_ascent_target="heldout"``)
HELDOUT_ROWS = 512


def heldout_targets(
    model: nn.Module,
    heldout: Any,
    ranking: torch.Tensor,
    data_collator: Any,
    *,
    seed: int,
    max_rows: int = HELDOUT_ROWS,
    losses: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per forget row, the model's loss on the held-out row of the same rank: forget rows ranked by ``ranking`` (a
    difficulty estimate, the probe's loss) get the matching quantiles of the model's losses on up to ``max_rows``
    held-out rows of the data set ``heldout`` (``losses``: those losses, already measured; the unlearner's check
    measures them before the edit). A model retrained without the rows sees them as it sees held-out rows: its losses
    on them are distributed like its held-out losses, its accuracy on them about its held-out accuracy."""
    if losses is None:
        from ..evaluation import predict
        from ..samples import _scores

        n_rows = dataset_size(heldout)
        pick = torch.randperm(n_rows, generator=torch.Generator().manual_seed(int(seed)))[:max_rows].tolist()
        logits, labels = predict(model, subset(heldout, sorted(pick)), data_collator=data_collator)
        losses = torch.from_numpy(_scores(logits, labels)[1]).float()
    n = len(ranking)
    order = torch.argsort(torch.argsort(ranking, stable=True), stable=True)
    return torch.quantile(losses, (order.float() + 0.5) / n)


def probe_on_heldout(
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None, max_rows: int, forget_labels: Any
) -> bool:
    """Whether [`probe_losses`] fits its probe on the held-out rows' features the check measured rather than on
    retained rows: at least ``max_rows`` of them, holding every label of the forget rows (a class the probe never
    saw would put its rows' targets at chance)."""
    heldout = (features or {}).get("heldout")
    if heldout is None or len(heldout[1]) < max_rows:
        return False
    return set(np.asarray(forget_labels).tolist()) <= set(heldout[1].tolist())


def probe_losses(
    model: nn.Module,
    forget: DatasetReader,
    retain: DatasetReader,
    data_collator: Any,
    *,
    seed: int,
    max_rows: int = PROBE_ROWS[1],
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Per forget row, the loss at its training label of a model that did not fit it, estimated without training one:
    a fresh linear probe (logistic regression) on the output layer's input features, fitted on up to ``max_rows``
    retained rows only, then read on the forget rows.

    A mislabeled or trigger-stamped row gets a high loss (the retained rows never tie its features to that label; a
    trigger direction they never show gets no weight), an ordinary row about the loss of a held-out row.

    ``features``: the features the scope's check measured before the edit (``ForgetRequest.head_features``): the
    forget rows' are read from it, and when it holds at least ``max_rows`` held-out rows, of every label the forget rows
    carry ([`probe_on_heldout`]), the probe is fitted on those (up to ``PROBE_ROWS[1]``, rows the model never saw, the
    same kind of evidence) instead of on retained rows, so that the probe costs no pass over the model.
    """
    from sklearn.linear_model import LogisticRegression

    features = features or {}
    forget_measured = features.get("forget")  # (x, y) of the forget rows, or None
    on_heldout = "heldout" in features and probe_on_heldout(
        features,
        max_rows,
        forget_measured[1] if forget_measured is not None else labels_of(forget.dataset, forget.argument),
    )
    gen, readers = torch.Generator().manual_seed(int(seed)), []
    if on_heldout:
        x_h, y_h = features["heldout"]
        pick = torch.randperm(len(y_h), generator=gen)[: PROBE_ROWS[1]].sort().values
        x_r, y_r = x_h[pick], y_h[pick]
    else:
        readers.append((retain, sorted(torch.randperm(retain.n, generator=gen)[:max_rows].tolist())))
    if forget_measured is None:
        readers.append((forget, list(range(forget.n))))
    measured = head_features(model, readers, data_collator) if readers else []
    if not on_heldout:
        x_r, y_r = measured.pop(0)
    x_f, y_f = forget_measured if forget_measured is not None else measured.pop(0)
    big = torch.full((len(y_f),), float("inf"))
    if len(torch.unique(y_r)) < 2:  # nothing to fit: every retained row of one class
        return torch.where(y_f == y_r[0], torch.zeros(len(y_f)), big)
    mean, std = x_r.mean(0), x_r.std(0) + 1e-6
    probe = LogisticRegression(max_iter=500).fit(((x_r - mean) / std).numpy(), y_r.numpy())
    log_p = torch.from_numpy(probe.predict_log_proba(((x_f - mean) / std).numpy())).float()
    column = {int(c): k for k, c in enumerate(probe.classes_)}
    known = torch.tensor([int(y) in column for y in y_f])
    at_label = torch.tensor([column.get(int(y), 0) for y in y_f])
    return torch.where(known, -log_p[torch.arange(len(y_f)), at_label], big)


def majority_label(forget_labels: Any) -> int | None:
    """The label at least half of the forget rows carry, else ``None``: a backdoor's target class when they are
    poisoned rows relabelled to one class (with ``known_poison`` the class whose retained rows are searched for the
    unnamed poison; ``None``: poison relabelled to several classes, no class to search)."""
    counts = np.bincount(np.asarray(forget_labels))  # the forget rows are never empty
    top = int(counts.argmax())
    return top if 2 * counts[top] >= counts.sum() else None


def poison_target(forget_labels: Any, retain_labels: Any, p_value: float = 1e-4) -> int | None:
    """The class holding at least half of the forget rows when they are far too concentrated on it for rows drawn
    like the retained ones (one-sided binomial test against the class's share of the retained rows, ``p < p_value``):
    the signature of poisoned rows relabelled to one target class (a backdoor). ``None`` otherwise."""
    from scipy.stats import binom

    forget_labels, retain_labels = np.asarray(forget_labels), np.asarray(retain_labels)
    top = majority_label(forget_labels)
    k, n = int(np.sum(forget_labels == top)), len(forget_labels)
    if top is None or k < 3:
        return None
    share = max(float(np.mean(retain_labels == top)), 1.0 / (len(retain_labels) + 1))
    return top if float(binom.sf(k - 1, n, share)) < p_value else None


# poison relabelled to one class: the share of each fine-tuning batch drawn from the retained rows of that class while
# the ascent runs (the ascent alone pushes the whole class down: on TREC-MiniLM its test questions lost 5-52 of 81)
ANCHOR_FRACTION = 0.5

# Unnamed poison (a backdoor whose rows are named only in part): retained rows of the poison's target class that a
# linear classifier of the output layer's input features puts with the named poisoned rows rather than with the rest
# of that class are forgotten too (see [`suspected_poison`]). Module-level defaults for now (configuration fields to be).
SUSPECT_MAX_ROWS = 4096  # retained rows of the target class scored at most (a forward pass each)
SUSPECT_THRESHOLD = 0.5  # cross-fitted probability of "like the named poisoned rows" above which a row is suspect
SUSPECT_NAMED_QUANTILE = 0.1  # ... and, in the first round, above this quantile of the named rows' own scores
SUSPECT_NULL_RATIO = 0.5  # ... only when the class's median score is below this share of the same for random rows
SUSPECT_NULL_DRAWS = 8  # sets of random rows of the class standing in for the named ones (the null); the named rows
# must also beat every one of them (a permutation test at 1/9 for rows drawn at random within the class)
SUSPECT_ROUNDS = 2  # the rows found join the named ones and the search runs again
SUSPECT_LEAVE_OUT = 0.2  # rows scored above this in the last round (not suspects) are left out of the fine-tuning,
# at most as many as the suspects found (the rows missed are fewer than those found)


def suspected_poison(
    model: nn.Module,
    forget: DatasetReader,
    retain: DatasetReader,
    data_collator: Any,
    *,
    target: int,
    forget_labels: Any,
    retain_labels: Any,
    seed: int,
    max_rows: int = SUSPECT_MAX_ROWS,
    threshold: float = SUSPECT_THRESHOLD,
    named_quantile: float = SUSPECT_NAMED_QUANTILE,
    null_ratio: float = SUSPECT_NULL_RATIO,
    null_draws: int = SUSPECT_NULL_DRAWS,
    rounds: int = SUSPECT_ROUNDS,
    leave_out: float = SUSPECT_LEAVE_OUT,
    clear: list[int] | None = None,
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[list[int], list[int]] | None:
    """Retained rows that look like unnamed copies of the named poisoned rows, and rows that might be: two lists of
    indices into ``retain`` (``(suspects, doubtful)``); ``None`` when the named rows do not stand apart from their
    class (rows that are merely of that class: a deletion request within one class, not poison).

    When the forget rows are relabelled to one ``target`` class ([`poison_target`]), the poisoned rows the user did
    not name sit among the retained rows of that class, and the model represents them like the named ones (the
    trigger it learned), not like the class's genuine rows. A logistic regression (class-balanced, C=0.1) separates
    the named rows of class ``target`` from the retained rows of that class on the output layer's input features;
    each retained row is scored by a model fitted without it (5-fold cross-fitting), and those scored above
    ``threshold`` are suspects; in the first round, also above the ``named_quantile`` quantile of the named rows'
    own (cross-fitted) scores, so that a suspect scores like the named rows themselves. Unnamed copies among the
    retained rows pull the named rows' scores down (near-identical rows sit on both sides), so that bar stays low
    when some poison is unnamed; when every poisoned row is named, the named rows score near 1 and the few genuine
    rows of the class that merely resemble them are not taken for poison. Only when the named rows stand apart from
    the class as a whole: the median retained row must score below ``null_ratio`` times the mean of what it scores
    when ``null_draws`` sets of random rows of the class stand in for the named ones, and below each of those (rows
    that are merely of that class, a deletion request within one class, score like such a set, and ``None`` is
    returned; ``null_draws=0``: no such test, the rows being known to be poison). The suspects join the named rows
    for up to ``rounds`` rounds; rows the last round scores above ``leave_out``, the highest first and at most as
    many as the suspects, are doubtful: the recipe leaves them out of its fine-tuning (so that it does not teach the
    trigger again) without pushing them away (many are genuine rows of the class, which the model keeps knowing).
    With every poisoned row named, few or no rows are suspects or left out. ``clear``: a list that receives the
    retained rows the last round scores at most ``leave_out`` (rows that look like the class's own). ``features``: as
    in [`probe_losses`] (the forget rows' features are read from it).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    named = np.flatnonzero(np.asarray(forget_labels) == target).tolist()
    candidates = np.flatnonzero(np.asarray(retain_labels) == target)
    if len(named) < 2 or len(candidates) < 2:  # nothing to compare the named rows with: the labels decide
        return [], []
    rng = np.random.default_rng(int(seed))
    if len(candidates) > max_rows:
        candidates = np.sort(rng.choice(candidates, max_rows, replace=False))
    candidates = candidates.tolist()
    measured = (features or {}).get("forget")
    if measured is not None:
        (x_c, _), x_n = head_features(model, [(retain, candidates)], data_collator)[0], measured[0][named]
    else:
        (x_n, _), (x_c, _) = head_features(model, [(forget, named), (retain, candidates)], data_collator)
    x = torch.cat([x_n, x_c])
    x = ((x - x.mean(0)) / (x.std(0) + 1e-6)).numpy()

    def scores(positive: np.ndarray) -> np.ndarray:
        folds = StratifiedKFold(n_splits=min(5, int(positive.sum())), shuffle=True, random_state=int(seed))
        probe = LogisticRegression(C=0.1, class_weight="balanced", max_iter=1000)
        return cross_val_predict(probe, x, positive, cv=folds, method="predict_proba")[:, 1]

    positive = np.r_[np.ones(len(named), dtype=bool), np.zeros(len(candidates), dtype=bool)]
    null = []
    for _ in range(null_draws):
        drawn = np.zeros(len(x), dtype=bool)
        drawn[rng.choice(len(x), len(named), replace=False)] = True
        null.append(np.median(scores(drawn)[~drawn]))
    doubtful, score = np.zeros(len(x), dtype=bool), np.zeros(len(x))
    for _ in range(rounds):
        score = scores(positive)
        bar = threshold
        if positive.sum() == len(named):  # first round: a suspect also scores like the named rows themselves
            bar = max(threshold, float(np.quantile(score[: len(named)], named_quantile)))
        found = ~positive & (score > bar)
        if (
            null
            and positive.sum() == len(named)
            and np.median(score[~positive]) >= min(null_ratio * float(np.mean(null)), min(null))
        ):
            return None  # the named rows do not stand apart from their class
        if found.sum() == (~positive).sum():
            break
        doubtful = ~positive & ~found & (score > leave_out)
        if not found.any():
            break
        positive = positive | found
    suspects = [c for c, p in zip(candidates, positive[len(named) :]) if p]
    ranked = sorted(np.flatnonzero(doubtful[len(named) :]), key=lambda k: -score[len(named) + k])
    if clear is not None:  # rows the last round scores at most ``leave_out``: the class's own
        clear += [
            c for c, p, v in zip(candidates, positive[len(named) :], score[len(named) :]) if not p and v <= leave_out
        ]
    return suspects, sorted(candidates[k] for k in ranked[: len(suspects)])


# how the model card says what each forget row was pushed up to (details["ascent_target"])
ASCENT_TARGETS = {
    "chance": "chance level",
    "probe": "the loss a linear probe fitted on the retained rows gives each of them",
    "heldout": "the losses of held-out rows of the same rank",
}


class NegGradPlus(UnlearningMethod):
    """Fine-tuning on the retained rows with forget-loss ascent up to chance level in its first part (rows only)."""

    name = "neggrad_plus"
    requires_forget_data = True
    requires_retain_data = True
    scopes = ("samples",)
    fisher_passes = ()
    uses_head_features = True

    def run(self, model: nn.Module, request: ForgetRequest) -> MethodResult:
        cfg, settings = self.config, self.method_config
        model = unwrap_model(model)
        t0 = time.perf_counter()
        retain = DatasetReader(request.retain_dataset, model, "retain_dataset")
        forget = DatasetReader(request.forget_dataset, model, "forget_dataset")
        plan = plan_budget(settings, model, retain.n, forget.n)
        steps, batch, lr = plan["steps"], plan["batch_size"], plan["learning_rate"]
        ascent_steps = int(round(settings.forget_ascent_fraction * steps))
        chance = math.log(model.config.num_labels)
        targets = torch.full((forget.n,), chance)  # per forget row, the loss the ascent pushes it up to
        target_mode = settings.forget_ascent_target
        forget_labels = labels_of(request.forget_dataset, "forget_dataset")
        retain_labels = labels_of(request.retain_dataset, "retain_dataset")
        known = settings.known_poison
        poisoned = majority_label(forget_labels) if known else poison_target(forget_labels, retain_labels)
        suspects: list[int] = []
        doubtful: list[int] = []
        rejected = probe_rows = None
        clear: list[int] | None = None  # retained rows of the poison's class that look like the class's own
        if ascent_steps and poisoned is not None and settings.suspect_poison:
            clear = []
            # the rows' labels say poison; their features must say so too (unless the user says so), and the unnamed
            # poison is forgotten with them
            found = suspected_poison(
                model,
                forget,
                retain,
                request.data_collator,
                target=poisoned,
                forget_labels=forget_labels,
                retain_labels=retain_labels,
                seed=cfg.seed,
                clear=clear,
                features=request.head_features,
                null_draws=0 if known else SUSPECT_NULL_DRAWS,  # known poison: no test that the rows look like it
            )
            if found is None:  # the named rows look like their class: a deletion request within one class
                rejected, poisoned = poisoned, None
            else:
                suspects, doubtful = found
        if target_mode == "auto":  # rows relabelled to one class (a backdoor): chance; otherwise the probe's loss
            target_mode = "chance" if known or poisoned is not None else "probe"
        if target_mode == "heldout" and request.eval_dataset is None:
            logger.warning(
                "neggrad_plus: forget_ascent_target='heldout' without eval_dataset: the probe's loss instead."
            )
            target_mode = "probe"
        if ascent_steps and target_mode in ("probe", "heldout"):
            rows = min(PROBE_ROWS[1], max(PROBE_ROWS[0], steps * batch // 2))
            probe = probe_losses(
                model,
                forget,
                retain,
                request.data_collator,
                seed=cfg.seed,
                max_rows=rows,
                features=request.head_features,
            )
            probe_rows = "held-out" if probe_on_heldout(request.head_features, rows, forget_labels) else "retained"
            targets = torch.minimum(probe, targets)
            if target_mode == "heldout":
                losses = request.eval_losses  # measured by the scope before the edit, else read here
                matched = heldout_targets(
                    model, request.eval_dataset, probe, request.data_collator, seed=cfg.seed, losses=losses
                )
                targets = torch.maximum(targets, matched)
        if suspects:  # unnamed poison: forgotten too, at chance
            targets = torch.cat([targets, torch.full((len(suspects),), chance)])
        kept = torch.tensor(sorted(set(range(retain.n)) - set(suspects) - set(doubtful)), dtype=torch.long)
        n_pool = forget.n + len(suspects)  # ascent rows: the forget rows, then the suspects (retained rows)
        # poison relabelled to one class: during the ascent, part of each fine-tuning batch holds retained rows of that
        # class, so that the push away from it is tied to what the poisoned rows have and the class's rows lack
        anchors = kept[:0]  # not with known_poison: a few rows named, much of the poison unfound among the class's
        anchored = ascent_steps and poisoned is not None and not known
        if anchored and clear is not None:  # only rows the search found clear of the poison
            anchors = torch.tensor(sorted(set(clear) - set(suspects) - set(doubtful)), dtype=torch.long)
        elif anchored:  # no search: every retained row of the class
            anchors = kept[torch.from_numpy(np.asarray(retain_labels)[kept.numpy()] == poisoned)]
        params = dict(model.named_parameters())
        trainable = [params[n] for n in request.parameters]
        flags = {n: p.requires_grad for n, p in params.items()}
        modes = {m: m.training for m in model.modules()}
        device = trainable[0].device if trainable else torch.device("cpu")
        warm = max(1, int(WARMUP * steps))
        opt = adamw(trainable, lr=lr, weight_decay=WEIGHT_DECAY)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else max(0.0, 1.0 - (s - warm) / max(1, steps - warm))
        )
        gen = torch.Generator().manual_seed(int(cfg.seed))
        taken = ascent_taken = 0
        stopped = None
        retain_loss = forget_loss = float("nan")

        def loss_of(reader: DatasetReader, idx: list[int], per_row: bool = False) -> torch.Tensor:
            inputs = reader.batch(idx, request.data_collator)
            labels = torch.as_tensor(inputs.pop("labels")).long().to(device)
            out = model(**send_to_device(inputs, device))
            logits = logits_from_outputs(out).float()
            return torch.nn.functional.cross_entropy(logits, labels, reduction="none" if per_row else "mean")

        try:
            for p in params.values():
                p.requires_grad_(False)
            for p in trainable:
                p.requires_grad_(True)
            model.train()
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(int(cfg.seed))
                order: list[int] = []
                anchor_order: list[int] = []
                while taken < steps:
                    limit = settings.finetune_max_seconds
                    if limit is not None and time.perf_counter() - t0 >= limit:
                        stopped = f"finetune_max_seconds {limit} reached"
                        break
                    n_anchor = 0
                    if len(anchors) and taken < ascent_steps:
                        n_anchor = min(int(ANCHOR_FRACTION * batch), min(batch, len(kept)) // 2)
                    take = min(batch, len(kept)) - n_anchor
                    if len(order) < take:
                        order += kept[torch.randperm(len(kept), generator=gen)].tolist()
                    idx, order = order[:take], order[take:]
                    if n_anchor:
                        if len(anchor_order) < n_anchor:
                            anchor_order += anchors[torch.randperm(len(anchors), generator=gen)].tolist()
                        idx, anchor_order = idx + anchor_order[:n_anchor], anchor_order[n_anchor:]
                    loss = loss_of(retain, idx)
                    retain_loss = float(loss.detach())
                    if taken < ascent_steps:
                        f_idx = torch.randint(n_pool, (batch,), generator=gen)
                        named, extra = f_idx[f_idx < forget.n], f_idx[f_idx >= forget.n]
                        parts = [loss_of(forget, named.tolist(), per_row=True)] if len(named) else []
                        if len(extra):
                            suspect_idx = [suspects[i - forget.n] for i in extra.tolist()]
                            parts.append(loss_of(retain, suspect_idx, per_row=True))
                        f_loss = torch.cat(parts)
                        forget_loss = float(f_loss.detach().mean())
                        f_targets = targets[torch.cat([named, extra])].to(device)
                        gap = torch.relu(f_targets - f_loss)
                        if bool((gap > 0).any()):  # else the ascent's gradient is exactly zero: no backward for it
                            loss = loss + gap.mean()
                        ascent_taken += 1
                    if not torch.isfinite(loss):
                        raise RuntimeError(
                            "neggrad_plus: the training loss became NaN/inf; lower finetune_learning_rate."
                        )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    taken += 1
        finally:
            for n, p in params.items():
                p.requires_grad_(flags[n])
                p.grad = None
            for m, was in modes.items():
                m.train(was)
        seconds = time.perf_counter() - t0
        details = {
            "steps": taken,
            "planned_steps": steps,
            "ascent_steps": ascent_taken,
            "ascent_target": target_mode if ascent_steps else None,
            "mean_ascent_target": float(targets.mean()),
            "probe_fitted_on": probe_rows,
            "poison_target": poisoned,
            "poison_rejected": rejected,
            "known_poison": known,
            "suspected_poison_rows": len(suspects),
            "left_out_rows": len(doubtful),
            "anchor_rows": len(anchors),
            "budget_source": plan["budget_source"],
            "learning_rate_source": plan["learning_rate_source"],
            "final_retain_loss": retain_loss,
            "final_forget_loss": forget_loss,
            "chance_loss": chance,
        }
        if plan["original_run"]:
            details["original_run"] = plan["original_run"]
        if stopped:
            details["stopped"] = stopped
        return MethodResult(
            details=details,
            hyperparameters={
                "steps": taken,
                "learning_rate": lr,
                "batch_size": batch,
                "finetune_fraction": settings.finetune_fraction,
                "forget_ascent_fraction": settings.forget_ascent_fraction,
                "weight_decay": WEIGHT_DECAY,
                "warmup": WARMUP,
            },
            samples={
                "retain_rows": dataset_size(request.retain_dataset),
                "forget_rows": dataset_size(request.forget_dataset),
            },
            timings={"finetune": seconds},
        )

    @classmethod
    def describe(cls, report: UnlearningReport) -> str:
        h, d = report.hyperparameters or {}, report.details or {}
        target = ASCENT_TARGETS.get(d.get("ascent_target"), "a target")
        return (
            f"The model was fine-tuned for {h.get('steps')} steps on the retained training rows (learning rate "
            f"{h.get('learning_rate')}), pushing the forgotten rows' loss up to {target} during the first "
            f"{h.get('forget_ascent_fraction')} of the steps (`neggrad_plus`)."
            + (
                f" {d['suspected_poison_rows']} retained rows that the model represented like the forgotten poisoned "
                "rows were forgotten with them."
                if d.get("suspected_poison_rows")
                else ""
            )
            + (" The forgotten rows were declared poisoned (`known_poison`)." if d.get("known_poison") else "")
            + rows_sentence(report)
        )


register_method("neggrad_plus", NegGradPlusConfig, NegGradPlus)
