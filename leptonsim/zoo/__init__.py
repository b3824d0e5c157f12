"""The model zoo: named builders of Models, and a registry to look them up by name.

Transformers are specs (zoo/spec.py) built by `transformer`; `SPECS` holds every named
one, so a scenario can start from a zoo transformer and change its sizes. DLRMs are
specs too (zoo/dlrm_spec.py) built by `dlrm`, named in `DLRMS`. Names are
case-insensitive."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from leptonsim.errors import did_you_mean
from leptonsim.models import Model
from leptonsim.zoo.cnn import resnet, resnet50, resnet101, resnet152, seed_cnn
from leptonsim.zoo.dlrm_spec import DLRMS, DLRMSpec
from leptonsim.zoo.llm import LLMS
from leptonsim.zoo.recsys import dlrm
from leptonsim.zoo.recurrent import lstm_lm
from leptonsim.zoo.spec import TransformerSpec
from leptonsim.zoo.transformer import (
    bert,
    bert_base,
    bert_large,
    gpt,
    gpt2_small,
    gpt3_175b,
    gpt_params,
    transformer,
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
    **{name: partial(dlrm, spec) for name, spec in DLRMS.items()},
    **{name: partial(transformer, spec) for name, spec in LLMS.items()},
}
SPECS: dict[str, TransformerSpec] = dict(LLMS)


def _lookup(name: str, table: dict) -> str:
    key = name.lower() if isinstance(name, str) else name
    if key not in table:
        hint = f"; {did_you_mean(key, table) or 'known: ' + ', '.join(sorted(table))}"
        raise KeyError(f"unknown model {name!r}{hint}")
    return key


def get_spec(name: str) -> TransformerSpec:
    """The zoo transformer called `name` as a spec; KeyError with a suggestion if unknown."""
    return SPECS[_lookup(name, SPECS)]


def get_dlrm(name: str) -> DLRMSpec:
    """The zoo DLRM called `name` as a spec; KeyError with a suggestion if unknown."""
    return DLRMS[_lookup(name, DLRMS)]


def get_model(name: str) -> Model:
    """Build the zoo model called `name`; KeyError with a suggestion if unknown."""
    return ZOO[_lookup(name, ZOO)]()


__all__ = [
    "DLRMS",
    "SPECS",
    "ZOO",
    "DLRMSpec",
    "TransformerSpec",
    "bert",
    "bert_base",
    "bert_large",
    "dlrm",
    "get_dlrm",
    "get_model",
    "get_spec",
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
    "transformer",
]
