"""The network as the server and the tools run it: each cell's equations, the shared kernels, the
stack.

    from model.cells import Stack, State
    stack = Stack.from_keras(keras_model)        # an LSTM, GRU or plain RNN network
    logits, state = stack.prime(ids)             # model/cells/stack.py

lstm.py, gru.py and rnn.py hold the equations; kernel.py the step around them; gemm.py the matrix
product; activation.py tanh and sigmoid.  The Keras network (network.py) is imported on its own,
so importing this package loads no Keras.
"""

from model.cells.stack import PRIME_CHUNK, LSTMStack, Stack, State, default_threads

__all__ = ["PRIME_CHUNK", "LSTMStack", "Stack", "State", "default_threads"]
