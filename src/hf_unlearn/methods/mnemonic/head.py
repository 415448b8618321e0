"""One-shot class forgetting from mnemonic codes alone (arXiv 2306.05670), and our data-free variant.

Both start from the diagonal empirical Fisher of each class's codes (one forward/backward per code, no training
data): ``f_F`` over the forget classes' codes, ``f_R`` over the retained classes' codes, and the ratio
``eta = f_F / f_R`` per weight (computed as ``exp(log f_F - log f_R)``, NaN -> 0, +inf -> largest finite).

``variant="paper"`` is the paper's perturbation: for every parameter tensor ``alpha = min(lambda1, lambda2 /
max(eta))``, ``w +/- alpha * eta``, keeping the sign that scores higher on ``(1 - acc on forget codes) + acc on
retained codes``. On a small ViT it is fragile: which lambdas work depends on the class.

``variant="search"`` (default) is ours. Edits spread over the whole network make
the codes a poor proxy for real data (codes forgotten, class kept), whereas edits confined to the output layer,
which every input of a class goes through, move real data and codes together. So, per forget class ``c`` and per
target tensor, the direction is ``d_c = eta_c / max(eta_c) * sign(dL(code_c, c)/dw)``, an ascent step on the
loss of ``c``'s codes weighted towards the weights that matter to ``c`` and not to the others (with
``direction="weight"`` the sign of a weight matrix's step is ``-sign(w)`` instead: its rows shrink), and
the step ``s_c`` is searched on the codes themselves: the smallest step at which every code of ``c`` is rejected
as firmly as it was once accepted (margin <= -margin * its original margin), checked jointly when several classes
are forgotten at once, and backed off if a retained code would lose more than ``1 - retain_margin`` of its
margin. No lambda to tune per data set, no training data, a few dozen forward passes on the codes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from accelerate.utils import send_to_device
from torch import nn

from ...fisher import FISHER_FLOOR, compute_fisher, fisher_mode
from ...mnemonic.codebook import MnemonicCodebook
from ...utils import get_logger, unwrap_model
from ..base import ForgetRequest, MethodResult, UnlearningMethod
from ..common import classification_head, logits_of, margins, match_parameters, restore_, snapshot

if TYPE_CHECKING:
    from ...report import UnlearningReport

logger = get_logger(__name__)


def fisher_ratio(f_forget: torch.Tensor, f_retain: torch.Tensor) -> torch.Tensor:
    """``f_forget / f_retain`` computed in log space; NaN -> 0 and +inf -> the largest finite float."""
    eta = torch.exp(torch.log(f_forget.clamp_min(FISHER_FLOOR)) - torch.log(f_retain.clamp_min(FISHER_FLOOR)))
    return torch.nan_to_num(eta, nan=0.0, posinf=torch.finfo(eta.dtype).max)


def per_class_code_fisher(
    model: nn.Module, codebook: MnemonicCodebook, names: list[str], accelerator: Any = None
) -> tuple[dict[int, dict[str, torch.Tensor]], int]:
    """Empirical Fisher of each class's codes: ``{class_id: {name: tensor}}`` and the number of codes used."""
    out, total = {}, 0
    for c in sorted(set(codebook.class_ids.tolist())):
        f, n = compute_fisher(
            model,
            codebook.as_inputs([c], with_labels=True),
            kind="empirical",
            parameters=names,
            accelerator=accelerator,
            batch_size=16,
            floor=FISHER_FLOOR,
            return_count=True,
            show_progress=False,
        )
        out[c] = f
        total += n
    return out, total


