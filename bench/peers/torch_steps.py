"""PyTorch's side of `bench/side_by_side.py`: one training step of the networks `coherent bench`
measures, on the same shapes, on the CPU.

    python torch_steps.py NETWORK [batch] [steps] [--serve]

NETWORK is `mlp` (784-256-10), `cnn` (conv16-pool-conv32-pool-fc10 on 1x28x28), `resnet`
(CIFAR ResNet-20, GroupNorm 8 groups, width 16, on 3x32x32) or `vgg` (coherent's `vgg` default
with GroupNorm 8 groups, on 3x32x32). Cases, timed per step on a fixed batch of uniform random
inputs after two warm-up steps:

  plain      mean cross-entropy, backward, SGD update
  coherence  torch.func vmap(grad) per-example gradients, m-coherence, mean update

Prints one JSON object: the milliseconds of each case and the peak resident memory growth of
one cold plain step (Linux: VmHWM after resetting it through /proc/self/clear_refs), in MiB.
The layers match coherent's plugins: no bias in a convolution followed by GroupNorm.

With --serve it speaks `coherent bench --serve`'s protocol instead: it prints `ready` after two
warm-up plain steps, then answers each line `steps N` of its standard input with the median
milliseconds of N plain steps, `{"ms_per_step": M}`, until `quit`.
"""
import json
import sys
import time

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

SERVE = "--serve" in sys.argv[1:]
ARGS = [a for a in sys.argv[1:] if a != "--serve"]
NETWORK = ARGS[0]
B = int(ARGS[1]) if len(ARGS) > 1 else 128
STEPS = int(ARGS[2]) if len(ARGS) > 2 else 5


def conv_gn(cin, cout, stride=1, relu=True):
    layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(8, cout)]
    return layers + [nn.ReLU()] if relu else layers


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*conv_gn(cin, cout, stride), *conv_gn(cout, cout, relu=False))
        projection = stride != 1 or cin != cout
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if projection else None

    def forward(self, x):
        skip = self.shortcut(x) if self.shortcut is not None else x
        return torch.relu(self.body(x) + skip)


def resnet(depth=20, width=16):
    n = (depth - 2) // 6
    layers, cin = conv_gn(3, width), width
    for stage in range(3):
        w = width << stage
        for i in range(n):
            layers.append(Block(cin, w, 2 if stage > 0 and i == 0 else 1))
            cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


def vgg(stages=((16,), (32,), (64, 64), (128, 128), (128, 128)), hidden=128):
    layers, cin, side = [], 3, 32
    for stage in stages:
        for c in stage:
            layers += conv_gn(cin, c)
            cin = c
        if side >= 2:
            layers.append(nn.MaxPool2d(2))
            side //= 2
    layers += [nn.Flatten(), nn.Linear(cin * side * side, hidden), nn.ReLU(), nn.Linear(hidden, 10)]
    return nn.Sequential(*layers)


NETWORKS = {
    "mlp": ((1, 28, 28), lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))),
    "cnn": ((1, 28, 28), lambda: nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))),
    "resnet": ((3, 32, 32), resnet),
    "vgg": ((3, 32, 32), vgg),
}
shape, make = NETWORKS[NETWORK]
torch.manual_seed(0)
x = torch.rand(B, *shape)
y = torch.randint(0, 10, (B,))


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return None


def cold_step_peak_mib():
    """Peak resident memory growth of one plain step of a new network."""
    torch.manual_seed(1)
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = status_kib("VmRSS:")
    except OSError:
        return None
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    return (status_kib("VmHWM:") - base) / 1024


def timeit(step):
    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(STEPS):
        step()
    return (time.perf_counter() - start) / STEPS * 1e3


peak = cold_step_peak_mib()
torch.manual_seed(1)
model = make()
opt = torch.optim.SGD(model.parameters(), lr=0.01)


def plain():
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


torch.manual_seed(1)
model2 = make()
params = {k: v.detach() for k, v in model2.named_parameters()}


def loss1(p, xi, yi):
    return nn.functional.cross_entropy(functional_call(model2, p, (xi[None],)), yi[None])


per_example = vmap(grad(loss1), in_dims=(None, 0, 0))


def coherence():
    g = per_example(params, x, y)
    flat = torch.cat([v.reshape(B, -1) for v in g.values()], 1)
    total = flat.sum(0)
    value = float(total.dot(total) / (flat * flat).sum())
    with torch.no_grad():
        for k in params:
            params[k] = params[k] - 0.01 * g[k].mean(0)
    return value


def serve():
    for _ in range(2):
        plain()
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            break
        if len(words) == 2 and words[0] == "steps" and words[1].isdigit() and int(words[1]) > 0:
            times = []
            for _ in range(int(words[1])):
                start = time.perf_counter()
                plain()
                times.append((time.perf_counter() - start) * 1e3)
            print(json.dumps({"ms_per_step": sorted(times)[len(times) // 2]}), flush=True)
        else:
            error = f"unknown request {line.strip()!r}: expected `steps N` (N at least 1) or `quit`"
            print(json.dumps({"error": error}), flush=True)


if SERVE:
    serve()
    sys.exit(0)

print(json.dumps({
    "network": NETWORK,
    "batch": B,
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "plain_ms": timeit(plain),
    "coherence_ms": timeit(coherence),
    "step_peak_mib": peak,
}))
