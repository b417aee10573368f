"""Recomputes a logged m-coherence of a coherent run from its weights, outside Rust.

Usage: python3 coherence_from_weights.py RUN_DIR MNIST_DIR TRAIN_LIMIT [WEIGHTS]

RUN_DIR is the run directory of an `mlp` run (ReLU, with biases, cross-entropy) on MNIST,
MNIST_DIR the directory of the IDX files (`train-images-idx3-ubyte.gz`, ...), TRAIN_LIMIT the
run's `[dataset] train_limit` (the training split is the first TRAIN_LIMIT examples, pixels /
255; no label noise). WEIGHTS is the weights file, `weights/final.safetensors` by default.

The script loads the weights with safetensors, the `coherence` metric's sample from
`samples.json`, computes every per-example gradient of the network analytically with NumPy
(float64) and prints, as JSON, the m-coherence |sum_i g_i|^2 / sum_i |g_i|^2 over all
parameters (`coherence`), per layer (`coherence/<layer>`), and the sample's mean loss
(`sample_loss`). Only numpy and safetensors are needed.
"""

import gzip
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def read_idx(path):
    """An IDX array (as the MNIST files hold them), from a plain or gzipped file."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def idx_file(directory, name):
    plain = os.path.join(directory, name)
    return plain if os.path.exists(plain) else plain + ".gz"


def per_example_gradients(weights, x, y):
    """Every example's gradient of its cross-entropy loss, layer by layer: a list of
    (layer, m x params) arrays, the weight gradient then the bias gradient (row-major, as the
    tensors are laid out), and the per-example losses."""
    layers = sorted(
        {name.split(".")[0] for name in weights}, key=lambda n: int(n[2:])
    )
    w = [weights[f"{l}.weight"].astype(np.float64) for l in layers]
    b = [weights[f"{l}.bias"].astype(np.float64) for l in layers]
    # forward: a_0 = x, z_k = a_{k-1} W_k^T + b_k, a_k = relu(z_k), logits z_K
    acts, pre = [x], []
    for k in range(len(layers)):
        z = acts[-1] @ w[k].T + b[k]
        pre.append(z)
        if k + 1 < len(layers):
            acts.append(np.maximum(z, 0.0))
    logits = pre[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    m = len(y)
    losses = -log_softmax[np.arange(m), y]
    # backward, example by example in closed form: delta_K = softmax - onehot,
    # delta_{k-1} = (delta_k W_k) * relu'(z_{k-1}); g_i(W_k) = delta_k[i] a_{k-1}[i]^T
    delta = np.exp(log_softmax)
    delta[np.arange(m), y] -= 1.0
    grads = []
    for k in reversed(range(len(layers))):
        g_w = np.einsum("io,ij->ioj", delta, acts[k]).reshape(m, -1)
        grads.append((layers[k], np.concatenate([g_w, delta], axis=1)))
        if k > 0:
            delta = (delta @ w[k]) * (pre[k - 1] > 0)
    return list(reversed(grads)), losses


def coherence(g):
    """|sum_i g_i|^2 / sum_i |g_i|^2 of the rows g_i of g."""
    s = g.sum(axis=0)
    return float(s @ s) / float((g * g).sum())


def main():
    run, data, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else os.path.join(run, "weights", "final.safetensors")
    weights = load_file(path)
    with open(os.path.join(run, "samples.json")) as f:
        sample = json.load(f)["coherence"]
    images = read_idx(idx_file(data, "train-images-idx3-ubyte"))[:limit]
    labels = read_idx(idx_file(data, "train-labels-idx1-ubyte"))[:limit]
    x = images.reshape(len(images), -1)[sample].astype(np.float32) / np.float32(255.0)
    y = labels[sample].astype(np.int64)
    grads, losses = per_example_gradients(weights, x.astype(np.float64), y)
    out = {"coherence": coherence(np.concatenate([g for _, g in grads], axis=1))}
    for layer, g in grads:
        out[f"coherence/{layer}"] = coherence(g)
    out["sample_loss"] = float(losses.mean())
    out["m"] = len(sample)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