def _mean(fishers: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {n: torch.stack([f[n] for f in fishers]).mean(0) for n in fishers[0]}


def _code_score(model: nn.Module, codebook: MnemonicCodebook, forget: list[int]) -> tuple[float, float, float]:
    inputs = codebook.as_inputs(with_labels=True)
    pred = logits_of(model, inputs).argmax(-1)
    is_forget = torch.isin(inputs["labels"], torch.tensor(forget))
    ok = pred == inputs["labels"]
    acc_f = ok[is_forget].float().mean().item()
    acc_r = ok[~is_forget].float().mean().item() if (~is_forget).any() else 1.0
    return (1.0 - acc_f) + acc_r, acc_f, acc_r


@torch.no_grad()
def mnemonic_paper_(
    model: nn.Module,
    codebook: MnemonicCodebook,
    forget: list[int],
    names: list[str],
    *,
    lambda1: float = 1e-3,
    lambda2: float = 10.0,
    accelerator: Any = None,
) -> dict[str, Any]:
    """The paper's perturbation, in place. Returns what was done (sign, per-tensor alphas, code accuracies)."""
    model = unwrap_model(model)
    with torch.enable_grad():
        per_class, n_codes = per_class_code_fisher(model, codebook, names, accelerator)
    retain = [c for c in per_class if c not in forget]
    f_f = _mean([per_class[c] for c in forget])
    f_r = _mean([per_class[c] for c in retain])
    params = dict(model.named_parameters())
    delta, alphas = {}, {}
    for n in names:
        eta = fisher_ratio(f_f[n], f_r[n])
        alphas[n] = min(lambda1, lambda2 / max(eta.max().item(), 1e-30))
        delta[n] = (alphas[n] * eta).to(params[n].dtype)
    saved = snapshot(model, names)
    scores = {}
    for sign in (1, -1):
        restore_(model, saved)
        for n in names:
            params[n].add_(sign * delta[n])
        scores[sign] = _code_score(model, codebook, forget)
    best = max(scores, key=lambda s: scores[s][0])
    restore_(model, saved)
    for n in names:
        params[n].add_(best * delta[n])
    return {
        "sign": "A (+)" if best == 1 else "B (-)",
        "code_accuracy_forget": scores[best][1],
        "code_accuracy_retain": scores[best][2],
        "num_codes": n_codes,
        "max_alpha": max(alphas.values()),
    }


def _fast_head_logits(model: nn.Module, names: list[str], inputs: dict[str, torch.Tensor]):
    """When the edit touches only the output ``nn.Linear``, the search needs no full forward: the head's input on
    the codes is computed once and the logits re-derived from it. Returns ``None`` when that does not hold."""
    modules = dict(model.named_modules())
    owners = {n.rsplit(".", 1)[0] for n in names}
    if len(owners) != 1 or not isinstance(modules.get(next(iter(owners))), nn.Linear):
        return None
    head = modules[next(iter(owners))]
    seen: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    try:
        reference = logits_of(model, inputs)
    finally:
        handle.remove()
    if len(seen) != 1:
        return None

    def fast() -> torch.Tensor:
        return torch.nn.functional.linear(seen[0], head.weight, head.bias).float().cpu()

    if fast().shape != reference.shape or not torch.allclose(fast(), reference, atol=1e-4, rtol=1e-4):
        return None  # the model post-processes the head's output: use full forwards
    fast.features = seen[0].float().cpu()  # (N, d): the head's input on every code
    fast.head_name = next(iter(owners))
    return fast


def _head_grads(fast, labels: torch.Tensor, masked: list[int]) -> dict[str, torch.Tensor]:
    """Per-code gradients of the cross-entropy on the output layer, in closed form: for ``z = W h + b``,
    ``dL/dW = (p - y) h^T`` and ``dL/db = p - y`` (``masked`` classes leave the softmax). Shapes (N, C, d), (N, C)."""
    logits = fast()
    if masked:
        logits = logits.index_fill(1, torch.tensor(masked), float("-inf"))
    err = torch.softmax(logits, -1) - torch.nn.functional.one_hot(labels, logits.shape[1]).float()  # (N, C)
    out = {f"{fast.head_name}.weight": err[:, :, None] * fast.features[:, None, :]}
    out[f"{fast.head_name}.bias"] = err
    return out


@torch.no_grad()
def mnemonic_search_(
    model: nn.Module,
    codebook: MnemonicCodebook,
    forget: list[int],
    names: list[str],
    *,
    margin: float = 1.0,
    retain_margin: float = 0.25,
    initial_step: float = 1e-2,
    growth: float = 2**0.25,
    max_steps: int = 80,
    direction: str = "code",
    accelerator: Any = None,
) -> dict[str, Any]:
    """Our data-free variant (see the module docstring), in place. Returns the steps found and code margins."""
    model = unwrap_model(model)
    params = dict(model.named_parameters())
    inputs = codebook.as_inputs(with_labels=True)
    labels = inputs["labels"]
    is_retain = ~torch.isin(labels, torch.tensor(forget))
    fast = _fast_head_logits(model, names, inputs)
    closed_form = fast is not None and set(names) <= {f"{fast.head_name}.weight", f"{fast.head_name}.bias"}
    if closed_form:
        # one forward of the codes serves the Fisher, the directions and the whole search
        g = _head_grads(fast, labels, masked=[])
        per_class = {
            int(c): {n: (g[n][labels == c] ** 2).mean(0).clamp_min(FISHER_FLOOR) for n in names}
            for c in labels.unique()
        }
        n_codes = len(labels)
    else:
        with torch.enable_grad():
            per_class, n_codes = per_class_code_fisher(model, codebook, names, accelerator)
    retain = [c for c in per_class if c not in forget]
    f_r = _mean([per_class[c] for c in retain])

    code_logits = fast or (lambda: logits_of(model, inputs))

    def code_margins() -> torch.Tensor:
        # forget codes compete with retained classes only: losing to another forgotten class is not forgetting
        logits = code_logits()
        return torch.where(is_retain, margins(logits, labels), margins(logits, labels, rivals=retain))

    m0 = code_margins()  # (N,) original code margins
    if (m0 <= 0).any():
        bad = sorted(set(labels[m0 <= 0].tolist()))
        logger.warning(
            "The model misclassifies the codes of classes %s: was it trained with MnemonicTrainer? Forgetting "
            "from codes is unreliable when the codes were not learned.",
            bad,
        )
    target = -margin * m0.clamp_min(1.0)  # forget codes must end at or below this margin
    keep = retain_margin * m0  # retained codes must stay at or above this margin...
    guarded = is_retain & (m0 > 0)  # ...if they were classified correctly in the first place
    is_forget = {c: labels == c for c in forget}

    # direction per forget class: Fisher-ratio weighted ascent on that class's code loss
    directions: dict[int, dict[str, torch.Tensor]] = {}
    for c in forget:
        eta = {n: fisher_ratio(per_class[c][n], f_r[n]) for n in names}
        others = [o for o in forget if o != c]
        if closed_form:
            g = _head_grads(fast, labels, masked=others)
            grads = [g[n][labels == c].mean(0) for n in names]
        else:
            grads = _autograd_code_grads(model, codebook, c, others, names)
        directions[c] = {}
        for n, g in zip(names, grads):
            sign = torch.sign(g if g is not None else torch.zeros_like(eta[n]))
            if direction == "weight" and params[n].dim() == 2:
                # shrink the row towards zero: lowers the class's logit for every input aligned with the row,
                # not only for inputs that resemble the code
                sign = -torch.sign(params[n].detach())
            directions[c][n] = (eta[n] / eta[n].max().clamp_min(1e-30)).cpu() * sign.cpu()
    saved = snapshot(model, names)

    def apply(steps: dict[int, float]) -> torch.Tensor:
        restore_(model, saved)
        for c, s in steps.items():
            for n in names:
                params[n].add_((s * directions[c][n]).to(params[n].device, params[n].dtype))
        return code_margins()

    def forgotten(m: torch.Tensor, c: int) -> bool:
        return bool((m[is_forget[c]] <= target[is_forget[c]]).all())

    # 1) each class alone: smallest step that rejects its codes
    steps: dict[int, float] = {}
    for c in forget:
        s = initial_step
        for _ in range(max_steps):
            if forgotten(apply({c: s}), c):
                break
            s *= growth
        steps[c] = s
    # 2) jointly: grow the steps of classes whose codes are not yet rejected
    m = apply(steps)
    for _ in range(max_steps):
        pending = [c for c in forget if not forgotten(m, c)]
        if not pending:
            break
        for c in pending:
            steps[c] *= growth
        m = apply(steps)
    # 3) back off while a retained code would lose too much of its margin
    backed_off = 0
    while guarded.any() and bool((m[guarded] < keep[guarded]).any()) and backed_off < max_steps:
        steps = {c: s / growth for c, s in steps.items()}
        m = apply(steps)
        backed_off += 1
    complete = all(forgotten(m, c) for c in forget)
    if not complete:
        logger.warning(
            "Mnemonic search: could not reject every forget code without breaking retained codes; forgetting may be "
            "incomplete (steps %s).",
            steps,
        )
    if accelerator is not None and getattr(accelerator, "num_processes", 1) > 1:
        # every rank searched on identical inputs; make the final weights bit-identical regardless
        from accelerate.utils import broadcast

        for n in names:
            params[n].copy_(broadcast(params[n].detach().clone(), from_process=0))
    return {
        "steps": {str(c): float(s) for c, s in steps.items()},
        "complete": complete,
        "backed_off": backed_off,
        "num_codes": n_codes,
        "code_margin_before": {
            "forget": m0[~is_retain].tolist(),
            "retain_min": float(m0[is_retain].min()) if is_retain.any() else None,
        },
        "code_margin_after": {
            "forget": m[~is_retain].tolist(),
            "retain_min": float(m[is_retain].min()) if is_retain.any() else None,
        },
    }


def _autograd_code_grads(model, codebook, c, others, names):
    """Gradient of the mean cross-entropy on class ``c``'s codes (``others`` out of the softmax), by autograd."""
    params = dict(model.named_parameters())
    code = codebook.as_inputs([c], with_labels=True)
    with torch.enable_grad(), fisher_mode(model, set(names)):  # eval mode, grads for names; restored after
        device = params[names[0]].device
        logits = model(**send_to_device({k: v for k, v in code.items() if k != "labels"}, device)).logits.float()
        # the other forgotten classes leave the softmax, so the ascent cannot move c's mass onto them
        if others:
            logits = logits.index_fill(1, torch.tensor(others, device=logits.device), float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, code["labels"].to(device))
        return torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)


