"""Models: the one recurrent encoder (rnn | lstm | gru) and the heads built on it."""
