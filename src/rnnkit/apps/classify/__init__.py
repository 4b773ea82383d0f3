"""`rnnkit classify`: many-to-one classification and regression of whole sequences (movie reviews,
digits read row by row, a TSV/CSV of labelled texts), with a TF-IDF or pixel baseline beside it.
Stands on recurrent (padding masks), layers, train.Trainer, data.buckets, data.digits, metrics."""
