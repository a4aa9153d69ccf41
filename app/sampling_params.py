"""The sampling controls of a request body → `model.sampling.sampler.SamplingParams`, for both API
surfaces.

`/api` keys `logit_bias` by char (`{"\\n": -5}`); `/v1` by char id as a string (`{"0": -5}`), the
index in the model's vocabulary that `GET /api/models` lists as `chars`.  A char or id the model
does not have is a 422 naming `logit_bias`; the ranges are checked by the schemas.

    sampling = api_sampling(params, loaded.vocab)        # app/routes/api.py
    sampling = openai_sampling(params, loaded.vocab)     # app/routes/openai.py
"""

from __future__ import annotations

from typing import Any

from app.errors import ApiError
from model.limits import DEFAULT_REPETITION_WINDOW
from model.sampling import SamplingParams
from model.vocab import Vocab


def _extras(params: Any) -> dict[str, Any]:
    """The controls both surfaces share, with neutral values where a body leaves them out."""
    window = getattr(params, "repetition_window", None)
    return {
        "min_p": getattr(params, "min_p", None),
        "repetition_penalty": getattr(params, "repetition_penalty", None) or 1.0,
        "repetition_window": DEFAULT_REPETITION_WINDOW if window is None else window,
        "presence_penalty": params.presence_penalty or 0.0,
        "frequency_penalty": params.frequency_penalty or 0.0,
    }


def api_sampling(params: Any, vocab: Vocab) -> SamplingParams:
    bias: list[tuple[int, float]] = []
    for ch, value in (params.logit_bias or {}).items():
        if ch not in vocab:
            message = (
                f"{ch!r} (U+{ord(ch):04X}) is not in the model's vocabulary: "
                "remove it (GET /api/models lists them)."
            )
            raise ApiError(422, message, param="logit_bias")
        bias.append((int(vocab.encode(ch)[0]), float(value)))
    return SamplingParams(
        params.temperature, params.top_k, params.top_p, logit_bias=tuple(bias), **_extras(params)
    )


def openai_sampling(params: Any, vocab: Vocab, default_temperature: float) -> SamplingParams:
    bias: list[tuple[int, float]] = []
    for key, value in (params.logit_bias or {}).items():
        if not key.isdigit() or int(key) >= len(vocab):
            message = (
                f"Use char ids from 0 to {len(vocab) - 1} as keys: "
                "a char's index in GET /api/models' chars."
            )
            raise ApiError(422, message, param="logit_bias")
        if any(int(key) == seen for seen, _ in bias):  # "67" and "067": one char twice
            raise ApiError(422, f"Give char id {int(key)} one bias, not two.", param="logit_bias")
        bias.append((int(key), float(value)))
    t = default_temperature if params.temperature is None else params.temperature
    return SamplingParams(t, params.top_k, params.top_p, logit_bias=tuple(bias), **_extras(params))
