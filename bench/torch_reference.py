#!/usr/bin/env python3
"""PyTorch side of `npm run bench:throughput`: the same nets, the same batch and step.

mobilenetv2-224 is torchvision's mobilenet_v2 (random weights, 1000 classes) at batch 4, as on
the tfjs side (bench/mobilenet-v2.ts, the Keras structure).

Run with Debian's interpreter (`/usr/bin/python3`, which has python3-torch). Prints one JSON
object on stdout: {"torch": version, "runs": [...]} (each run names its thread count); or {"error": ...} when torch
is missing, so the tfjs side can still report its own numbers.
"""
import argparse
import json
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError as error:  # the tfjs benchmark reports this and carries on
    print(json.dumps({"error": f"torch is not importable by {sys.executable}: {error}"}))
    sys.exit(0)

REFERENCE_BLOCKS = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)]


def reference_net() -> nn.Module:
    """28x28x1; conv3x3 (no bias) + BN + ReLU blocks; global average pool; dense 10."""
    layers, channels = [], 1
    for filters, stride in REFERENCE_BLOCKS:
        layers += [nn.Conv2d(channels, filters, 3, stride, 1, bias=False), nn.BatchNorm2d(filters), nn.ReLU()]
        channels = filters
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10))


class RepVggBlock(nn.Module):
    """Training form: ReLU(BN(conv3x3 x) + BN(conv1x1 x) + [BN(x) if in == out and stride 1])."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.dense = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))
        self.one_by_one = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))
        self.identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None

    def forward(self, x):
        out = self.dense(x) + self.one_by_one(x)
        if self.identity is not None:
            out = out + self.identity(x)
        return torch.relu(out)


def repvgg_a0(width_multiplier: float = 0.5, num_classes: int = 10) -> nn.Module:
    """RepVGG-A0 (blocks [1, 2, 4, 14, 1], a = 0.75, b = 2.5) with an extra width multiplier."""
    a, b = 0.75, 2.5
    widths = [min(64, 64 * a), 64 * a, 128 * a, 256 * a, 512 * b]
    widths = [max(1, round(w * width_multiplier)) for w in widths]
    blocks, channels = [], 3
    for stage, count in enumerate([1, 2, 4, 14, 1]):
        for i in range(count):
            blocks.append(RepVggBlock(channels, widths[stage], 2 if i == 0 else 1))
            channels = widths[stage]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


def images_per_second(step, batch: int, min_seconds: float, warmup: int = 3):
    """(images per wall-clock second, images per CPU second of this process)."""
    for _ in range(warmup):
        step()
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and steps >= 3:
            cpu = time.process_time() - cpu_start
            return steps * batch / elapsed, steps * batch / cpu


def mobilenet_v2() -> nn.Module:
    import torchvision  # Debian's python3-torchvision; only this net needs it

    return torchvision.models.mobilenet_v2(num_classes=1000)


# name: (builder, input shape CHW, batch)
NETS = {
    "reference": (reference_net, (1, 28, 28), None),
    "repvgg-a0-x0.5": (lambda: repvgg_a0(0.5), (3, 32, 32), None),
    "mobilenetv2-224": (mobilenet_v2, (3, 224, 224), 4),
}


def measure(name: str, model: nn.Module, input_shape, batch: int, min_seconds: float):
    torch.manual_seed(0)
    x = torch.randn(batch, *input_shape)
    y = torch.randint(0, 10, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    def infer_step():
        with torch.no_grad():
            model(x)

    model.train()
    train, train_cpu = images_per_second(train_step, batch, min_seconds)
    model.eval()
    infer, infer_cpu = images_per_second(infer_step, batch, min_seconds)
    common = {"net": name, "framework": "pytorch", "backend": "torch-cpu", "batch": batch}
    return [
        {**common, "mode": "train", "imagesPerSecond": train, "imagesPerCpuSecond": train_cpu},
        {**common, "mode": "infer", "imagesPerSecond": infer, "imagesPerCpuSecond": infer_cpu},
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    # Measure 1 thread before more: once a multi-threaded region has run, OpenMP's idle workers
    # spin for a while and would be charged to the 1-thread run's CPU time.
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="thread counts to measure, in order")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per measurement")
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    args = parser.parse_args()
    runs = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name in args.nets:
            build, shape, batch = NETS[name]
            try:
                measured = measure(name, build(), shape, batch or args.batch, args.seconds)
            except ImportError as error:  # torchvision missing: the other nets still count
                print(f"{name}: {error}", file=sys.stderr)
                continue
            runs.extend({**run, "threads": threads} for run in measured)
    print(json.dumps({"torch": torch.__version__, "runs": runs}))


if __name__ == "__main__":
    main()
