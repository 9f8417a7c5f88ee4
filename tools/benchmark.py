#!/usr/bin/env python
"""How much the Runner costs per iteration, against a plain hand-written PyTorch loop.

Both train the same small model on the same in-memory data, in this one process,
in alternating rounds (plain, Runner, Runner, plain, ...). The Runner runs with the
default hooks (timer, logger every 50 iterations, LR schedule, checkpoint, sampler
seeding). Each side records a timestamp at the end of every iteration; a round's
per-iteration time is (last - first after warm-up) / iterations. The overhead ratio
is the median over rounds of Runner / plain within the round: the two sides of a
round run back to back, so slow drift in machine speed cancels, and the median
drops the rounds a neighbouring process disturbed. The spread of the round ratios
is printed too, to show how far one number can be trusted.

    python tools/benchmark.py                  # CPU (one thread), default sizes
    python tools/benchmark.py --device cuda    # GPU throughput, when there is one
    python tools/benchmark.py --model resnet18 # a task plugin's model (see --help)
    python tools/benchmark.py --mode val --model unet --image-size 64      # validation images/s
    python tools/benchmark.py --mode predict --model unet --image-size 64  # Predictor images/s
    python tools/benchmark.py --mode fixed --clock cpu   # extra us/iteration of trainyard, MMEngine, Lightning
    python tools/benchmark.py --mode epochs --clock cpu  # wall(3 epochs) - wall(1 epoch), the same four
    python tools/benchmark.py --mode data                # ImageFolder and COCO pipelines vs torchvision's
    python tools/benchmark.py --mode scaling --independent  # the seg job on 1 and 2 gloo processes

docs/benchmark.md explains each mode and holds the measured tables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from trainyard import DATASETS, MODELS
from trainyard.data import default_collate
from trainyard.hooks import Hook


@MODELS.register()
class BenchNet(nn.Module):
    """A small conv net: three 3x3 convolutions, global pooling, a linear head."""

    def __init__(self, channels: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(channels, num_classes)

    def forward(self, batch: dict, mode: str = "loss"):
        logits = self.head(self.features(batch["inputs"]).mean(dim=(2, 3)))
        if mode == "loss":
            return {"loss_cls": nn.functional.cross_entropy(logits, batch["targets"])}
        return logits


@DATASETS.register()
class InMemoryImages(torch.utils.data.Dataset):
    """Random images and labels, made once and held in memory."""

    is_random = False  # samples are read as stored: trainyard skips per-sample seeding

    def __init__(self, length: int = 512, size: int = 32, num_classes: int = 10) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(length, 3, size, size, generator=generator)
        self.labels = torch.randint(num_classes, (length,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"inputs": self.images[index], "targets": self.labels[index]}


class IterationClock(Hook):
    """Records when each iteration ends: the same measurement the plain loop makes."""

    priority = "LOWEST"

    def __init__(self, stamps: list) -> None:
        self.stamps = stamps

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.stamps.append(clock())


@DATASETS.register()
class InMemoryDetections(torch.utils.data.Dataset):
    """trainyard_det's generated shapes with boxes, drawn once and held in memory."""

    is_random = False  # samples are read as stored: trainyard skips per-sample seeding

    def __init__(self, length: int = 512, size: int = 128) -> None:
        generated = DATASETS.build(dict(type="GeneratedDetDataset", length=length, size=size))
        self.samples = [generated[i] for i in range(length)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return self.samples[index]


@DATASETS.register()
class InMemoryShapes(torch.utils.data.Dataset):
    """trainyard_seg's generated shapes with label maps, drawn once and held in memory."""

    is_random = False  # samples are read as stored: trainyard skips per-sample seeding

    def __init__(self, length: int = 512, size: int = 64) -> None:
        generated = DATASETS.build(dict(type="ShapesDataset", split="val", length=length, size=size))
        self.samples = [generated[i] for i in range(length)]
        self.metainfo = generated.metainfo

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return self.samples[index]


TASKS = {  # name: (model config, dataset type)
    "benchnet": (dict(type="BenchNet"), "InMemoryImages"),
    # trainyard_cls classifiers (their data preprocessor normalises on the device)
    "resnet18": (dict(type="ImageClassifier", backbone=dict(type="TorchvisionBackbone", name="resnet18"), num_classes=10), "InMemoryImages"),
    "small_cnn": (dict(type="ImageClassifier", backbone=dict(type="SmallCNN"), num_classes=10), "InMemoryImages"),
    # trainyard_det: the small Faster R-CNN of configs/det/faster_rcnn_small_generated.py
    "faster_rcnn_small": (
        dict(type="FasterRCNN", backbone=dict(type="SmallDetBackbone", channels=(32, 64, 128, 64)), num_classes=3,
             min_size=128, max_size=128, anchor_sizes=((16, 32, 64),), rpn_pre_nms_top_n_train=600,
             rpn_post_nms_top_n_train=300, box_batch_size_per_image=64, representation_size=256),
        "InMemoryDetections",
    ),
    # trainyard_seg: the default config's U-Net (configs/_base_/models/unet.py)
    "unet": (dict(type="UNet", num_classes=4, base_channels=8, depth=3), "InMemoryShapes"),
}
EVALUATORS = {"InMemoryImages": dict(type="Accuracy"), "InMemoryDetections": dict(type="CocoMetric"),
              "InMemoryShapes": dict(type="IoUMetric", per_class=False)}


clock = time.perf_counter
"""Every timestamp's source: the wall clock, or this process's CPU time with ``--clock cpu``."""


def build_model(args: argparse.Namespace) -> nn.Module:
    return MODELS.build(TASKS[args.model][0])


def build_dataset(args: argparse.Namespace) -> torch.utils.data.Dataset:
    dataset_type = TASKS[args.model][1]
    return DATASETS.build(dict(type=dataset_type, length=args.samples, size=args.image_size))


def plain_loop(args: argparse.Namespace, device: torch.device) -> tuple[float, list[float]]:
    """What a user writes by hand: model, optimizer, DataLoader, loop."""
    start = clock()
    torch.manual_seed(0)
    model = build_model(args).to(device)
    preprocess = getattr(model, "data_preprocessor", None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = torch.utils.data.DataLoader(
        build_dataset(args), batch_size=args.batch_size, shuffle=True, drop_last=True, collate_fn=default_collate
    )
    stamps: list[float] = []
    model.train()
    while len(stamps) < args.iters:
        for batch in loader:
            batch = preprocess(batch) if preprocess is not None else {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            losses = model(batch, mode="loss")
            loss = sum(v for k, v in losses.items() if "loss" in k)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.append(clock())
            if len(stamps) == args.iters:
                break
    return start, stamps


def runner_loop(args: argparse.Namespace, device: torch.device, work_dir: Path) -> tuple[float, list[float]]:
    """The same training through a config and the Runner, default hooks on."""
    from mmengine.config import Config

    from trainyard.runner import Runner

    stamps: list[float] = []
    hooks: list[Hook] = [IterationClock(stamps)]
    if device.type == "cuda":
        hooks.append(_CudaSync())
    cfg = Config.fromfile(str(Path(__file__).resolve().parents[1] / "configs/_base_/default_runtime.py"))
    cfg.merge_from_dict(
        dict(
            model=TASKS[args.model][0],
            train_dataloader=dict(
                batch_size=args.batch_size, drop_last=True,
                dataset=dict(type=TASKS[args.model][1], length=args.samples, size=args.image_size),
            ),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
            param_scheduler=[dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50)],
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=args.iters, val_interval=10**9),
            randomness=dict(seed=0),
            work_dir=str(work_dir),
        )
    )
    cfg.custom_hooks = hooks
    start = clock()
    with contextlib.redirect_stdout(io.StringIO()):
        Runner.from_cfg(cfg).train()
    return start, stamps


class _CudaSync(Hook):
    """On CUDA both sides wait for the step to finish before taking the time."""

    priority = "LOWEST"

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        torch.cuda.synchronize(runner.device)


# validation and prediction -----------------------------------------------------------


def plain_eval(args: argparse.Namespace, model: nn.Module, dataset: torch.utils.data.Dataset, device: torch.device) -> list[float]:
    """Validation by hand: an ``inference_mode`` loop feeding the same metric and drawing its pictures; a timestamp per batch."""
    from trainyard.evaluation import Evaluator

    evaluator = Evaluator.from_cfg(EVALUATORS[TASKS[args.model][1]], "val_evaluator")
    evaluator.set_dataset_meta(getattr(dataset, "metainfo", None) or {})
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, collate_fn=default_collate)
    model.eval()
    evaluator.reset()
    stamps = [clock()]
    with torch.inference_mode():
        for batch in loader:
            batch = model.data_preprocessor(batch)
            evaluator.process(batch, model(batch, mode="predict"))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.append(clock())
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.pictures()  # the same work product as Runner.val, which writes them (a confusion matrix, say)
    stamps.append(clock())
    return stamps


