"""`python -m deepnets.bench`: the course's speed, side by side with torchvision's, in one run.

1. data:   one epoch of the 60k training images through `Batches` vs torchvision's
           FashionMNIST + ToTensor + DataLoader (workers 0 and 2), at 28x28 (batch 256) and
           resized to 224 (batch 128, as Dive into Deep Learning's AlexNet chapter does);
2. models: training images/s (forward + backward + SGD step, batch 8, 224x224x3) of the
           course's AlexNet, VGG16, ResNet-50 vs torchvision's;
3. the CPU-sized nets the notebooks train: images/s and achieved GFLOP/s (FLOPs of forward
           and backward counted by FlopCounterMode) against this machine's fp32 matmul peak,
           and how much of a step the convolutions and matmuls take (torch.profiler);
4. speed-ups tried in the training loop (channels_last, inference_mode, evaluation batch size,
           torch.compile) and the smoke-profile wall time of each notebook.

`--quick` (under a minute) measures fewer images and steps and skips the slowest parts.
Figures go to `notebooks/results/bench.json`, from which the README's speed section is built
(`--quick` writes `build/bench-quick.json` instead).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import deepnets
from deepnets import models
from deepnets.files import REPO, write_atomically
from deepnets.models import alexnet_small, fashion_resnet, fashion_vgg, lenet5
from deepnets.results import device_name

OUT = REPO / "notebooks" / "results" / "bench.json"
QUICK_OUT = REPO / "build" / "bench-quick.json"


def _median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------- 1. data
def _torchvision_root(ds) -> Path:
    """torchvision's FashionMNIST wants the unpacked idx files in <root>/FashionMNIST/raw/."""
    root = REPO / "build" / "torchvision-data"
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in deepnets.data.FILE_SHA256:
        target = raw / name.removesuffix(".gz")
        if not target.exists():
            target.write_bytes(gzip.open(ds.folder / name).read())
    return root


def _epoch_img_per_sec(batches, n_images: int, repeats: int = 1, resize=None) -> float:
    """Images/s of full passes over `batches` (median of `repeats`), optionally resizing each batch."""
    def one_pass():
        for x, _ in batches:
            if resize is not None:
                resize(x)
    return n_images / _median_time(one_pass, repeats, warmup=0)


# D2L's batch sizes: 256 for its 28x28 chapters, 128 where it resizes to 224 for AlexNet.
DATA_BATCH = {"28": 256, "224": 128}


