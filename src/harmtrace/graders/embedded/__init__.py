"""The embedded grader: supervised, calibrated harm classifiers trained on human labels.

Per harm category one :class:`~harmtrace.graders.calibration.CalibratedLinear` trained on
the records whose category label is known (three-valued logic, see
:mod:`harmtrace.graders.labels`), plus one for each severe sub-label (H2, S3, V2) that
gates severity 3. Severity and confidence follow :mod:`harmtrace.graders.severity`,
relevance follows :mod:`harmtrace.graders.relevance`.

One more classifier of the same kind, the *harm head*, learns whether a text asks for
(moderation: contains) harm of any kind (:func:`~harmtrace.graders.labels.harm_targets`),
and gives ``prob_harmful``, the prompt-level harm score. The category classifiers cannot
serve as one: most harmful requests of the prompt sets lie outside the four categories and
are negatives for all four, so the categories learn that the form of a harmful request is
*not* evidence of hate, sexual content, violence or self-harm. The harm head learns the
opposite from the same rows. It does not change the four categories' probabilities or
severities. Its call ``harmful`` thresholds ``prob_harmful`` where the out-of-fold F1 is
highest with both classes weighted equally (:func:`class_balanced`), so the call does not
follow the share of harm among the training rows. Prior shift leaves it raw.

Modules: :mod:`.heads` fits the classifiers, :mod:`.model` holds them
(:class:`EmbeddedGrader`), :mod:`.cross_fit` makes the out-of-fold scores and trains,
:mod:`.persistence` saves and loads, :mod:`.grading` turns scores into judgments,
:mod:`.spec` and :mod:`.backend` are the registered ``embedded`` backend and its config,
:mod:`.checks` what that config asks of the rest, :mod:`.scorer` the moderation scorer;
this package is the backend's training interface (``load_model``, ``train_grader``, ...).

Typical use::

    model = EmbeddedGrader(extractor="tfidf").fit(moderation_records)
    model.save("results/graders/embedded")
    oof = oof_scores(moderation_records, extractor="tfidf")          # training set itself
    judgments = grade_records(model, moderation_records, prompt_scores=oof)
    judgments = grade_records(EmbeddedGrader.load("results/graders/embedded"), other_records)
"""

from harmtrace.graders.embedded.backend import EmbeddedBackend
from harmtrace.graders.embedded.columns import (
    GRADER_NAME,
    GRADER_VERSION,
    HARM_COLUMN,
    HARM_FLAG,
    score_columns,
)
from harmtrace.graders.embedded.cross_fit import (
    fold_assignments,
    fold_strata,
    oof_scores,
    train_grader,
    training_frame,
    with_embeddings,
)
from harmtrace.graders.embedded.grading import (
    dialogue_scores,
    grade_records,
    grade_texts,
    overall_severity,
    score_conveyed,
)
from harmtrace.graders.embedded.heads import class_balanced, record_weights
from harmtrace.graders.embedded.model import EmbeddedGrader
from harmtrace.graders.embedded.persistence import (
    MANIFEST_FILE,
    MODEL_FILE,
    OOF_FILE,
    oof_for_texts,
    stored_oof_scores,
    text_digest,
)
from harmtrace.graders.embedded.scorer import EmbeddedScorer
from harmtrace.graders.embedded.spec import CompareSpec, EmbeddedSpec, RefusalSpec, TransferSpec
from harmtrace.graders.features import DEFAULT_EXTRACTOR  # read from here by the CLI

# The training interface (harmtrace.graders.base.TrainingAPI) the backend names in
# ``training_api``: the verbs that train, evaluate and load the model reach it through it.
load_model = EmbeddedGrader.load
load_scorer = EmbeddedScorer.load

__all__ = [
    "DEFAULT_EXTRACTOR",
    "GRADER_NAME",
    "GRADER_VERSION",
    "HARM_COLUMN",
    "HARM_FLAG",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "OOF_FILE",
    "CompareSpec",
    "EmbeddedBackend",
    "EmbeddedGrader",
    "EmbeddedScorer",
    "EmbeddedSpec",
    "RefusalSpec",
    "TransferSpec",
    "class_balanced",
    "dialogue_scores",
    "fold_assignments",
    "fold_strata",
    "grade_records",
    "grade_texts",
    "load_model",
    "load_scorer",
    "oof_for_texts",
    "oof_scores",
    "overall_severity",
    "record_weights",
    "score_columns",
    "score_conveyed",
    "stored_oof_scores",
    "text_digest",
    "train_grader",
    "training_frame",
    "with_embeddings",
]
