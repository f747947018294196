"""What a labeler's labels depend on beyond its settings, for the fingerprints of the stages that read it: a
python labeler's module source, a classifier's or a judge's model files."""

from ..config.labelers import ClassifierLabeler, JudgeLabeler, PythonLabeler
from ..runtime.stage import fingerprint_extra
from .judge import judge_digest
from .model_labelers import model_digest
from .user_functions import source_digest


@fingerprint_extra(PythonLabeler)
def _python_source(labeler: PythonLabeler) -> dict:
    return {"module_source": source_digest(labeler.function)}


@fingerprint_extra(ClassifierLabeler)
def _classifier_files(labeler: ClassifierLabeler) -> dict:
    return {"model_files": model_digest(labeler.model)}


@fingerprint_extra(JudgeLabeler)
def _judge_files(labeler: JudgeLabeler) -> dict:
    return {"model_files": judge_digest(labeler.model)}
