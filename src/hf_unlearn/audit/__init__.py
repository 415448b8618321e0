"""How deep is the forgetting? Tests that tell a class that is gone from a class that is only hidden.

Lowering a forgotten class's output bias gives perfect output metrics (E_F, A_R, a loss-based MIA) in no time, yet
the network still knows the class. [`audit_forgetting`] measures what output metrics cannot, each on the model, on
the ``original`` model and on models ``retrained`` without the class, with one protocol and one seed:

- ``probe_forget_accuracy``: a standardised multinomial logistic regression (scikit-learn) fitted on the head's
  input features of the training split (all classes); its accuracy on the forget classes' eval samples. A model
  retrained without the class still separates it somewhat: compare with the retrained models, never with 0.
- ``prototype_forget_accuracy``: the head-rewrite attack (training-free): each forgotten class's head row becomes
  the mean feature of ``prototype_shots`` of its training samples, scaled to the mean norm of the other rows, and
  its bias the mean of the other biases; accuracy on the forget classes' eval samples.
- ``relearn_forget_accuracy``: ``{k: accuracy}`` after k full-model Adam steps on one fixed batch of forget-class
  and retained training samples (on a copy), plus ``relearn_time`` (steps until the forget accuracy reaches
  ``relearn_target`` x the original's) and its ratio to the retrained models', ``ain`` (Anamnesis Index,
  arXiv 2201.05629).
- ``js_to_retrained``: Jensen-Shannon divergence (natural log) between the model's softmax and each retrained
  model's on the forget classes' eval samples (mean), against the retrained models' divergence from each other.
- ``forget_error``, ``retain_accuracy``, ``test_accuracy`` on the eval split and ``mia_auc`` (the loss-score attack
  of [`hf_unlearn.evaluation.membership_inference_auc`]: forget-class training vs eval samples, computed from the
  logits of the feature passes).

``ForgettingAudit.standing`` says per metric where the model stands against the retrained models' range.

The features are the classification head's input (the last ``nn.Linear`` with ``num_labels`` outputs), caught
by a forward hook with the model in eval mode: BERT's pooled output after dropout, ViT's layer-normed [CLS] token.
Each model's features and logits are extracted once and reused by the probe, the prototype attack (which runs
the head alone on the cached features) and the MIA, so an audit costs about one forward pass over the training split
(or ``max_probe_samples`` of it), one over the eval split and a few optimiser steps per model. Collated batches are
cached (up to 256 MB) and reused by every model of the audit and by audits given it as ``reference``.

The audited models are never changed: passes run without gradients and restore every submodule's train/eval
mode; the relearn steps and the prototype rewrite work on copies.

For forgotten training rows rather than classes, [`audit_samples`] (``audit/samples.py``) compares the rows with
held-out rows (accuracy at their labels, loss distribution, MIA AUC, wrong-label rate, backdoor attack success rate)
against retrained models.
"""

from .core import audit_forgetting
from .measures import head_module
from .result import ForgettingAudit
from .samples import SamplesAudit, attack_success_rate, audit_samples

__all__ = [
    "ForgettingAudit",
    "SamplesAudit",
    "attack_success_rate",
    "audit_forgetting",
    "audit_samples",
    "head_module",
]