class _ValClock(Hook):
    priority = "LOWEST"

    def __init__(self, stamps: list) -> None:
        self.stamps = stamps

    def before_val_epoch(self, runner) -> None:
        self.stamps.append(clock())

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.device.type == "cuda":
            torch.cuda.synchronize(runner.device)
        self.stamps.append(clock())

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.stamps.append(clock())


def runner_eval(args: argparse.Namespace, model: nn.Module, dataset: torch.utils.data.Dataset, device: torch.device, work_dir: Path) -> list[float]:
    """The same validation through ``Runner.val()`` (default hooks, progress, evaluator)."""
    from mmengine.config import Config

    from trainyard.runner import Runner

    stamps: list[float] = []
    cfg = Config.fromfile(str(Path(__file__).resolve().parents[1] / "configs/_base_/default_runtime.py"))
    cfg.merge_from_dict(dict(
        model=TASKS[args.model][0], val_dataloader=dict(batch_size=args.batch_size, dataset=dataset),
        val_evaluator=EVALUATORS[TASKS[args.model][1]], randomness=dict(seed=0), work_dir=str(work_dir),
    ))
    cfg.custom_hooks = [_ValClock(stamps)]
    with contextlib.redirect_stdout(io.StringIO()):
        runner = Runner.from_cfg(cfg)
        runner.unwrapped_model.load_state_dict(model.state_dict())
        runner.val()
    return stamps


