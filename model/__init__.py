"""The char-RNN language model, in rooms; the app and training import the faces below.

Top-level modules, the public surface:
    vocab      chars ↔ ids                    artifact   a model directory: load, save
    limits     every request limit, once      event      what a generating sequence emits
    cli        `python -m model`: sample text
Subpackages, each importing only from those above it in this list's reverse:
    runtime/   process-wide settings (numba's cache and threading layer, TF's quiet import)
    cells/     the cells' equations, the shared kernels, the stack that steps them, the Keras net
    sampling/  sampling controls, penalties, the draw, the per-sequence generation loop
    engine/    the batched loop, sequences, priming, the prefix cache, work between steps
    reading/   scoring a text, the cell finder, the memorisation index
"""
