"""Threshold membership-inference attack on per-sample scores, as an `evaluate` module.

The AUC is ``hf_unlearn.evaluation.mia_auc_from_scores``'s (the library's one membership-inference AUC). Load it
offline with ``evaluate.load(hf_unlearn.evaluation.metric_path("membership_inference"))``.
"""

import evaluate
import numpy as np
from sklearn.metrics import roc_curve

from hf_unlearn.evaluation import metric_info, mia_auc_from_scores

_DESCRIPTION = """
How well a threshold on a per-sample score separates training members from non-members.
Scores are oriented so that higher means "more likely a member", e.g. the negative cross-entropy loss or
the negative prediction entropy. For class forgetting, members are the forget-class training samples and
non-members the forget-class test samples: a model retrained without the class gives an AUC of about 0.5.
"""

_KWARGS_DESCRIPTION = """
Args:
    member_scores (list of float): scores of the members (samples seen in training).
    nonmember_scores (list of float): scores of the non-members.
    Alternatively predictions (scores) and references (1 for a member, 0 for a non-member).
Returns:
    auc (float): ROC AUC of the attack; 0.5 is chance, 1.0 perfect separation.
    attack_accuracy (float): best balanced accuracy (mean of the true-positive and true-negative rates) over
        all thresholds "member if score >= threshold".
    threshold (float): the threshold reaching attack_accuracy.
    num_members (int), num_nonmembers (int).
Examples:
    >>> metric = evaluate.load(metric_path("membership_inference"))
    >>> metric.compute(member_scores=[-0.1, -0.2], nonmember_scores=[-2.0, -3.0])["auc"]
    1.0
"""

_CITATION = """
@inproceedings{shokri2017membership,
  title={Membership Inference Attacks Against Machine Learning Models},
  author={Shokri, Reza and Stronati, Marco and Song, Congzheng and Shmatikov, Vitaly},
  booktitle={IEEE Symposium on Security and Privacy},
  year={2017}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MembershipInference(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, predictions_dtype="float64")

    def compute(self, *, member_scores=None, nonmember_scores=None, **kwargs):
        # evaluate appends inputs_description to this docstring, so it must exist
        """Computes the attack from ``member_scores`` and ``nonmember_scores`` (or predictions and references)."""
        if member_scores is None and nonmember_scores is None:
            return super().compute(**kwargs)
        if member_scores is None or nonmember_scores is None:
            raise ValueError("Give both `member_scores` and `nonmember_scores`.")
        member_scores = [float(s) for s in member_scores]
        nonmember_scores = [float(s) for s in nonmember_scores]
        return super().compute(
            predictions=member_scores + nonmember_scores,
            references=[1] * len(member_scores) + [0] * len(nonmember_scores),
            **kwargs,
        )

    def _compute(self, predictions, references):
        scores = np.asarray(predictions, dtype=np.float64)
        is_member = np.asarray(references, dtype=np.int64)
        num_members = int((is_member == 1).sum())
        num_nonmembers = int((is_member == 0).sum())
        if num_members == 0 or num_nonmembers == 0:
            raise ValueError(
                f"Membership inference needs members and non-members; got {num_members} `member_scores` and "
                f"{num_nonmembers} `nonmember_scores`."
            )
        if not np.isfinite(scores).all():
            raise ValueError("The scores hold NaN or infinite values.")
        fpr, tpr, thresholds = roc_curve(is_member, scores)
        best = 1 + int(np.argmax((tpr - fpr)[1:]))  # thresholds[0] is +inf: nobody is called a member
        return {
            "auc": mia_auc_from_scores(scores[is_member == 1], scores[is_member == 0]),
            "attack_accuracy": float((1.0 + tpr[best] - fpr[best]) / 2.0),
            "threshold": float(thresholds[best]),
            "num_members": num_members,
            "num_nonmembers": num_nonmembers,
        }
