#!/usr/bin/env python3
"""PyTorch baseline for `deno task bench` (suite `native`, issue 9): the same rows, same sizes.

Rows (`--filter SUBSTRING` keeps the rows whose names contain it): matMul 1024^3; conv2d forward and forward+backward (dx, dW) at the CIFAR convnet's two layer
sizes; one SGD step of the CUDA-convnet CIFAR net at batch 128 (conv 5x5x3->64 SAME + bias + relu,
maxpool 2x2/2 SAME, conv 5x5x64->64 + bias + relu, maxpool 2x2/2, dense 4096->384 relu,
384->192 relu, 192->10, mean softmax cross-entropy written as mean(logsumexp(z) - z[label]));
one SGD step of the pre-activation ResNet-20 v2 (CIFAR, batch 128, 32x32x3, 10 classes) and of
ResNet-18 v2 (ImageNet, batch 4, 224x224x3, 1001 classes), the architecture of models/resnet_v2.ts
(bench rows `optim/resnet20 b128: sgd step` and `optim/resnet18 b4 224: sgd step`): bias-free
convs, SAME for stride 1 and TF's fixed padding then VALID for stride 2, batch norm in train mode
(eps 1e-5, biased batch variance), BN-ReLU before every conv, a 1x1 projection shortcut on the first
block of every stage applied to the BN-ReLU output, the 7x7/2 stem and 3x3/2 SAME max-pool
(TF's padding: one -inf row and column at the bottom and right) for ResNet-18, BN-ReLU, global mean
pool and dense head, mean softmax cross-entropy, SGD with learning rate 0.1.
Tensors are NHWC-equivalent problems in torch's NCHW layout. Each row: median, min, max of the
timed runs in ms, after warm-up runs.

Usage: python3 tools/bench_torch.py [--runs 5] [--warmup 1] [--threads N] [--filter resnet]
OMP_WAIT_POLICY defaults to passive (set it to override). Optional: needs `import torch` (Debian: apt-get install python3-torch, then run it with
/usr/bin/python3, which is the interpreter that package installs into); exits 0 with a note
otherwise.
"""
import argparse
import os
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--filter", default="", help="only rows whose names contain this")
    args = ap.parse_args()
    # As the native backend sets for oneDNN (lib/backend/native/dnnl.ts): OpenMP workers that spin
    # between parallel regions take the cores from everything else on a shared machine (ResNet-20
    # steps: 1.9-3.5 s spinning against 0.40 s passive, measured side by side).
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
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
        if args.filter not in name:
            return
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

    resnet_rows(torch, F, measure)

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


def resnet_rows(torch, F, measure):
    """SGD steps of the pre-activation ResNets of models/resnet_v2.ts (see the module docstring)."""

    def conv_w(k, cin, cout):
        return (torch.randn(cout, cin, k, k) * (1.0 / (k * k * cin)) ** 0.5).requires_grad_()

    def bn_p(c):
        return [torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)]

    def build(stem_k, filters, blocks, strides, in_c, classes):
        ps = {"stem": conv_w(stem_k, in_c, filters[0]), "stages": []}
        cin = filters[0]
        for f, nb in zip(filters, blocks):
            stage = {"shortcut": conv_w(1, cin, f), "blocks": []}
            for i in range(nb):
                ci = cin if i == 0 else f
                stage["blocks"].append({"bn1": bn_p(ci), "conv1": conv_w(3, ci, f),
                                        "bn2": bn_p(f), "conv2": conv_w(3, f, f)})
            ps["stages"].append(stage)
            cin = f
        ps["bnf"] = bn_p(cin)
        ps["dense"] = [(torch.randn(classes, cin) * (1.0 / cin) ** 0.5).requires_grad_(),
                       torch.zeros(classes, requires_grad=True)]
        return ps

    def leaves(ps):
        out = [ps["stem"]]
        for st in ps["stages"]:
            out.append(st["shortcut"])
            for b in st["blocks"]:
                out += [*b["bn1"], b["conv1"], *b["bn2"], b["conv2"]]
        return out + ps["bnf"] + ps["dense"]

    def conv_fp(x, w, stride):
        k = w.shape[-1]
        if stride == 1:
            return F.conv2d(x, w, padding=k // 2)  # SAME for odd k
        beg = (k - 1) // 2
        x = F.pad(x, (beg, k - 1 - beg, beg, k - 1 - beg))
        return F.conv2d(x, w, stride=stride)

    def bn_relu(x, p):
        return F.relu(F.batch_norm(x, None, None, p[0], p[1], training=True, eps=1e-5))

    def forward(ps, x, stem_stride, max_pool, strides):
        h = conv_fp(x, ps["stem"], stem_stride)
        if max_pool:  # TF SAME 3x3/2 on an even size: pad one -inf row/column at the bottom/right
            h = F.max_pool2d(F.pad(h, (0, 1, 0, 1), value=float("-inf")), 3, 2)
        for st, s in zip(ps["stages"], strides):
            for i, b in enumerate(st["blocks"]):
                stride = s if i == 0 else 1
                pre = bn_relu(h, b["bn1"])
                short = conv_fp(pre, st["shortcut"], stride) if i == 0 else h
                mid = bn_relu(conv_fp(pre, b["conv1"], stride), b["bn2"])
                h = conv_fp(mid, b["conv2"], 1) + short
        h = bn_relu(h, ps["bnf"]).mean((2, 3))
        return h @ ps["dense"][0].t() + ps["dense"][1]

    nets = [
        ("optim/resnet20 b128: sgd step (ResNet-20 v2, 32x32x3)", 128, 32, 10,
         dict(stem_k=3, filters=[16, 32, 64], blocks=[3, 3, 3], strides=[1, 2, 2]), 1, False),
        ("optim/resnet18 b4 224: sgd step (ResNet-18 v2, 224x224x3, 1001 classes)", 4, 224, 1001,
         dict(stem_k=7, filters=[64, 128, 256, 512], blocks=[2, 2, 2, 2], strides=[1, 2, 2, 2]),
         2, True),
    ]
    for name, batch, hw, classes, arch, stem_stride, max_pool in nets:
        ps = build(in_c=3, classes=classes, **arch)
        params = leaves(ps)
        x = torch.rand(batch, 3, hw, hw)
        labels = torch.randint(0, classes, (batch,))

        def step(ps=ps, params=params, x=x, labels=labels, stem_stride=stem_stride,
                 max_pool=max_pool, strides=arch["strides"]):
            for p in params:
                p.grad = None
            z = forward(ps, x, stem_stride, max_pool, strides)
            loss = (torch.logsumexp(z, 1) - z.gather(1, labels[:, None])[:, 0]).mean()
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= 0.1 * p.grad
            return loss.item()

        measure(name, step)


if __name__ == "__main__":
    sys.exit(main())
