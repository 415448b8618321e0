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
- ``reset_relearn_forget_accuracy``: ``{k: accuracy}`` of the same relearn steps after the forgotten classes' head
  rows (as the head applies them) are set to the mean retained row and bias, on every model alike: a rewritten head
  neither helps nor hurts, so a bias trick relearns like the original (REFERENCE §8).
- ``js_to_retrained``: Jensen-Shannon divergence (natural log) between the model's softmax and each retrained
  model's on the forget classes' eval samples (mean), against the retrained models' divergence from each other.
- ``distinguisher_accuracy``: can an observer tell the model from retraining by its outputs? A standardised
  logistic regression on the log-softmax of every forget-class sample (training and eval rows) is fitted on half of
  the samples to tell one retrained model from the model, and tested on the other half against another retrained
  model (mean over ordered pairs; needs two or more). Each retrained model's own value (leave-one-out; with two
  references, the pair on held-out inputs) gives the chance level, ``distinguisher_reference``.
- ``forget_error``, ``retain_accuracy``, ``test_accuracy`` on the eval split and ``mia_auc`` (the loss-score attack
  of [`hf_unlearn.evaluation.membership_inference_auc`]: forget-class training vs eval samples, computed from the
  logits of the feature passes).

``ForgettingAudit.standing`` says per metric where the model stands against the retrained models' range;
``ForgettingAudit.two_sided`` judges the targets of indistinguishability (probe, prototype, reset relearn within the
retrained mean ± max(2 std, 3 points); JS <= 1.5x the retrained models' mutual JS; distinguisher <= their own + 0.1),
flagging a model *below* the range as well: it forgets more than retraining and is recognisable as edited.
References retrained without the forgotten labels (fewer classes, ids shifted) are matched by label names.

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
