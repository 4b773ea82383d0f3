"""`rnnkit gradients`: the vanishing/exploding-gradient figure: ||dL_T/dh_t|| against the lag for
each cell at initialisation and after a short training on the adding problem, and an Elman RNN with
spectral radius > 1 trained with and without clipping. Stands on gradient_flow, network, data.synthetic, optim."""
