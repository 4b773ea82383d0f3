"""The applications: one folder per `rnnkit` command (lm, forecast, classify, seq2seq, caption,
study, gradients). Each imports the library (`rnnkit.*` outside apps/, cli/ and interop/) and
itself, never another application; what two of them need lives in the library."""
