"""One LightningModule per shape of RNN problem."""
