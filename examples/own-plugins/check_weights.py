"""Loads a spirals run's final weights outside Rust and recomputes its test accuracy.

Usage: python3 check_weights.py RUN_DIR [DATA_DIR]

RUN_DIR is a run directory of `spirals.toml` (`runs/spirals/000-aggregator=mean`), DATA_DIR
the directory of `test.csv` (`data/` next to this script by default). The network is
`fourier_net` written out in NumPy: `sin(x W^T + b)` (the Fourier features), ReLU dense layers,
a dense output layer; weights files name its tensors `fourier1.weight` [features, inputs],
`fourier1.bias`, `fc1.weight` [out, in], ... as PyTorch's nn.Linear holds them, so the same
file loads into an nn.Module with those names. Prints {"test_acc": ...} as JSON.
"""

import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def main():
    run = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "data")
    w = load_file(os.path.join(run, "weights", "final.safetensors"))
    table = np.loadtxt(os.path.join(data, "test.csv"), delimiter=",", skiprows=1)
    labels, x = table[:, 0].astype(int), table[:, 1:]
    h = np.sin(x @ w["fourier1.weight"].T.astype(np.float64) + w["fourier1.bias"])
    k = 1
    while f"fc{k + 1}.weight" in w:
        h = np.maximum(h @ w[f"fc{k}.weight"].T + w[f"fc{k}.bias"], 0.0)
        k += 1
    logits = h @ w[f"fc{k}.weight"].T + w[f"fc{k}.bias"]
    print(json.dumps({"test_acc": float(np.mean(logits.argmax(axis=1) == labels))}))


if __name__ == "__main__":
    main()
