"""The model zoo: named builders of Models, and a registry to look them up by name."""

from __future__ import annotations

from collections.abc import Callable

from leptonsim.errors import did_you_mean
from leptonsim.models import Model
from leptonsim.zoo.cnn import resnet, resnet50, resnet101, resnet152, seed_cnn
from leptonsim.zoo.recsys import dlrm
from leptonsim.zoo.recurrent import lstm_lm
from leptonsim.zoo.transformer import (
    bert,
    bert_base,
    bert_large,
    gpt,
    gpt2_small,
    gpt3_175b,
    gpt_params,
)

ZOO: dict[str, Callable[[], Model]] = {
    "seed_cnn": seed_cnn,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "lstm_lm": lstm_lm,
    "bert_base": bert_base,
    "bert_large": bert_large,
    "gpt2_small": gpt2_small,
    "gpt3_175b": gpt3_175b,
    "dlrm": dlrm,
}


def get_model(name: str) -> Model:
    """Build the zoo model called `name`; KeyError with a suggestion if unknown."""
    try:
        builder = ZOO[name]
    except KeyError:
        hint = f"; {did_you_mean(name, ZOO) or 'known: ' + ', '.join(ZOO)}"
        raise KeyError(f"unknown model {name!r}{hint}") from None
    return builder()


__all__ = [
    "ZOO",
    "bert",
    "bert_base",
    "bert_large",
    "dlrm",
    "get_model",
    "gpt",
    "gpt2_small",
    "gpt3_175b",
    "gpt_params",
    "lstm_lm",
    "resnet",
    "resnet50",
    "resnet101",
    "resnet152",
    "seed_cnn",
]
