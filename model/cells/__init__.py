"""The network as the server and the tools run it: cell equations, shared kernels, the stack.

    from model.cells import LSTMStack, State
    stack = LSTMStack.from_keras(keras_model)
    logits, state = stack.prime(ids)            # model/cells/stack.py

lstm.py holds the equations, kernel.py the products, activation.py tanh and sigmoid.  The Keras
network (network.py) is imported on its own, so importing this package loads no Keras.
"""

from model.cells.stack import PRIME_CHUNK, LSTMStack, State, default_threads

__all__ = ["PRIME_CHUNK", "LSTMStack", "State", "default_threads"]