class Mnemonic(UnlearningMethod):
    """Forgetting from the model's mnemonic codes alone, no training data (``variant`` "search" or "paper")."""

    name = "mnemonic_head"
    requires_codebook = True
    fisher_passes = ("empirical on the codes of each class",)

    def target_parameters(self, model: nn.Module) -> list[str]:
        if self.config.target_modules is None and self.method_config.mnemonic_variant != "paper":
            return classification_head(model)
        return match_parameters(model, self.config.target_modules)

    def run(self, model: nn.Module, request: ForgetRequest) -> MethodResult:
        cfg = self.method_config
        t0 = time.perf_counter()
        if cfg.mnemonic_variant != "paper":
            edit = mnemonic_search_
            settings = {
                "margin": cfg.mnemonic_margin,
                "retain_margin": cfg.mnemonic_retain_margin,
                "direction": cfg.mnemonic_direction,
            }
        else:
            edit = mnemonic_paper_
            settings = {"lambda1": cfg.lambda1, "lambda2": cfg.lambda2}
        details = edit(
            model,
            request.codebook,
            request.forget_classes,
            request.parameters,
            **settings,
            accelerator=self.accelerator,
        )
        elapsed = time.perf_counter() - t0
        return MethodResult(
            details=details,
            hyperparameters={
                "variant": "paper" if cfg.mnemonic_variant == "paper" else "search",
                "target_parameters": request.parameters,
                **settings,
            },
            samples={"codes": details.pop("num_codes")},
            timings={"fisher_and_edit": elapsed},
        )

    @classmethod
    def describe(cls, report: UnlearningReport) -> str:
        h = report.hyperparameters
        targets = h.get("target_parameters") or []
        where = f"the parameters {', '.join(f'`{t}`' for t in targets)}" if targets else "the model's weights"
        codes = (
            "the mnemonic codes (fixed random inputs, one set per class, learned during training), not on training "
            "data"
        )
        if h.get("variant") == "paper":
            return (
                f"Diagonal Fisher information was computed on {codes}; {where} were moved in proportion to the "
                f"ratio of the forgotten classes' Fisher to the retained classes' (step capped by lambda1="
                f"{h.get('lambda1')}, lambda2={h.get('lambda2')})."
            )
        return (
            f"Only {where} changed. For each forgotten class, a step weighted by the ratio of its Fisher information "
            f"to the retained classes' (computed on {codes}) was grown until the class's codes were rejected, "
            "while the retained classes' codes stayed classified correctly."
        )