def bench_data(n_images: int) -> dict:
    """Images/s of one pass over `n_images` training images, ours vs torchvision's."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms

    ds = deepnets.load_fashion_mnist()
    root = _torchvision_root(ds)
    images, labels = ds.train_images[:n_images], ds.train_labels[:n_images]
    out = {}
    for size in (None, 224):
        label = "28" if size is None else "224"
        batch = DATA_BATCH[label]
        # Ours is fast, so its median of three passes costs little; torchvision's pass is one.
        ours = deepnets.Batches(images, labels, batch_size=batch, shuffle=True, size=size, device="cpu")
        out[f"data_{label}_ours_img_per_sec"] = _epoch_img_per_sec(ours, n_images, repeats=3)
        if size:
            # The same batches resized by F.interpolate instead of two matrix products.
            plain = deepnets.Batches(images, labels, batch_size=batch, shuffle=True, device="cpu")
            out[f"data_{label}_interpolate_img_per_sec"] = _epoch_img_per_sec(
                plain, n_images, repeats=3,
                resize=lambda x: nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                                           align_corners=False))
            # Batch 256 at 224x224 is 51 MB a batch: above glibc's 32 MB mmap limit, so every
            # batch lands in fresh pages that the kernel must fault in and zero.
            ours_256 = deepnets.Batches(images, labels, batch_size=256, shuffle=True, size=size, device="cpu")
            out[f"data_{label}_ours_b256_img_per_sec"] = _epoch_img_per_sec(ours_256, n_images, repeats=3)
        steps = ([transforms.Resize(224)] if size else []) + [
            transforms.ToTensor(), transforms.Normalize((ds.mean,), (ds.std,))]
        tv = torchvision.datasets.FashionMNIST(str(root), train=True, download=False,
                                               transform=transforms.Compose(steps))
        tv = Subset(tv, range(n_images))
        for workers in (0, 2):
            loader = DataLoader(tv, batch_size=batch, shuffle=True, num_workers=workers)
            out[f"data_{label}_torchvision_w{workers}_img_per_sec"] = _epoch_img_per_sec(loader, n_images)
        best = max(out[f"data_{label}_torchvision_w0_img_per_sec"], out[f"data_{label}_torchvision_w2_img_per_sec"])
        out[f"data_{label}_ratio"] = out[f"data_{label}_ours_img_per_sec"] / best
    return out


# ---------------------------------------------------------------------------- 2. models
def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def bench_imagenet_models(names: list[str], steps: int) -> dict:
    """Training images/s at 224x224x3, batch 8: the course's nets vs torchvision's.

    The ratio is the median over back-to-back pairs of steps of torchvision's step time
    over ours (above 1: ours is faster).
    """
    out = {}
    x = torch.randn(8, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (8,))
    for name in names:
        ours = getattr(models, name)().to(memory_format=torch.channels_last).train()
        theirs = getattr(torchvision.models, name)().to(memory_format=torch.channels_last).train()
        step_ours, step_theirs = _train_step(ours, x, y), _train_step(theirs, x, y)
        step_ours(), step_theirs()  # warm-up
        t_ours, t_theirs = [], []
        for i in range(steps):
            # Back to back, in alternating order (ABBA): each pair of steps sees the same
            # machine, so the per-pair ratio cancels the drift of a shared CPU.
            pair = ((step_ours, t_ours), (step_theirs, t_theirs))
            for step, times in (pair if i % 2 == 0 else pair[::-1]):
                times.append(_time_once(step))
        out[f"{name}_ours_img_per_sec"] = 8 / statistics.median(t_ours)
        out[f"{name}_torchvision_img_per_sec"] = 8 / statistics.median(t_theirs)
        out[f"{name}_ratio"] = statistics.median(t / o for o, t in zip(t_ours, t_theirs))
    return out


# ---------------------------------------------------------------------------- 3. CPU-sized nets
def training_nets() -> dict:
    """The nets the notebooks train for their headline result: builder, input size, batch size."""
    return {
        "lenet5 (00)": (lenet5, 28, 128),
        "alexnet_small (01)": (lambda: alexnet_small(init="kaiming"), 28, 128),
        "fashion_vgg (02)": (fashion_vgg, 28, 128),
        "resnet10 (04)": (fashion_resnet, 28, 256),
    }


# A net an earlier bench timed, still named in results files written before it changed.
EARLIER_NETS = {"vgg_a_bn (02)": "VGG-A/4 with batch norm at 32x32, before notebook 02 settled on VGG-B/4"}


def measured_nets(f: dict) -> list[str]:
    """The labels of the nets a results file holds figures for, in the order of training_nets()."""
    labels = list(training_nets())
    labels[2:2] = EARLIER_NETS  # beside notebook 02's net, where its row stood
    return [label for label in labels if f"{label.split(' ')[0]}_cl_gflops" in f]


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """This machine's practical fp32 peak: a large matrix product, best of `repeats`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_time_once(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _time_once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def train_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one forward + backward pass, as FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


# The kernels that do a net's counted FLOPs: convolutions (forward and backward) and matmuls.
FLOP_KERNELS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::addmm", "aten::mm")


def flop_kernel_share(step: Callable[[], object], steps: int = 3) -> float:
    """Share of a training step's CPU time spent in convolution and matmul kernels (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if e.key in FLOP_KERNELS) / total


def bench_training_nets(steps: int) -> dict:
    """Images/s and GFLOP/s of each CPU-sized net at its notebook's batch size, NCHW vs channels_last.

    Also the share of the channels_last step spent in convolutions and matmuls: the net's
    GFLOP/s divided by it is what the net would reach if everything else took no time.
    """
    out = {}
    for label, (build, size, batch) in training_nets().items():
        key = label.split(" ")[0]
        model = build().train()
        x = torch.randn(batch, 1, size, size)
        y = torch.randint(0, 10, (batch,))
        flops = train_flops(model, x, y)
        for fmt, memory_format in (("nchw", torch.contiguous_format), ("cl", torch.channels_last)):
            model = model.to(memory_format=memory_format)
            step = _train_step(model, x.contiguous(memory_format=memory_format), y)
            seconds = _median_time(step, steps)
            out[f"{key}_{fmt}_img_per_sec"] = batch / seconds
            out[f"{key}_{fmt}_gflops"] = flops / seconds / 1e9
        out[f"{key}_train_gflop_per_img"] = flops / batch / 1e9
        out[f"{key}_cl_flop_kernel_share"] = flop_kernel_share(step)
    return out


# ---------------------------------------------------------------------------- 4. speed-ups
def bench_evaluation(quick: bool) -> dict:
    """Evaluation of notebook 04's net: no_grad vs inference_mode, batch 256 vs 1000."""
    out = {}
    ds = deepnets.load_fashion_mnist()
    model = fashion_resnet().eval().to(memory_format=torch.channels_last)  # eval for its whole life
    n = 2000 if quick else 10000
    for batch in (256, 1000):
        b = deepnets.Batches(ds.test_images[:n], ds.test_labels[:n], batch_size=batch, device="cpu")
        for mode, ctx in (("no_grad", torch.no_grad), ("inference_mode", torch.inference_mode)):
            def run():
                with ctx():
                    for x, _ in b:
                        model(x)
            out[f"eval_b{batch}_{mode}_img_per_sec"] = n / _median_time(run, 1 if quick else 2)
    return out


