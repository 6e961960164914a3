#!/usr/bin/env python3
"""PyTorch baseline for `deno task bench` (suite `native`, issue 9): the same rows, same sizes.

Rows: matMul 1024^3; conv2d forward and forward+backward (dx, dW) at the CIFAR convnet's two layer
sizes; one SGD step of the CUDA-convnet CIFAR net at batch 128 (conv 5x5x3->64 SAME + bias + relu,
maxpool 2x2/2 SAME, conv 5x5x64->64 + bias + relu, maxpool 2x2/2, dense 4096->384 relu,
384->192 relu, 192->10, mean softmax cross-entropy written as mean(logsumexp(z) - z[label])).
Tensors are NHWC-equivalent problems in torch's NCHW layout. Each row: median, min, max of the
timed runs in ms, after warm-up runs.

Usage: python3 tools/bench_torch.py [--runs 5] [--warmup 1] [--threads N]
Optional: needs `import torch` (Debian: apt-get install python3-torch, then run it with
/usr/bin/python3, which is the interpreter that package installs into); exits 0 with a note
otherwise.
"""
import argparse
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:  # optional baseline
        print(f"torch not available ({e}); skipping the PyTorch baseline")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []

    def measure(name, fn, flop=None):
        for _ in range(args.warmup):
            fn()
        ts = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
        med = statistics.median(ts)
        note = f"{flop / med / 1e6:.1f} GFLOP/s" if flop else ""
        rows.append((name, med, min(ts), max(ts), note))
        print(f"  {name}: {med:.2f} ms", file=sys.stderr)

    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    measure("matMul 1024^3", lambda: torch.mm(a, b), 2 * n**3)

    B = 128
    for (h, ci) in ((32, 3), (16, 64)):
        x = torch.randn(B, ci, h, h)
        w = torch.randn(64, ci, 5, 5) * 0.1
        flop = 2 * B * h * h * 25 * ci * 64
        tag = f"{B}x{h}x{h}x{ci} * 5x5x{ci}x64 same"
        with torch.no_grad():
            measure(f"conv2d fwd {tag}", lambda: F.conv2d(x, w, padding=2), flop)
        xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()

        def fwd_bwd():
            xg.grad = None
            wg.grad = None
            F.conv2d(xg, wg, padding=2).sum().backward()

        measure(f"conv2d fwd+bwd (dx, dW) {tag}", fwd_bwd, 3 * flop)

    def he(*shape, fan_in):
        return (torch.randn(*shape) * (2.0 / fan_in) ** 0.5).requires_grad_()

    params = [
        he(64, 3, 5, 5, fan_in=75), torch.zeros(64, requires_grad=True),
        he(64, 64, 5, 5, fan_in=1600), torch.zeros(64, requires_grad=True),
        he(4096, 384, fan_in=4096), torch.zeros(384, requires_grad=True),
        he(384, 192, fan_in=384), torch.zeros(192, requires_grad=True),
        he(192, 10, fan_in=192), torch.zeros(10, requires_grad=True),
    ]
    x = torch.rand(B, 3, 32, 32)
    labels = torch.randint(0, 10, (B,))

    def loss_fn():
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = params
        h = F.relu(F.conv2d(x, w1, b1, padding=2))
        h = F.max_pool2d(h, 2, 2)
        h = F.relu(F.conv2d(h, w2, b2, padding=2))
        h = F.max_pool2d(h, 2, 2)
        # Flatten in NHWC order like the tf version (same FLOPs either way).
        h = h.permute(0, 2, 3, 1).reshape(B, -1)
        h = F.relu(h @ w3 + b3)
        h = F.relu(h @ w4 + b4)
        z = h @ w5 + b5
        return (torch.logsumexp(z, 1) - z.gather(1, labels[:, None])[:, 0]).mean()

    def step():
        for p in params:
            p.grad = None
        loss = loss_fn()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.01 * p.grad
        return loss.item()

    fwd = 2 * B * (32 * 32 * 75 * 64 + 16 * 16 * 1600 * 64 + 4096 * 384 + 384 * 192 + 192 * 10)
    measure(f"convnet SGD step b{B} 32x32x3 (CUDA-convnet, manual CE)", step, 3 * fwd)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    head = ("name", "median ms", "min ms", "max ms", "note")
    body = [(r[0], f"{r[1]:.2f}", f"{r[2]:.2f}", f"{r[3]:.2f}", r[4]) for r in rows]
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) for i in range(len(head))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(line(head))
    print(line(["-" * w for w in widths]))
    for b in body:
        print(line(b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
