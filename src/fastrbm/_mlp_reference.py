"""Plain NumPy twin of ``_mlp.pyx``: the definition of correct for the
backpropagation kernels (used by tests; users never get it silently).

Same conventions: ``W[i]`` has shape ``(n_out, n_in)``, hidden layers are
logistic, the last layer is softmax, the loss is the mean cross-entropy plus
``weight_decay / 2 * sum ||W||^2``.
"""
import numpy as np
from scipy.special import expit, softmax

from ._reference import uniforms

TINY = 1.2e-38
from ._random import STREAM_DROPOUT


def forward_layers(X, Ws, bs, dropout=0.0, key=None, step=0):
    """Activations of every layer, input first.  With ``dropout``, hidden
    unit j of row r is dropped when the Philox uniform of (r, j) for update
    ``step``, stream STREAM_DROPOUT, phase = layer index is < dropout; kept
    units are divided by 1 - dropout."""
    acts = [np.asarray(X)]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = acts[-1] @ W.T + b
        if i == len(Ws) - 1:
            acts.append(softmax(z, axis=1))
            continue
        h = expit(z)
        if dropout > 0:
            u = uniforms(np.zeros(2, np.uint32) if key is None else key, np.arange(len(h)),
                         h.shape[1], step, STREAM_DROPOUT, i, h.dtype)
            h = np.where(u < dropout, 0, h / h.dtype.type(1 - dropout)).astype(h.dtype)
        acts.append(h)
    return acts


def forward(X, Ws, bs, n_threads=1):
    """Output probabilities for every row of X."""
    return forward_layers(X, Ws, bs)[-1]


def loss(X, y, Ws, bs, weight_decay=0.0, dropout=0.0, key=None, step=0):
    """Mean cross-entropy plus the L2 penalty on the weights."""
    P = forward_layers(X, Ws, bs, dropout, key, step)[-1]
    ce = -np.log(np.maximum(P[np.arange(len(y)), y], TINY)).mean()
    return ce + 0.5 * weight_decay * sum(np.sum(W.astype(np.float64) ** 2) for W in Ws)


def gradients(X, y, Ws, bs, weight_decay=0.0, n_threads=1, dropout=0.0, key=None,
              step_index=0):
    """(loss, weight gradients, bias gradients) for the minibatch X, y."""
    acts = forward_layers(X, Ws, bs, dropout, key, step_index)
    B = len(y)
    D = acts[-1].copy()
    D[np.arange(B), y] -= 1
    D /= B
    GW, Gb = [None] * len(Ws), [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        GW[i] = D.T @ acts[i] + weight_decay * Ws[i]
        Gb[i] = D.sum(axis=0)
        if i:
            a = acts[i] * (1 - dropout)            # the sigmoid of kept units
            D = (D @ Ws[i]) * a * (1 - a) / (1 - dropout)
    return loss(X, y, Ws, bs, weight_decay, dropout, key, step_index), GW, Gb


def _minibatches(X, y, order, batch_size, Ws, bs, weight_decay, dropout, key, first_step):
    """For each minibatch m of the epoch (consecutive runs of ``batch_size``
    entries of ``order``): (m, summed cross-entropy of its rows, weight
    gradients, bias gradients), all at the parameters as they are when it
    is reached (the caller updates them in between)."""
    for m, start in enumerate(range(0, len(order), batch_size)):
        rows = order[start:start + batch_size]
        Xb, yb = X[rows], y[rows]
        P = forward_layers(Xb, Ws, bs, dropout, key, first_step + m)[-1]
        loss_sum = float(-np.log(np.maximum(P[np.arange(len(yb)), yb], TINY)).sum())
        _, GW, Gb = gradients(Xb, yb, Ws, bs, weight_decay, 1, dropout, key, first_step + m)
        yield m, loss_sum, GW, Gb


def train_epoch(X, y, order, batch_size, Ws, bs, VWs, Vbs, learning_rate, momentum,
                weight_decay, n_threads=1, dropout=0.0, key=None, first_step=0):
    """One epoch of minibatch SGD with momentum, in place; returns the summed
    cross-entropy of the rows before their minibatch's update."""
    total = 0.0
    for _, loss_sum, GW, Gb in _minibatches(X, y, order, batch_size, Ws, bs, weight_decay,
                                            dropout, key, first_step):
        total += loss_sum
        for W, b, VW, Vb, gw, gb in zip(Ws, bs, VWs, Vbs, GW, Gb):
            VW *= momentum
            VW -= learning_rate * gw
            W += VW
            Vb *= momentum
            Vb -= learning_rate * gb
            b += Vb
    return total

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8


def adam_rate(learning_rate, t):
    """Adam's bias-corrected step size for update ``t`` (from 1), in double
    (Kingma & Ba 2015, section 2: lr sqrt(1 - beta2**t) / (1 - beta1**t))."""
    return learning_rate * np.sqrt(1 - ADAM_BETA2 ** t) / (1 - ADAM_BETA1 ** t)


def adam_update(params, grads, firsts, seconds, rate):
    """Adam's step for each parameter array, in place and in its own dtype:
    m = b1 m + (1 - b1) g, s = b2 s + (1 - b2) g^2, p -= rate m / (sqrt(s) + eps)."""
    for p, g, m, s in zip(params, grads, firsts, seconds):
        t = p.dtype.type
        m *= t(ADAM_BETA1)
        m += t(1 - ADAM_BETA1) * g
        s *= t(ADAM_BETA2)
        s += t(1 - ADAM_BETA2) * (g * g)
        p -= t(rate) * m / (np.sqrt(s) + t(ADAM_EPSILON))


def train_epoch_adam(X, y, order, batch_size, Ws, bs, MWs, Mbs, SWs, Sbs, learning_rate,
                     weight_decay, n_threads=1, dropout=0.0, key=None, first_step=0):
    """One epoch of minibatch Adam, in place (minibatch m is Adam's update
    ``first_step + m + 1``; first moments in MWs, Mbs, second moments in SWs,
    Sbs); returns the summed cross-entropy of the rows before their
    minibatch's update."""
    total = 0.0
    for m, loss_sum, GW, Gb in _minibatches(X, y, order, batch_size, Ws, bs, weight_decay,
                                            dropout, key, first_step):
        total += loss_sum
        rate = adam_rate(learning_rate, first_step + m + 1)
        adam_update(Ws, GW, MWs, SWs, rate)
        adam_update(bs, Gb, Mbs, Sbs, rate)
    return total
