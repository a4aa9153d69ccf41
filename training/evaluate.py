"""Held-out loss of a trained model, with the recurrent state carried across the whole text.

    python -m training.evaluate --model model/pretrained/shakespeare --corpus data.txt

The held-out text (the last 10% of the corpus) is cut into a few long contiguous streams
that run side by side through the serving step (an LSTM, GRU or RNN: model/cells); each char is
scored with the state of
everything before it in its stream, as the model is used when generating.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from model.cells import LSTMStack
from model.sampling import log_softmax
from model.vocab import Vocab


def held_out_loss(stack: LSTMStack, ids: np.ndarray, streams: int = 8) -> float:
    """Mean negative log-likelihood in nats/char of ids[1:] given the chars before them."""
    ids = np.asarray(ids, np.int32)
    streams = max(1, min(streams, (len(ids) - 1) // 2))
    length = (len(ids) - 1) // streams
    blocks = ids[: streams * length + 1]
    inputs = np.stack([blocks[k * length : (k + 1) * length] for k in range(streams)])
    targets = np.stack([blocks[k * length + 1 : (k + 1) * length + 1] for k in range(streams)])
    state = stack.zero_state(streams)
    rows = np.arange(streams)
    total = 0.0
    for t in range(length):
        logits = stack.step(inputs[:, t], state)
        total -= float(log_softmax(logits)[rows, targets[:, t]].sum())
    return total / (streams * length)


def remap(ids: np.ndarray, corpus_vocab: Vocab, model_vocab: Vocab) -> np.ndarray:
    """Corpus ids → model ids; every corpus char must be known to the model."""
    missing = [c for c in corpus_vocab.chars if c not in model_vocab]
    if missing:
        raise SystemExit(f"error: the corpus has chars the model does not know: {missing[:20]!r}")
    table = np.array([model_vocab.chars.index(c) for c in corpus_vocab.chars], np.int32)
    return table[np.asarray(ids)]


def main(argv: list[str] | None = None) -> int:
    from model.artifact import ArtifactError, load_artifact
    from model.runtime import configure, import_tensorflow
    from training.corpus import CorpusError, read_corpus

    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory")
    parser.add_argument(
        "--corpus", type=Path, required=True, help="the UTF-8 corpus it was trained on"
    )
    parser.add_argument(
        "--streams", type=int, default=8, help="parallel streams the held-out text is cut into"
    )
    args = parser.parse_args(argv)
    configure()  # numba: kernel cache, threading layer (model/runtime)
    import_tensorflow()  # its load-time log lines stay off stderr (model/runtime/native_log.py)
    try:
        artifact = load_artifact(args.model)
        with tempfile.TemporaryDirectory() as tmp:
            corpus = read_corpus(args.corpus, Path(tmp))
            ids = remap(corpus.held_out_ids, corpus.vocab, artifact.vocab)
    except (ArtifactError, CorpusError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loss = held_out_loss(LSTMStack.from_keras(artifact.model), ids, args.streams)
    print(f"held-out chars: {len(ids):,}")
    print(f"held-out loss:  {loss:.4f} nats/char")
    print(f"bits per char:  {loss / math.log(2):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