def compare_eval(args: argparse.Namespace, device: torch.device) -> None:
    torch.manual_seed(0)
    model = build_model(args).to(device)
    dataset = build_dataset(args)
    seconds: dict[str, list[float]] = {"plain": [], "runner": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            order = ["plain", "runner"] if round_index % 2 == 0 else ["runner", "plain"]
            for side in order:
                stamps = plain_eval(args, model, dataset, device) if side == "plain" else runner_eval(args, model, dataset, device, Path(tmp) / str(round_index))
                seconds[side].append(stamps[-1] - stamps[0])
                print(f"round {round_index + 1} {side:>6}: {len(dataset) / seconds[side][-1]:.1f} images/s", file=sys.stderr)
    report(args, device, "validation (inference_mode loop + metric vs Runner.val)", len(dataset), seconds)


def compare_predict(args: argparse.Namespace, device: torch.device) -> None:
    """``Predictor`` on in-memory images against the same model in a hand-written ``inference_mode`` loop."""
    from trainyard.inference import Predictor

    torch.manual_seed(0)
    model = build_model(args).to(device).eval()
    dataset = build_dataset(args)
    images = [dataset[i]["inputs"] for i in range(len(dataset))]
    if images[0].dtype != torch.uint8:
        sys.exit(f"--mode predict compares on uint8 images, as a Predictor reads them; {args.model}'s benchmark data are "
                 f"{images[0].dtype}: use --model unet or faster_rcnn_small")
    predictor = Predictor(model, device=device, batch_size=args.batch_size)

    def by_hand() -> list:
        """Batches of the same images through the model; every image's prediction kept on the CPU, as a user needs them."""
        kept = []
        with torch.inference_mode():
            for start in range(0, len(images), args.batch_size):
                chunk = images[start : start + args.batch_size]
                batch = {"inputs": torch.stack(chunk), "meta": [{"ori_size": tuple(i.shape[-2:])} for i in chunk]}
                outputs = model(model.data_preprocessor(batch), mode="predict")
                if isinstance(outputs, torch.Tensor):
                    kept.extend(outputs.cpu())
                else:
                    kept.extend({k: v.cpu() for k, v in output.items()} if isinstance(output, dict) else output.cpu() for output in outputs)
        return kept

    seconds: dict[str, list[float]] = {"plain": [], "runner": []}
    for round_index in range(args.rounds):
        order = ["plain", "runner"] if round_index % 2 == 0 else ["runner", "plain"]
        for side in order:
            start = clock()
            by_hand() if side == "plain" else predictor(images)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[side].append(clock() - start)
            print(f"round {round_index + 1} {side:>6}: {len(images) / seconds[side][-1]:.1f} images/s", file=sys.stderr)
    report(args, device, "prediction (inference_mode loop vs Predictor)", len(images), seconds)


def report(args: argparse.Namespace, device: torch.device, what: str, images: int, seconds: dict[str, list[float]]) -> None:
    plain, ours = statistics.median(seconds["plain"]), statistics.median(seconds["runner"])
    ratios = sorted(p / r for p, r in zip(seconds["plain"], seconds["runner"]))
    model = "" if args.mode == "data" else f"model {args.model}, "
    print(f"{what}: {model}device {device}, {torch.get_num_threads()} thread(s), batch {args.batch_size}, "
          f"{images} images of {args.image_size}x{args.image_size}, {args.rounds} rounds, {args.clock} clock")
    print(f"plain loop : {images / plain:.1f} images/s")
    print(f"trainyard  : {images / ours:.1f} images/s")
    print(f"throughput ratio (trainyard / plain, images/s): {statistics.median(ratios):.4f}  "
          f"(rounds ranged {ratios[0]:.3f} to {ratios[-1]:.3f})")


def compare_frameworks(args: argparse.Namespace) -> None:
    """``--mode fixed`` and ``--mode epochs``: plain loop, trainyard, MMEngine and Lightning, interleaved in one run."""
    import benchmark_frameworks as frameworks

    sides, notes = frameworks.available_sides()
    frameworks.clock = clock
    generator = torch.Generator().manual_seed(0)
    without = tuple(name.strip() for name in args.without_hooks.split(",") if name.strip())
    if without:
        from mmengine.config import Config

        shipped = Config.fromfile(str(Path(__file__).resolve().parents[1] / "configs/_base_/default_runtime.py")).default_hooks
        unknown = [name for name in without if name not in shipped]
        if unknown:
            raise SystemExit(f"--without-hooks: {', '.join(unknown)} not among default_hooks ({', '.join(shipped)})")
        print(f"trainyard without default_hooks: {', '.join(without)}")
    if args.mode == "fixed":
        inputs = torch.randn(args.samples, 16, generator=generator)
        targets = torch.randint(4, (args.samples,), generator=generator)
        job = frameworks.Job(frameworks.linear_network(), inputs, targets, batch_size=1, iters=args.iters,
                             trainyard_without=without)
    else:
        inputs = torch.randn(args.samples, 3, args.image_size, args.image_size, generator=generator)
        targets = torch.randint(10, (args.samples,), generator=generator)
        job = frameworks.Job(frameworks.small_cnn_network(), inputs, targets, batch_size=args.batch_size, epochs=args.epochs,
                             trainyard_without=without)
    frameworks.run_plain(frameworks.Job(job.network, inputs, targets, job.batch_size, iters=3), Path("."))  # warm-up, not timed
    timings: dict[str, list[float]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            order = sides[round_index % len(sides):] + sides[: round_index % len(sides)]
            for side in order:
                stamps = frameworks.SIDES[side](job, Path(tmp) / f"{side}{round_index}")
                if args.mode == "fixed":
                    timings[side].append(per_iteration(stamps, args.warmup))
                    shown = f"{1e6 * timings[side][-1]:.1f} us/iter"
                else:
                    timings[side].append(stamps[-1] - stamps[0])  # wall(N epochs) - wall(1 epoch)
                    shown = f"{timings[side][-1]:.3f} s for epochs 2-{args.epochs}"
                print(f"round {round_index + 1} {side:>9}: {shown}", file=sys.stderr)
    plain = timings["plain"]
    if args.mode == "fixed":
        print(f"fixed cost per iteration: nn.Linear(16, 4), batch 1, {args.iters} iterations ({args.warmup} warm-up), "
              f"{args.rounds} interleaved rounds, {torch.get_num_threads()} thread(s), {args.clock} clock")
        print(f"plain loop : {1e6 * statistics.median(plain):.1f} us/iter")
        for side in sides[1:]:
            extra = sorted(1e6 * (t - p) for t, p in zip(timings[side], plain))
            print(f"{side:<10} : {1e6 * statistics.median(timings[side]):.1f} us/iter, extra {statistics.median(extra):+.1f} us/iter "
                  f"(rounds ranged {extra[0]:+.1f} to {extra[-1]:+.1f}); fastest round against fastest round "
                  f"{1e6 * (min(timings[side]) - min(plain)):+.1f} us/iter")
    else:
        print(f"steady state: wall({args.epochs} epochs) - wall(1 epoch), small CNN, batch {args.batch_size}, {args.samples} images of "
              f"{args.image_size}x{args.image_size} in memory, {args.rounds} interleaved rounds, {torch.get_num_threads()} thread(s), "
              f"{args.clock} clock")
        print(f"plain loop : {statistics.median(plain):.3f} s")
        for side in sides[1:]:
            ratios = sorted(t / p for t, p in zip(timings[side], plain))
            print(f"{side:<10} : {statistics.median(timings[side]):.3f} s, ratio to plain {statistics.median(ratios):.3f} "
                  f"(rounds ranged {ratios[0]:.3f} to {ratios[-1]:.3f})")
    for note in notes:
        print(note)


def compare_data(args: argparse.Namespace) -> None:
    """``--mode data``: images/s of trainyard's ImageFolder and COCO pipelines against torchvision's, on JPEG files."""
    import benchmark_data

    root = Path(args.data_dir or Path(tempfile.gettempdir()) / f"trainyard_benchmark_jpegs_{args.samples}_{args.image_size}")
    benchmark_data.write_jpeg_dataset(root, args.samples, args.image_size)
    crop = max(args.image_size * 7 // 8, 1)
    for name, (ours, theirs) in benchmark_data.PIPELINES.items():
        seconds: dict[str, list[float]] = {"plain": [], "runner": []}
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' progress lines
            loaders = {"plain": theirs(root, crop, args.batch_size, args.num_workers), "runner": ours(root, crop, args.batch_size, args.num_workers)}
        for round_index in range(args.rounds):
            for side in ["plain", "runner"] if round_index % 2 == 0 else ["runner", "plain"]:
                elapsed, images = benchmark_data.images_per_second(loaders[side], clock)
                seconds[side].append(elapsed)
                print(f"{name} round {round_index + 1} {'torchvision' if side == 'plain' else 'trainyard':>11}: "
                      f"{images / elapsed:.1f} images/s", file=sys.stderr)
        report(args, torch.device("cpu"), f"data loading, {name} (torchvision dataset + v2 transforms vs trainyard, "
               f"{args.num_workers} workers, JPEG files of {args.image_size}x{args.image_size}, crop/resize {crop})", images, seconds)


def compare_scaling(args: argparse.Namespace) -> None:
    """``--mode scaling``: the seg job's images/s on 1 and on ``--processes`` processes, ``--rounds`` runs each."""
    import benchmark_scaling

    interval = max(args.iters // 6, 1)
    sides = {"1 process": (1, False), f"{args.processes} processes": (args.processes, False)}
    if args.independent:
        sides[f"{args.processes} independent 1-process jobs"] = (args.processes, True)
    results: dict[str, list[float]] = {name: [] for name in sides}
    for round_index in range(args.rounds):
        for name, (processes, independent) in sides.items():
            results[name].append(benchmark_scaling.run(processes, args.iters, interval, args.cfg_options, independent))
            print(f"run {round_index + 1} {name}: {results[name][-1]:.1f} images/s", file=sys.stderr)
    print(f"seg U-Net ({benchmark_scaling.CONFIG}), gloo, 1 thread per process, {args.iters} iterations per run "
          f"(first {interval} left out), {args.rounds} runs, options {args.cfg_options or 'none'}")
    single = results["1 process"]
    for name, values in results.items():
        speedups = ", ".join(f"{v / s:.2f}x" for v, s in zip(values, single))
        print(f"{name:<32}: {', '.join(f'{v:.1f}' for v in values)} images/s (vs 1 process: {speedups})")


def per_iteration(stamps: list[float], warmup: int) -> float:
    return (stamps[-1] - stamps[warmup]) / (len(stamps) - 1 - warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=200, help="iterations per run")
    parser.add_argument("--warmup", type=int, default=20, help="iterations left out of the timing")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (each runs both sides; even, so each order runs equally often)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives steadier numbers)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="benchnet", choices=sorted(TASKS),
                        help="benchnet: a 3-conv net; resnet18, small_cnn: trainyard_cls classifiers; "
                             "faster_rcnn_small: a trainyard_det detector (use --image-size 128); "
                             "unet: the default seg U-Net (use --image-size 64)")
    parser.add_argument("--without-hooks", default="", help="--mode fixed/epochs: default_hooks the trainyard side leaves out, "
                        "comma-separated (e.g. logger or timer,nan_guard): what they cost")
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="time by the wall clock, or by this process's CPU time (steadier on a machine other jobs share; "
                             "not for CUDA, whose work the CPU time of this process does not count)")
    parser.add_argument("--processes", type=int, default=2, help="--mode scaling: processes of the distributed run")
    parser.add_argument("--independent", action="store_true",
                        help="--mode scaling: also run as many independent 1-process jobs at once (what the machine allows)")
    parser.add_argument("--cfg-options", nargs="*", default=[], help="--mode scaling: config overrides for every run, "
                        "e.g. model_wrapper_cfg.gradient_as_bucket_view=True train_dataloader.num_workers=0")
    parser.add_argument("--num-workers", type=int, default=2, help="--mode data: DataLoader workers of both sides")
    parser.add_argument("--data-dir", default=None, help="--mode data: where the JPEG files are written (default: a temporary folder, reused)")
    parser.add_argument("--epochs", type=int, default=3, help="--mode epochs: epochs per run (the time of epochs 2..N is reported)")
    parser.add_argument("--mode", default="train", choices=("train", "val", "predict", "fixed", "epochs", "data", "scaling"),
                        help="train: Runner vs a training loop; val: Runner.val() vs an inference_mode loop with the "
                             "same metric; predict: Predictor vs an inference_mode loop (images/s); fixed: per-iteration "
                             "cost of trainyard, MMEngine and Lightning over a plain loop (linear layer, batch 1); epochs: "
                             "wall(N epochs) - wall(1 epoch) of a small CNN for the same four; data: images/s of trainyard's ImageFolder "
                             "and COCO pipelines against torchvision's; scaling: the seg job's images/s on 1 and N gloo processes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.without_hooks and args.mode not in ("fixed", "epochs"):
        raise SystemExit("--without-hooks applies to --mode fixed and --mode epochs only")
    if args.mode in ("fixed", "epochs"):
        return compare_frameworks(args)
    if args.mode == "data":
        return compare_data(args)
    if args.mode == "scaling":
        return compare_scaling(args)
    if args.mode == "val":
        return compare_eval(args, device)
    if args.mode == "predict":
        return compare_predict(args, device)

    results: dict[str, list[tuple[float, float]]] = {"plain": [], "runner": []}
    plain_loop(argparse.Namespace(**{**vars(args), "iters": 3}), device)  # process warm-up, not timed
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            order = ["plain", "runner"] if round_index % 2 == 0 else ["runner", "plain"]
            for side in order:
                if side == "plain":
                    start, stamps = plain_loop(args, device)
                else:
                    start, stamps = runner_loop(args, device, Path(tmp) / f"round{round_index}")
                results[side].append((stamps[0] - start, per_iteration(stamps, args.warmup)))
                print(f"round {round_index + 1} {side:>6}: first iteration after {stamps[0] - start:.3f} s, "
                      f"{1000 * results[side][-1][1]:.3f} ms/iter", file=sys.stderr)

    plain_iter = statistics.median(r[1] for r in results["plain"])
    runner_iter = statistics.median(r[1] for r in results["runner"])
    plain_first = statistics.median(r[0] for r in results["plain"])
    runner_first = statistics.median(r[0] for r in results["runner"])
    ratios = sorted(r[1] / p[1] for r, p in zip(results["runner"], results["plain"]))
    print(f"model {args.model}, device {device}, {torch.get_num_threads()} thread(s), batch {args.batch_size}, "
          f"{args.image_size}x{args.image_size}, {args.iters} iterations x {args.rounds} rounds")
    print(f"plain loop : {1000 * plain_iter:.3f} ms/iter, first iteration after {plain_first:.3f} s")
    print(f"Runner     : {1000 * runner_iter:.3f} ms/iter, first iteration after {runner_first:.3f} s")
    print(f"overhead ratio (Runner / plain, per iteration): {statistics.median(ratios):.4f}  "
          f"(rounds ranged {ratios[0]:.3f} to {ratios[-1]:.3f})")
    print(f"extra time to the first iteration: {runner_first - plain_first:.3f} s")


if __name__ == "__main__":
    main()