def bench_compile(steps: int = 10) -> dict:
    """torch.compile vs eager, training each CPU-sized net at its notebook's batch size."""
    out = {}
    for label, (build, size, batch) in training_nets().items():
        key = label.split(" ")[0]
        x = torch.randn(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (batch,))
        eager = build().train().to(memory_format=torch.channels_last)
        compiled = torch.compile(build().train().to(memory_format=torch.channels_last))
        step_eager, step_compiled = _train_step(eager, x, y), _train_step(compiled, x, y)
        t0 = time.perf_counter()
        step_compiled()  # compiles forward and backward
        out[f"compile_{key}_warmup_seconds"] = time.perf_counter() - t0
        out[f"compile_{key}_eager_img_per_sec"] = batch / _median_time(step_eager, steps)
        out[f"compile_{key}_img_per_sec"] = batch / _median_time(step_compiled, steps)
    return out


def _worker(steps: int, batch: int) -> float:
    """Training images/s of notebook 04's net in this process (for `bench_threads`)."""
    model = fashion_resnet().train().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    return batch / _median_time(_train_step(model, x, y), steps, warmup=2)


def _run_workers(env: dict, copies: int, steps: int, batch: int) -> float:
    """Start `copies` worker processes at once; their images/s added up."""
    cmd = [sys.executable, "-m", "deepnets.bench", "--worker", str(steps), "--batch", str(batch)]
    # Start from an environment without OpenMP settings, so only `env`'s apply.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OMP_")}, **env}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(copies)]
    outputs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise RuntimeError(f"a benchmark worker failed: {outputs}")
    return sum(float(out.split()[-1]) for out in outputs)


def bench_threads(steps: int) -> dict:
    """OpenMP settings, each in fresh processes (they are read once, at start-up).

    Idle threads either spin (the default: they wake fast) or sleep (PASSIVE: they free the
    core). Alone, spinning wins; when two processes share the cores, spinning threads steal
    each other's time. Training batch 128 vs 256 is measured alongside.
    """
    default = {"OMP_NUM_THREADS": str(torch.get_num_threads())}
    passive = {**default, "OMP_WAIT_POLICY": "PASSIVE"}
    return {
        "threads_default_img_per_sec": _run_workers(default, 1, steps, 128),
        "threads_passive_img_per_sec": _run_workers(passive, 1, steps, 128),
        "threads_one_img_per_sec": _run_workers({"OMP_NUM_THREADS": "1"}, 1, steps, 128),
        "threads_default_batch256_img_per_sec": _run_workers(default, 1, steps, 256),
        "threads_two_processes_default_img_per_sec": _run_workers(default, 2, steps, 128),
        "threads_two_processes_passive_img_per_sec": _run_workers(passive, 2, steps, 128),
    }


def bench_notebooks() -> dict:
    """Wall time of each notebook executed in the smoke profile (kernel start included)."""
    out = {}
    env = {**os.environ, "DEEPNETS_PROFILE": "smoke", "TQDM_DISABLE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        env["DEEPNETS_RESULTS_DIR"] = tmp
        for nb in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "papermill", "--cwd", str(nb.parent), str(nb),
                            str(Path(tmp) / nb.name), "-k", "python3", "--no-progress-bar"],
                           env=env, check=True, capture_output=True)
            out[f"smoke_{nb.stem}_seconds"] = time.perf_counter() - t0
    out["smoke_all_notebooks_seconds"] = sum(out.values())
    return out


