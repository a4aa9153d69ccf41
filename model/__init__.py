"""The char-LSTM language model: vocab, network, artifact I/O, the LSTM step and generation."""
