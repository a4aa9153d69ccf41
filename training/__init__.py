"""Offline training of the char-LSTM: corpus reading, the training CLI and evaluation."""