# ---------------------------------------------------------------------------- report
def bars(figures: dict) -> list[tuple[str, str, bool]]:
    """Each speed target next to what was measured, and whether it was met."""
    f, out = figures["figures"], []
    out.append(("data at 28x28: >= 50x torchvision's best", f"{f['data_28_ratio']:.1f}x", f["data_28_ratio"] >= 50))
    out.append(("data resized to 224, batch 128: >= 4x torchvision's best", f"{f['data_224_ratio']:.1f}x",
                f["data_224_ratio"] >= 4))
    for name in ("alexnet", "vgg16", "resnet50"):
        if f"{name}_ratio" in f:
            out.append((f"{name}: >= 0.95x torchvision's speed", f"{f[f'{name}_ratio']:.2f}x", f[f"{name}_ratio"] >= 0.95))
    for label in measured_nets(f):
        k = label.split(" ")[0]
        share = max(f[f"{k}_nchw_gflops"], f[f"{k}_cl_gflops"]) / f["matmul_gflops"]
        out.append((f"{label}: >= 50% of the matmul peak", f"{share:.0%}", share >= 0.5))
    if "smoke_all_notebooks_seconds" in f:
        total = f["smoke_all_notebooks_seconds"]
        out.append(("all notebooks, smoke profile: < 180 s", f"{total:.0f} s", total < 180))
    return out


