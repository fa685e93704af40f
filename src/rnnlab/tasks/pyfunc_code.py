"""The code of every run's MLflow model ("models from code"; tasks/mlflow_model.py logs it): MLflow runs this
file when it loads the model, which then reads its weights from the model's files as tensors only."""

from mlflow.models import set_model

from rnnlab.tasks.mlflow_model import RunModel

set_model(RunModel())
