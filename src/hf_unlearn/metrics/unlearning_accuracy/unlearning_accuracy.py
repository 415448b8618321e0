"""Forget / retain / test accuracy of a class-unlearning run, as an `evaluate` module.

The numbers are ``hf_unlearn.evaluation.accuracy_split``'s (one implementation). Load it offline with
``evaluate.load(hf_unlearn.evaluation.metric_path("unlearning_accuracy"))``.
"""

import evaluate
import numpy as np

from hf_unlearn.evaluation import accuracy_split, metric_info

_DESCRIPTION = """
Accuracy split by the classes a model was asked to forget:
forget_accuracy (A_F) is the accuracy on samples whose reference is a forget class, forget_error (E_F) is
1 - A_F, retain_accuracy (A_R) is the accuracy on the samples of the other classes and test_accuracy the
accuracy on all samples. A model that forgot a class completely has E_F = 1 and, ideally, A_R unchanged.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
    forget_classes (list of int): ids of the forgotten classes (one int is accepted too).
Returns:
    forget_accuracy (float or None): A_F; None when no reference is a forget class.
    forget_error (float or None): E_F = 1 - A_F.
    retain_accuracy (float or None): A_R; None when every reference is a forget class.
    test_accuracy (float): accuracy over all samples.
    num_forget_samples (int), num_retain_samples (int): how many samples each accuracy is over.
Examples:
    >>> metric = evaluate.load(metric_path("unlearning_accuracy"))
    >>> metric.compute(predictions=[1, 1, 2, 2], references=[0, 1, 2, 0], forget_classes=[0])["forget_error"]
    1.0
"""

_CITATION = """
@article{yamashita2023one,
  title={One-Shot Machine Unlearning with Mnemonic Code},
  author={Yamashita, Tomoya and Yamada, Masanori and Shibata, Takashi},
  journal={arXiv preprint arXiv:2306.05670},
  year={2023}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class UnlearningAccuracy(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, predictions_dtype="int64")

    def _compute(self, predictions, references, forget_classes=None):
        if forget_classes is None:
            raise ValueError("`forget_classes` is required: compute(..., forget_classes=[ids of forgotten classes]).")
        if isinstance(forget_classes, (int, np.integer)):
            forget_classes = [forget_classes]
        forget_classes = [int(c) for c in forget_classes]
        if not forget_classes:
            raise ValueError("`forget_classes` is empty; name at least one forgotten class id.")
        if len(references) == 0:
            raise ValueError("`references` is empty; add predictions and references to compute accuracies.")
        return accuracy_split(predictions, references, forget_classes)