def render(figures: dict) -> str:
    """The README's speed section, as Markdown tables."""
    f = figures["figures"]
    lines = [f"Measured by `python -m deepnets.bench{' --quick' if figures['quick'] else ''}` on "
             f"{figures['device']}, torch {figures['torch']}, in one run "
             f"({figures['wall_seconds']:.0f} s).", "",
             "| data, one epoch of training images | batch | ours img/s | torchvision w0 | w2 | ratio |",
             "|---|---|---|---|---|---|"]
    for s in ("28", "224"):
        lines.append(f"| 28x28{' resized to 224' if s == '224' else ''} | {DATA_BATCH[s]} | "
                     f"{f[f'data_{s}_ours_img_per_sec']:,.0f} | {f[f'data_{s}_torchvision_w0_img_per_sec']:,.0f} | "
                     f"{f[f'data_{s}_torchvision_w2_img_per_sec']:,.0f} | {f[f'data_{s}_ratio']:.1f}x |")
    if "data_224_interpolate_img_per_sec" in f:
        lines.append(f"| ours resized by `F.interpolate` instead of two matmuls | {DATA_BATCH['224']} | "
                     f"{f['data_224_interpolate_img_per_sec']:,.0f} | | | |")
        lines.append(f"| ours resized to 224, 51 MB batches (fresh pages each time) | 256 | "
                     f"{f['data_224_ours_b256_img_per_sec']:,.0f} | | | |")
    lines += ["", "| training, 224x224x3, batch 8 | ours img/s | torchvision img/s | ratio (median of paired steps) |", "|---|---|---|---|"]
    for name in ("alexnet", "vgg16", "resnet50"):
        if f"{name}_ratio" in f:
            lines.append(f"| {name} | {f[f'{name}_ours_img_per_sec']:.2f} | "
                         f"{f[f'{name}_torchvision_img_per_sec']:.2f} | {f[f'{name}_ratio']:.2f} |")
    peak = f["matmul_gflops"]
    lines += ["", f"fp32 matmul peak (2048², {figures['threads']} threads, best of 10): {peak:.0f} GFLOP/s", "",
              "| CPU-sized net, its notebook's batch size | GFLOP/img (train) | img/s NCHW | img/s channels_last "
              "| GFLOP/s | % of peak | time in conv + matmul | % of peak if all else took no time |",
              "|---|---|---|---|---|---|---|---|"]
    for label in measured_nets(f):
        k = label.split(" ")[0]
        best = max(f[f"{k}_nchw_gflops"], f[f"{k}_cl_gflops"])
        share = f[f"{k}_cl_flop_kernel_share"]
        lines.append(f"| {label} | {f[f'{k}_train_gflop_per_img']:.3f} | {f[f'{k}_nchw_img_per_sec']:,.0f} | "
                     f"{f[f'{k}_cl_img_per_sec']:,.0f} | {best:.0f} | {100 * best / peak:.0f}% | {share:.0%} | "
                     f"{100 * f[f'{k}_cl_gflops'] / share / peak:.0f}% |")
    if "eval_b256_no_grad_img_per_sec" in f:
        lines += ["", "| evaluation of notebook 04's net | no_grad img/s | inference_mode img/s |", "|---|---|---|"]
        lines += [f"| batch {b} | {f[f'eval_b{b}_no_grad_img_per_sec']:,.0f} | "
                  f"{f[f'eval_b{b}_inference_mode_img_per_sec']:,.0f} |" for b in (256, 1000)]
    if "compile_lenet5_img_per_sec" in f:
        lines += ["", "| torch.compile, training, channels_last | compile s | eager img/s | compiled img/s | gain |",
                  "|---|---|---|---|---|"]
        for label in measured_nets(f):
            k = label.split(" ")[0]
            if f"compile_{k}_img_per_sec" not in f:
                continue
            eager, compiled = f[f"compile_{k}_eager_img_per_sec"], f[f"compile_{k}_img_per_sec"]
            lines.append(f"| {label} | {f[f'compile_{k}_warmup_seconds']:.0f} | {eager:,.0f} | {compiled:,.0f} | "
                         f"{compiled / eager:.2f}x |")
    if "threads_default_img_per_sec" in f:
        lines += ["", "| OpenMP setting (fresh processes), notebook 04's net training | img/s |", "|---|---|"]
        for key, what in (("default", f"default: {figures['threads']} threads, idle threads spin"),
                          ("passive", "`OMP_WAIT_POLICY=PASSIVE`: idle threads sleep"),
                          ("one", "`OMP_NUM_THREADS=1`"),
                          ("default_batch256", "default, training batch 256 instead of 128"),
                          ("two_processes_default", "two processes at once, default (sum)"),
                          ("two_processes_passive", "two processes at once, PASSIVE (sum)")):
            lines.append(f"| {what} | {f[f'threads_{key}_img_per_sec']:,.0f} |")
    lines += ["", "| speed bar the course set itself | measured | met |", "|---|---|---|"]
    for bar, value, ok in bars(figures):
        lines.append(f"| {bar} | {value} | {'yes' if ok else '**no**'} |")
    smoke = {k: v for k, v in f.items() if k.startswith("smoke_")}
    if smoke:
        lines += ["", "| notebook, smoke profile | wall time |", "|---|---|"]
        lines += [f"| {k.removeprefix('smoke_').removesuffix('_seconds')} | {v:.0f} s |" for k, v in smoke.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute: fewer images and steps")
    parser.add_argument("--out", type=Path, help=f"JSON output (default {OUT.relative_to(REPO)}; "
                        f"with --quick {QUICK_OUT.relative_to(REPO)}, so a quick run never replaces the README's figures)")
    parser.add_argument("--worker", type=int, metavar="STEPS", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(_worker(args.worker, args.batch))
        return
    t0 = time.perf_counter()
    figures = {}
    sections = [
        ("data", lambda: bench_data(10_000 if args.quick else 60_000)),
        ("models", lambda: bench_imagenet_models(["alexnet", "resnet50"] if args.quick
                                                 else ["alexnet", "vgg16", "resnet50"], 2 if args.quick else 6)),
        ("matmul", lambda: {"matmul_gflops": matmul_gflops()}),
        ("training nets", lambda: bench_training_nets(3 if args.quick else 10)),
        ("evaluation", lambda: bench_evaluation(args.quick)),
    ]
    if not args.quick:  # compiling, and fresh processes that each pay torch's start-up
        sections += [("compile", bench_compile), ("threads", lambda: bench_threads(20)),
                     ("notebooks", bench_notebooks)]
    for name, run in sections:
        t = time.perf_counter()
        figures.update(run())
        print(f"[{name}: {time.perf_counter() - t:.0f} s]", file=sys.stderr)
    data = {"device": device_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "quick": args.quick,
            "wall_seconds": time.perf_counter() - t0,
            "figures": {k: round(v, 4) for k, v in figures.items()}}
    out = args.out or (QUICK_OUT if args.quick else OUT)
    write_atomically(out, json.dumps(data, indent=2, allow_nan=False) + "\n")
    print(render(data))


if __name__ == "__main__":
    main()
