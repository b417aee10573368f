"""coherent and PyTorch side by side, in one sitting, interleaved.

    python3 bench/side_by_side.py --python /path/to/python-with-torch [--rounds 2]
        [--alternations 20] [--networks mlp,cnn,resnet,vgg] [--coherent target/release/coherent]
        [--readme README.md]

Each round runs, network by network, `coherent bench --json --network NETWORK` and then
`bench/peers/torch_steps.py NETWORK` under the given Python (one with torch installed), so
both sides of a ratio are measured minutes apart on the same machine. It prints one markdown
table with the range over the rounds of every number and of every ratio (each ratio is taken
within a round). Without `--python` only coherent's side is measured.

With `--alternations N` (and `--python`) it then measures the plain step of each network in N
pairs of short blocks (about a second each), coherent's and PyTorch's one after the other, the
order swapped from pair to pair: both sides stay loaded (`coherent bench --serve`,
`torch_steps.py --serve`) and only the one being timed runs, so the two sides of a pair are
seconds apart. It prints the median and the quartiles of the pairs' ratios, the figure that
stays put on a host whose speed drifts from minute to minute.

With `--readme`, the table replaces the part of that file between the lines
`<!-- side-by-side -->` and `<!-- /side-by-side -->`. Only the standard library is used.
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BEGIN, END = "<!-- side-by-side -->", "<!-- /side-by-side -->"
CASES = [("plain", "plain_ms"), ("coherence", "coherence_ms")]


def run_json(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def coherent_side(binary, network, batch, reps):
    report = run_json([binary, "bench", "--json", "--network", network,
                       "--batch", str(batch), "--reps", str(reps)])
    net = report["networks"][0]
    cases = {c["case"]: c for c in net["cases"]}
    return {
        "label": net["network"],
        "gemm": net["gemm_gflops"],
        "ms": {case: cases[case]["ms_per_step"] for case in ("plain", "coherence", "materialize")},
        "of_gemm": {case: cases[case]["of_gemm"] for case in ("plain", "coherence", "materialize")},
        "peak": net["step_peak_mib"],
    }


def torch_side(python, network, batch, steps):
    script = os.path.join(HERE, "peers", "torch_steps.py")
    return run_json([python, script, network, str(batch), str(steps)])


class Server:
    """One side's plain step behind the `steps N` protocol of `coherent bench --serve`."""

    def __init__(self, command):
        self.name = " ".join(command)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        line = self.process.stdout.readline().strip()
        if line != "ready":
            sys.exit(f"{self.name}: expected `ready`, got {line!r}")

    def steps(self, n):
        self.process.stdin.write(f"steps {n}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"{self.name}: stopped (exit code {self.process.wait()}) before answering")
        answer = json.loads(line)
        if "ms_per_step" not in answer:
            sys.exit(f"{self.name}: {answer}")
        return answer["ms_per_step"]

    def close(self):
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait()


def alternate(binary, python, network, batch, pairs, block_ms=1000):
    """(coherent ms, PyTorch ms) of the plain step in `pairs` pairs of alternating blocks."""
    ours = Server([binary, "bench", "--network", network, "--batch", str(batch), "--serve"])
    theirs = Server([python, os.path.join(HERE, "peers", "torch_steps.py"), network, str(batch),
                     "1", "--serve"])
    # blocks of about `block_ms`, sized from a first block of three steps
    sizes = [max(3, round(block_ms / side.steps(3))) for side in (ours, theirs)]
    results = []
    for k in range(pairs):
        if k % 2 == 0:
            mine = ours.steps(sizes[0])
            results.append((mine, theirs.steps(sizes[1])))
        else:
            other = theirs.steps(sizes[1])
            results.append((ours.steps(sizes[0]), other))
    ours.close()
    theirs.close()
    return results


def quartiles(values):
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return at(0.25), at(0.5), at(0.75)


def alternation_table(alternations, labels):
    lines = ["| network, batch | pairs of blocks | coherent ms/step (median) | "
             "PyTorch ms/step (median) | coherent / PyTorch: median (quartiles) | lowest-highest |",
             "| --- | --- | --- | --- | --- | --- |"]
    for network, pairs in alternations.items():
        ratios = [c / t for c, t in pairs]
        q1, median, q3 = quartiles(ratios)
        ours = quartiles([c for c, _ in pairs])[1]
        theirs = quartiles([t for _, t in pairs])[1]
        lines.append(f"| {labels[network]} | {len(pairs)} | {ours:.1f} | {theirs:.1f} | "
                     f"{median:.2f}x ({q1:.2f}-{q3:.2f}) | {min(ratios):.2f}-{max(ratios):.2f}x |")
    return "\n".join(lines)


def span(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def table(rounds, networks, with_torch):
    lines = []
    header = "| network, batch | case | coherent ms/step | of matrix-product peak |"
    rule = "| --- | --- | --- | --- |"
    if with_torch:
        header += " PyTorch ms/step | coherent / PyTorch |"
        rule += " --- | --- |"
    lines += [header, rule]
    for network in networks:
        results = [r[network] for r in rounds]
        label = f"{results[0]['coherent']['label']}, {results[0]['batch']}"
        for case in ("plain", "coherence", "materialize"):
            ms = [r["coherent"]["ms"][case] for r in results]
            of_gemm = [100 * r["coherent"]["of_gemm"][case] for r in results]
            row = f"| {label} | {case} | {span(ms, '{:.1f}')} | {span(of_gemm, '{:.0f}')}% |"
            if with_torch:
                key = dict(CASES).get(case)
                theirs = [r["torch"][key] for r in results] if key else []
                ratios = [c / t for c, t in zip(ms, theirs)]
                row += f" {span(theirs, '{:.1f}')} | {span(ratios)}x |" if key else " — | — |"
            lines.append(row)
        peak = [r["coherent"]["peak"] for r in results]
        row = f"| {label} | peak memory of a cold step (MiB) | {span(peak, '{:.0f}')} | |"
        if with_torch:
            theirs = [r["torch"]["step_peak_mib"] for r in results]
            ratios = [c / t for c, t in zip(peak, theirs) if c is not None and t]
            row += f" {span(theirs, '{:.0f}')} | {span(ratios)}x |"
        lines.append(row)
    gemm = [r[n]["coherent"]["gemm"] for r in rounds for n in networks]
    lines.append("")
    lines.append(f"Matrix-product peak measured by `coherent bench`: {span(gemm, '{:.0f}')} GFLOP/s "
                 f"(square products of side 1024 on every thread, interleaved with each network's "
                 f"cases); {len(rounds)} interleaved round(s) in one sitting.")
    if with_torch:
        versions = {r[networks[0]]['torch']['torch'] for r in rounds}
        lines.append(f"PyTorch {', '.join(sorted(versions))}, "
                     f"{rounds[0][networks[0]]['torch']['threads']} threads.")
    return "\n".join(lines)


def update_readme(path, text):
    with open(path) as f:
        content = f.read()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        sys.exit(f"{path}: no {BEGIN} ... {END} block to replace")
    with open(path, "w") as f:
        f.write(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", content))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", help="a Python with torch installed (PyTorch's side)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--networks", default="mlp,cnn,resnet,vgg")
    parser.add_argument("--coherent", default=os.path.join(REPO, "target", "release", "coherent"))
    parser.add_argument("--reps", type=int, default=5, help="coherent's repetitions per case")
    parser.add_argument("--steps", type=int, default=5, help="PyTorch's timed steps per case")
    parser.add_argument("--alternations", type=int, default=0,
                        help="pairs of alternating plain-step blocks per network (with --python)")
    parser.add_argument("--readme", help="replace the side-by-side block of this file")
    args = parser.parse_args()
    networks = args.networks.split(",")
    batch = 128
    rounds = []
    for k in range(args.rounds):
        result = {}
        for network in networks:
            print(f"round {k + 1}: {network}", file=sys.stderr)
            entry = {"batch": batch, "coherent": coherent_side(args.coherent, network, batch, args.reps)}
            if args.python:
                entry["torch"] = torch_side(args.python, network, batch, args.steps)
            result[network] = entry
        rounds.append(result)
    text = table(rounds, networks, bool(args.python))
    if args.python and args.alternations > 0:
        alternations = {}
        for network in networks:
            print(f"alternating: {network}", file=sys.stderr)
            alternations[network] = alternate(args.coherent, args.python, network, batch,
                                              args.alternations)
        labels = {n: f"{rounds[0][n]['coherent']['label']}, {batch}" for n in networks}
        text += "\n\nThe plain step in alternating blocks, after the rounds:\n\n"
        text += alternation_table(alternations, labels)
    print(text)
    if args.readme:
        update_readme(args.readme, text)


if __name__ == "__main__":
    main()
