"""Every reading works on an LSTM, a GRU and a plain RNN, or says why not (issue: the comparison).

Scoring reads any cell; the cell finder and Inside look at h (and c where the cell has one); a
request for the c of a GRU or an RNN is refused with a message naming `what`.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.cells import Stack
from model.reading import Probe, Reading
from model.reading.finder import best_cells, correlations
from model.vocab import Vocab

TEXT = 'a "quoted" line (here)\nand more\n' * 20
VOCAB = Vocab.from_chars(sorted(set(TEXT)))


@pytest.fixture(scope="module", params=["lstm", "gru", "rnn"])
def stack(request) -> Stack:
    import keras

    from model.cells.network import NetworkConfig, build_model

    keras.utils.set_random_seed(0)
    config = NetworkConfig(
        vocab_size=len(VOCAB), embedding_dim=4, units=8, layers=2, dropout=0.0, cell=request.param
    )
    return Stack.from_keras(build_model(config))


def test_scoring_reads_every_cell(stack: Stack) -> None:
    summary = Reading(stack, VOCAB, TEXT[:60]).run().summary()
    assert summary["scored_chars"] == 60 and np.isfinite(summary["nats_per_char"])


def test_the_finder_uses_the_states_the_cell_has(stack: Stack) -> None:
    r = correlations(stack, VOCAB, TEXT)
    assert sorted(r) == (["c", "h"] if stack.cell == "lstm" else ["h"])
    found = best_cells(r)
    assert all(cell["what"] in r for entry in found.values() for cell in entry["cells"])


def test_inside_on_c_says_why_not_for_a_cell_without_one(stack: Stack) -> None:
    if stack.cell == "lstm":
        Reading(stack, VOCAB, "a line", probe=Probe(0, (1,), "c")).run()
        return
    with pytest.raises(ValueError, match=r'^what: .*no cell state c: ask for "h"'):
        Reading(stack, VOCAB, "a line", probe=Probe(0, (1,), "c"))
