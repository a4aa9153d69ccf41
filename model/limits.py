"""Every fixed limit and default of a generation request, defined once.

The sampler (model/sampling/sampler.py), the loop (model/sampling/generate.py), the CLI
(model/cli.py) and the
HTTP schemas (app/schemas.py, app/openai_schemas.py) import these; limits that depend on the
server's settings (MAX_CHARS, MAX_PROMPT_CHARS, MAX_ACTIVE) live in app/settings.py instead.

    from model.limits import MAX_SEED, MAX_TEMPERATURE
"""

from __future__ import annotations

MAX_TEMPERATURE = (
    5.0  # above this the distribution is all but uniform: nothing left to learn from the model
)
MAX_SEED = 2**63  # exclusive: seeds are 0 ≤ seed < 2^63 (a signed 64-bit int in every client)
# every Unicode code point: no char vocabulary is larger, so any bigger k keeps the same chars
MAX_TOP_K = 0x110000
MAX_LOGPROBS = 5  # top-N alternatives per generated char
MAX_STOPS = 4  # stop strings per request
MAX_STOP_CHARS = 64  # chars per stop string
MAX_REPETITION_PENALTY = (
    10.0  # CTRL suggests 1.2; at 10 a char seen in the window is all but banned
)
# as strong the other way; near 0 the logits overflow
MIN_REPETITION_PENALTY = 1 / MAX_REPETITION_PENALTY
MAX_REPETITION_WINDOW = 10_000  # chars of prompt + output; as long as the longest prompt
DEFAULT_REPETITION_WINDOW = 64
MAX_PENALTY = 2.0  # presence and frequency penalties, OpenAI's range [-2, 2]
MAX_LOGIT_BIAS = 100.0  # OpenAI's range [-100, 100]: ±100 bans or forces a char
MAX_LOGIT_BIAS_ENTRIES = 300  # OpenAI's cap; more than any char vocab
MAX_PROMPTS = 16  # prompts in one /v1 request
MAX_COMPLETIONS = 16  # /v1's `n`: completions per prompt

DEFAULT_MAX_CHARS = 500  # capped by the server's MAX_CHARS where that is lower
DEFAULT_TEMPERATURE = 0.8  # /api, the CLI and the page; /v1 follows OpenAI's 1.0
