"""The ``trainyard`` command: ``train``, ``test``, ``val``, ``predict``, ``export``, ``runs``, ``plot``, ``sweep``, ``config``, ``plugins`` and ``new-plugin``.

The ``tools/*.py`` scripts are thin wrappers over :func:`main`. A mistake in the
user's input (:class:`~trainyard.errors.TrainyardError`) is printed as one message
with exit status 2; an error raised by user code keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trainyard.errors import TrainyardError

EXIT_USER_ERROR = 2


def _add_cfg_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys: 'a.b=1' 'c=[1,2]' 'name=a, b' (Python literals, else strings)",
    )


def _prepare(args: argparse.Namespace, mode: str) -> Any:
    """Load the config and apply the command-line options on top of ``--cfg-options``."""
    from trainyard.config_scopes import config_file, config_stem

    config_file(args.config)  # before torch is imported: a typo is answered at once
    from trainyard.config import load_config, validate_config
    from trainyard.dist import detect_launcher

    cfg = load_config(args.config, args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get("work_dir"):
        cfg.work_dir = str(Path("work_dirs") / config_stem(args.config))
    cfg.launcher = args.launcher or cfg.get("launcher") or detect_launcher()
    if mode == "train":
        randomness = dict(cfg.get("randomness") or {})
        if args.seed is not None:
            randomness["seed"] = args.seed
        if args.deterministic:
            randomness["deterministic"] = True
        cfg.randomness = randomness
        if args.amp:
            cfg.optim_wrapper = {**dict(cfg.get("optim_wrapper") or {}), "type": "AmpOptimWrapper"}
        if args.resume is not None:
            cfg.resume = args.resume
        if args.overwrite:
            cfg.overwrite = True
        if args.load_from is not None:
            cfg.load_from = args.load_from
    else:
        cfg.load_from = dict(path=args.checkpoint, strict=False) if args.non_strict else args.checkpoint
        cfg.resume = False
    validate_config(cfg, mode=mode)
    return cfg


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = _prepare(args, "train")
    from trainyard import dist
    from trainyard.runner import Runner

    from trainyard.interrupts import TrainingInterrupted

    try:
        Runner.from_cfg(cfg).train()
    except TrainingInterrupted:
        dist.destroy(synchronize=True)  # every rank stopped after the same iteration
        raise
    except BaseException:
        dist.destroy()
        raise
    dist.destroy(synchronize=True)
    return 0


def _evaluate(args: argparse.Namespace, split: str) -> int:
    """``test`` and ``val``: load the checkpoint, run the loop once, optionally write the metrics."""
    cfg = _prepare(args, split)
    from trainyard import dist
    from trainyard.runner import Runner

    try:
        runner = Runner.from_cfg(cfg)
        metrics = runner.test() if split == "test" else runner.val()
    except BaseException:
        dist.destroy()
        raise
    dist.destroy(synchronize=True)
    if args.out and runner.rank == 0:
        Path(args.out).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    return _evaluate(args, "test")


def _cmd_val(args: argparse.Namespace) -> int:
    return _evaluate(args, "val")


def _source_and_inputs(source: str, rest: list[str], needs_inputs: bool) -> tuple[str, str | None, list[str]]:
    """``CONFIG CHECKPOINT ...`` or ``CHECKPOINT|RUN ...``: returns (checkpoint or run, config or None, the rest)."""
    if source.endswith(".py"):
        from trainyard.config_scopes import config_file

        config_file(source)
        if not rest:
            raise TrainyardError(f"after the config {source}, give the checkpoint (or give a work dir instead of the config)")
        checkpoint, rest = rest[0], rest[1:]
        config: str | None = source
    else:
        checkpoint, config = source, None
    if needs_inputs and not rest:
        raise TrainyardError("give the images or folders to predict on after the checkpoint")
    return checkpoint, config, rest


def _unique_stem(source: str, used: set[str]) -> str:
    stem = Path(source).stem if source and not source.startswith("input ") else source.replace(" ", "_")
    candidate, number = stem, 1
    while candidate in used:
        candidate, number = f"{stem}_{number}", number + 1
    used.add(candidate)
    return candidate


def _cmd_predict(args: argparse.Namespace) -> int:
    import time

    checkpoint, config, inputs = _source_and_inputs(args.source, list(args.inputs), needs_inputs=True)
    from PIL import Image

    from trainyard.inference import Predictor, expand_inputs
    from trainyard.logging import setup_logger
    from trainyard.loops import Progress

    setup_logger(None, 0, "WARNING" if args.quiet else "INFO")
    predictor = Predictor.from_run(checkpoint, config=config, device=args.device, amp=args.amp,
                                   batch_size=args.batch_size, num_workers=args.num_workers)
    items = expand_inputs(inputs)  # every path is checked before anything is written
    out = _output_folder(Path(args.out))
    (out / "vis").mkdir(exist_ok=True)
    progress = Progress(len(items), "predict", enabled=True)
    used: set[str] = set()
    pictures: list[Path] = []
    start = time.perf_counter()
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as records:
        for done, prediction in enumerate(predictor.predict([item for _, item in items], topk=args.topk, score_thr=args.score_thr), 1):
            source = items[done - 1][0]
            stem = _unique_stem(source, used)
            record = {"source": source, "height": prediction.image.shape[-2], "width": prediction.image.shape[-1]}
            record.update(predictor.task.record(prediction.result))
            record.update(predictor.task.save(prediction.result, out, stem))
            picture = predictor.draw(prediction)
            if picture is not None:
                pictures.append(out / "vis" / f"{stem}.png")
                Image.fromarray(picture.permute(1, 2, 0).numpy()).save(pictures[-1])
                record["picture"] = str(pictures[-1].relative_to(out))
            records.write(json.dumps(record) + "\n")
            progress.update(done)
    progress.close()
    seconds = time.perf_counter() - start
    print(f"predicted {len(items)} images in {seconds:.1f} s ({len(items) / max(seconds, 1e-9):.1f} images/s): "
          f"results in {out / 'predictions.jsonl'}, pictures in {out / 'vis'}")
    if args.show:
        _show(pictures)
    return 0


def _output_folder(out: Path) -> Path:
    """``--out``, created: a file in its place (or above it) or a folder that cannot be created is one clear error."""
    blocking = next((folder for folder in (out, *out.parents) if folder.exists() and not folder.is_dir()), None)
    if blocking is not None:
        raise TrainyardError(f"--out {out}: {blocking} is a file; give a folder (new or existing) for the results")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainyardError(f"--out {out}: cannot create the folder ({exc.strerror}); give a folder you can write to") from None
    return out


def _show(pictures: list[Path]) -> None:
    """Open each picture in a window, one after the other (needs a display)."""
    import matplotlib

    if matplotlib.get_backend().lower() == "agg":
        raise TrainyardError("--show needs a display, and this session has none; the pictures are written under --out")
    import matplotlib.pyplot as plt
    from PIL import Image

    for path in pictures:
        with Image.open(path) as picture:
            plt.figure(path.name)
            plt.imshow(picture)
            plt.axis("off")
            plt.show()


def _cmd_export(args: argparse.Namespace) -> int:
    checkpoint, config, rest = _source_and_inputs(args.source, list(args.rest), needs_inputs=False)
    if rest:
        raise TrainyardError(f"unexpected arguments {rest}; export takes CONFIG CHECKPOINT or a checkpoint or work dir")
    from trainyard.export import FORMATS, export_model
    from trainyard.inference import Predictor
    from trainyard.logging import setup_logger

    setup_logger(None, 0, "INFO")
    predictor = Predictor.from_run(checkpoint, config=config, device="cpu")
    sample = _export_sample(predictor, args.input_size)
    out = _output_folder(Path(args.out) if args.out else predictor.checkpoint_path.parent / "export")
    stem = predictor.checkpoint_path.stem
    for format in args.format:
        result = export_model(predictor, format, out / f"{stem}{FORMATS[format]}", sample, atol=args.atol)
        print(result.summary())
    return 0


def _export_sample(predictor: Any, input_size: Sequence[int] | None) -> Any:
    """A real image for tracing and checking: the test set's first, after the test pipeline; or noise of ``--input-size``."""
    import torch

    if input_size:
        if min(input_size) < predictor.min_input_size:
            raise TrainyardError(f"--input-size {input_size[0]} {input_size[1]} is smaller than {type(predictor.model).__name__} "
                                 f"runs on: give sides of at least {predictor.min_input_size}")
        return torch.randint(0, 256, (3, *input_size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    from trainyard.registry import DATASETS

    for key in ("test_dataloader", "val_dataloader"):
        dataset_cfg = (predictor.cfg.get(key) or {}).get("dataset")
        if dataset_cfg is None:
            continue
        try:
            return DATASETS.build(dataset_cfg)[0]["inputs"]
        except Exception as exc:  # noqa: BLE001 - the dataset may not be on this machine
            raise TrainyardError(f"cannot read a sample image from {key}.dataset ({type(exc).__name__}: {exc}); "
                                 "give the input size instead: --input-size HEIGHT WIDTH") from None
    raise TrainyardError("the config has no test or val dataset to take a sample image from; give --input-size HEIGHT WIDTH")


def _count_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for a count such as a batch size (at least 1) or worker processes (at least 0)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", default=None, help="where checkpoints and logs go (default: work_dirs/<config name>)")
    parser.add_argument("--launcher", choices=("none", "pytorch", "slurm"), default=None,
                        help="how processes were started (default: detected from the environment)")
    _add_cfg_options(parser)


def _cmd_runs(args: argparse.Namespace) -> int:
    from trainyard.experiments.runs import differing_keys, filter_runs, format_table, main_metrics, sort_runs

    roots = args.work_dirs or ["work_dirs"]
    runs = filter_runs(_read_runs(roots), args.filter)
    differing_keys(runs)
    runs = sort_runs(runs, args.sort)
    if args.json:
        print(json.dumps([run.to_json() for run in runs], indent=1))
    elif not runs:
        print(f"no runs under {', '.join(roots)}")
    else:
        print(format_table(runs, main_metrics(runs)))
    return 0


def _read_runs(sources: Sequence[str]) -> list[Any]:
    """Every run under ``sources``; a source that does not exist is an error."""
    from trainyard.experiments.runs import find_runs, read_run

    missing = [source for source in sources if not Path(source).exists()]
    if missing:
        raise TrainyardError(f"no such directory: {', '.join(missing)}")
    return [read_run(run_dir) for run_dir in find_runs(sources)]


def _selected_runs(sources: Sequence[str]) -> list[Any]:
    from trainyard.experiments.runs import differing_keys

    runs = _read_runs(sources)
    if not runs:
        raise TrainyardError(f"no runs (directories with config.py and a log) under {', '.join(sources)}")
    differing_keys(runs)
    return runs


def _cmd_plot(args: argparse.Namespace) -> int:
    from trainyard.experiments.plot import plot_curves, run_label

    runs = _selected_runs(args.runs)
    keys = [key.strip() for key in args.keys.split(",") if key.strip()]
    drawn = plot_curves(runs, keys, Path(args.out), x_axis=args.x, smoothing=args.smooth)
    print(f"wrote {args.out}: " + "; ".join(f"{name} ({len(lines)} runs)" for name, lines in drawn.items()))
    print("mean time per iteration (train/time), as mmdet's analyze_logs.py cal_train_time:")
    for run in runs:
        seconds = f"{run.s_per_iter:.4f} s" if run.s_per_iter is not None else "not logged"
        print(f"  {run_label(run)}: {seconds} over {run.iterations} iterations ({run.status})")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from trainyard.config_scopes import config_file, config_stem

    config_file(args.config)
    from trainyard.experiments.runs import differing_keys, find_runs, format_table, main_metrics, read_run, sort_runs
    from trainyard.experiments.sweep import check_plan, parse_grid, plan, run_sweep

    grid = parse_grid(args.grid)
    root = Path(args.work_dir or Path("work_dirs") / f"{config_stem(args.config)}_sweep")
    combinations = plan(grid, root)
    check_plan(args.config, grid, combinations, args.cfg_options)
    outcomes = run_sweep(args.config, combinations, args.cfg_options, args.launcher, args.partition)
    runs = [read_run(run_dir) for run_dir in find_runs([str(c.work_dir) for c in combinations if c.work_dir.is_dir()])]
    differing_keys(runs)
    metric = args.sort or next(iter(main_metrics(runs, 1)), None)
    print(format_table(sort_runs(runs, metric), main_metrics(runs)) if runs else f"no runs under {root} yet")
    failed = [name for name, result in outcomes.items() if result != "finished"]
    if failed:
        print(f"{len(failed)} of {len(combinations)} runs did not finish: {', '.join(failed)}; their output is in "
              f"<work dir>/sweep_console.log; run the same sweep again to continue them", file=sys.stderr)
        return 1
    return 0


def _config_rows(source: str, cfg_options: Sequence[str]) -> tuple[dict[str, tuple[Any, str]], str]:
    """``{key: (value, file that set it)}`` of a config file, or of a run directory's saved config."""
    from trainyard.config import explain
    from trainyard.experiments.runs import read_config

    path = Path(source)
    if path.is_dir():
        saved = path / "config.py"
        if not saved.is_file():
            runs = sorted(path.glob("*/config.py"))
            if not runs:
                raise TrainyardError(f"{path} is neither a run directory nor a work dir holding one (no config.py)")
            saved = runs[-1]  # a work dir: its newest run
        return {key: (value, str(saved)) for key, value in read_config(saved).items()}, str(saved)
    return {key: (value, where) for key, value, where in explain(path, cfg_options)}, str(path)


def _cmd_config(args: argparse.Namespace) -> int:
    from trainyard.config import explain, format_explanation, load_config, validate_config

    if args.diff:
        ours, our_name = _config_rows(args.config, args.cfg_options)
        theirs, their_name = _config_rows(args.diff, [])
        keys = [k for k in sorted(set(ours) | set(theirs)) if repr(ours.get(k, (None,))[0]) != repr(theirs.get(k, (None,))[0])]
        print(f"--- {our_name}\n+++ {their_name}")
        for key in keys:
            for sign, rows in (("-", ours), ("+", theirs)):
                value, where = rows.get(key, ("(not set)", ""))
                print(f"{sign} {key} = {value!r}" + (f"    # {where}" if where else ""))
        print(f"{len(keys)} keys differ")
        return 0
    cfg = load_config(args.config, args.cfg_options)
    validate_config(cfg)
    if args.explain:
        print(format_explanation(explain(args.config, args.cfg_options)))
    else:
        print(cfg.pretty_text)
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    if args.check:
        from trainyard.plugin_check import check_plugin

        report = check_plugin(args.check)
        print("\n".join(report.lines()))
        return 1 if report.failed else 0
    from trainyard.plugins import plugin_records
    from trainyard.registry import ROOT_REGISTRIES

    by_plugin: dict[str, dict[str, list[str]]] = {}
    origins = {}
    for registry in ROOT_REGISTRIES:
        for entry in registry.entries():
            by_plugin.setdefault(entry.origin.plugin, {}).setdefault(registry.kind, []).append(entry.name)
            origins.setdefault(entry.origin.plugin, entry.origin)
    records = plugin_records()
    lines = []
    for record in records:
        lines.append(f"{record.name}  [{record.status}]  {record.distribution or '?'} {record.version or ''}".rstrip())
        lines.append(f"  entry point: {record.name} = {record.entry_point}")
        lines.extend(f"  problem: {p}" for p in record.problems)
        lines.extend(_registered_lines(by_plugin.pop(record.name, {})))
        lines.extend(_config_lines(record.name))
    for plugin, registered in sorted(by_plugin.items()):
        origin = origins[plugin]
        label = "built in" if plugin == "trainyard" else (f"library {origin.distribution} {origin.version or ''}".rstrip() if origin.distribution else "registered by import")
        lines.append(f"{plugin}  [{label}]")
        lines.extend(_registered_lines(registered))
        lines.extend(_config_lines(plugin))
    print("\n".join(lines))
    return 0


def _registered_lines(registered: dict[str, list[str]]) -> list[str]:
    if not registered:
        return ["  registers nothing"]
    return [f"  {kind} ({len(names)}): {', '.join(sorted(names))}" for kind, names in registered.items()]


def _config_lines(scope: str, shown: int = 4) -> list[str]:
    """The configs a plugin's package ships, by the names ``_base_`` takes."""
    from trainyard.config_scopes import shipped_configs

    names = sorted(shipped_configs(scope), key=lambda name: ("_base_/" in name, name))  # runnable ones first
    if not names:
        return []
    return [f"  configs ({len(names)}): {', '.join(names[:shown])}" + (", ..." if len(names) > shown else "")]


def _cmd_new_plugin(args: argparse.Namespace) -> int:
    from trainyard.scaffold import TASKS, generate, names_for

    destination = Path(args.out or args.name)
    files = generate(args.name, args.task, destination)
    names = names_for(args.name)
    print(f"wrote {len(files)} files to {destination}/: {TASKS[args.task].summary}, as the plugin '{names['plugin']}'")
    for path in files:
        print(f"  {path.relative_to(destination)}")
    print(f"next:\n  cd {destination}\n  pip install -e \".[test]\"\n  pytest\n  trainyard train {names['package']}::quick.py")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainyard", description="Train and test models from MMEngine-style configs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model from a config")
    train.add_argument("config", help="config file")
    train.add_argument("--resume", nargs="?", const="auto", default=None, metavar="auto|PATH",
                       help="resume from PATH, or with no value from the work dir's last_checkpoint")
    train.add_argument("--overwrite", action="store_true",
                       help="start a new run in a work dir that holds an earlier run's checkpoints, deleting them")
    train.add_argument("--load-from", default=None, metavar="PATH", help="initial weights (no optimizer state)")
    train.add_argument("--amp", action="store_true", help="mixed precision: float16 on CUDA, bfloat16 on the CPU")
    train.add_argument("--seed", type=int, default=None, help="random seed (default: the config's, else drawn and logged)")
    train.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    _add_run_options(train)
    train.set_defaults(handler=_cmd_train)

    for split, handler in (("test", _cmd_test), ("val", _cmd_val)):
        evaluate = commands.add_parser(split, help=f"evaluate a checkpoint on the {'test' if split == 'test' else 'validation'} set")
        evaluate.add_argument("config", help="config file")
        evaluate.add_argument("checkpoint", help="checkpoint file")
        evaluate.add_argument("--out", default=None, metavar="FILE", help="also write the metrics as JSON")
        evaluate.add_argument("--non-strict", action="store_true",
                              help="evaluate a checkpoint that lacks some of the model's keys (they keep their initial values)")
        _add_run_options(evaluate)
        evaluate.set_defaults(handler=handler)

    predict = commands.add_parser(
        "predict", help="run a trained model on your own images",
        description="trainyard predict CONFIG CHECKPOINT INPUTS... | trainyard predict CHECKPOINT_OR_WORK_DIR INPUTS...",
    )
    predict.add_argument("source", metavar="CONFIG_OR_RUN", help="a config file (then the checkpoint), a checkpoint, or a work dir "
                         "(its best checkpoint, else its last; the config saved with it is used)")
    predict.add_argument("inputs", nargs="+", metavar="[CHECKPOINT] INPUTS", help="image files and folders of images")
    predict.add_argument("--out", default="predictions", metavar="DIR",
                         help="where predictions.jsonl, vis/ pictures and masks/ go (default: predictions)")
    predict.add_argument("--batch-size", type=_count_at_least(1), default=None, help="images per forward pass (default: the test dataloader's)")
    predict.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, cuda:1")
    predict.add_argument("--amp", action="store_true", help="mixed precision: float16 on CUDA, bfloat16 on the CPU")
    predict.add_argument("--score-thr", type=float, default=0.3, help="detection: the lowest score kept and drawn")
    predict.add_argument("--topk", type=_count_at_least(1), default=5, help="classification: how many classes to report")
    predict.add_argument("--num-workers", type=_count_at_least(0), default=0, help="processes reading images")
    predict.add_argument("--show", action="store_true", help="also open each picture in a window")
    predict.add_argument("--quiet", action="store_true", help="no log lines, only the summary")
    predict.set_defaults(handler=_cmd_predict)

    export = commands.add_parser(
        "export", help="export a trained model (onnx, torchscript, pt2, safetensors), verified by running it",
        description="trainyard export CONFIG CHECKPOINT | trainyard export CHECKPOINT_OR_WORK_DIR",
    )
    export.add_argument("source", metavar="CONFIG_OR_RUN", help="a config file (then the checkpoint), a checkpoint, or a work dir")
    export.add_argument("rest", nargs="*", metavar="CHECKPOINT", help="the checkpoint, after a config file")
    export.add_argument("--format", nargs="+", default=["onnx"], choices=("onnx", "torchscript", "pt2", "safetensors"),
                        help="one or more formats (default: onnx)")
    export.add_argument("--out", default=None, metavar="DIR", help="folder for the files (default: export/ beside the checkpoint)")
    export.add_argument("--input-size", type=_count_at_least(1), nargs=2, default=None, metavar=("HEIGHT", "WIDTH"),
                        help="sample size to trace and check with (default: the test set's first image)")
    export.add_argument("--atol", type=float, default=1e-4, help="allowed difference to PyTorch, plus 1e-5 x the largest output")
    export.set_defaults(handler=_cmd_export)

    config = commands.add_parser("config", help="print the resolved config (or where each key was set)")
    config.add_argument("config", help="config file")
    config.add_argument("--explain", action="store_true", help="show which file set each key")
    config.add_argument("--diff", default=None, metavar="OTHER",
                        help="show the keys whose values differ from OTHER (a config, or a run directory's saved config), and where each was set")
    _add_cfg_options(config)
    config.set_defaults(handler=_cmd_config)

    runs = commands.add_parser("runs", help="list the runs under work dirs: status, progress, metrics, differing config keys")
    runs.add_argument("work_dirs", nargs="*", metavar="DIR", help="where to look (default: work_dirs)")
    runs.add_argument("--sort", default=None, metavar="KEY", help="a metric (best first: mIoU, val/accuracy_top1), iterations, wall_s, started or a config key")
    runs.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                      help="keep runs whose status, name or config key has this value (repeatable)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(handler=_cmd_runs)

    plot = commands.add_parser("plot", help="curves of several runs in one PNG, and their mean time per iteration")
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run directories or work dirs holding them")
    plot.add_argument("--keys", default="loss", help="comma-separated scalars: loss,mIoU (train/ and val/ are tried)")
    plot.add_argument("--out", default="curves.png", metavar="PNG", help="the picture (default: curves.png)")
    plot.add_argument("--x", choices=("iter", "epoch"), default="iter", help="horizontal axis")
    plot.add_argument("--smooth", type=float, default=0.0, help="exponential smoothing of train curves, 0 to 0.99")
    plot.set_defaults(handler=_cmd_plot)

    sweep = commands.add_parser("sweep", help="train every combination of a grid of config values, then rank the runs")
    sweep.add_argument("config", help="config file")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=[VALUES]", required=True,
                       help="a config key and its values: 'optim_wrapper.optimizer.lr=[0.01,0.1]' (repeat for more keys)")
    sweep.add_argument("--work-dir", default=None, metavar="DIR",
                       help="where the runs go, one work dir per combination (default: work_dirs/<config>_sweep)")
    sweep.add_argument("--launcher", choices=("none", "slurm"), default="none",
                       help="none: one run after the other here; slurm: one srun job per combination, side by side")
    sweep.add_argument("--partition", default=None, help="SLURM partition (with --launcher slurm)")
    sweep.add_argument("--sort", default=None, metavar="METRIC", help="rank the table by this metric (default: the first validation metric)")
    _add_cfg_options(sweep)
    sweep.set_defaults(handler=_cmd_sweep)

    plugins = commands.add_parser("plugins", help="list plugins and what each registered; --check NAME tests one")
    plugins.add_argument("--check", default=None, metavar="NAME",
                         help="fail on any load problem of plugin NAME, import each lazy entry and build each component "
                              "that needs no arguments; exit 1 if anything failed (for the plugin's CI)")
    plugins.set_defaults(handler=_cmd_plugins)

    from trainyard.scaffold import TASKS

    new_plugin = commands.add_parser("new-plugin", help="write a ready plugin project: entry point, model, dataset, metric, config, tests")
    new_plugin.add_argument("name", help="the distribution name, e.g. acme-signals (its package: acme_signals)")
    new_plugin.add_argument("--task", choices=tuple(TASKS), default="cls",
                            help="what the generated model, dataset and metric do: " + "; ".join(
                                f"{key}: {template.summary}" for key, template in TASKS.items()) + " (default: cls)")
    new_plugin.add_argument("--out", default=None, metavar="DIR", help="where the project goes (default: ./NAME); must be new or empty")
    new_plugin.set_defaults(handler=_cmd_new_plugin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    from trainyard.interrupts import TrainingInterrupted

    try:
        return handler(args)
    except TrainyardError as exc:
        if _is_rank_zero() or not exc.same_on_every_rank:
            print(f"trainyard {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except TrainingInterrupted as exc:
        if _is_rank_zero():
            print(f"trainyard {args.command}: {exc}. Continue with:\n  {_resume_command(args, exc.work_dir)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        message = _peer_failure_message(exc)
        if message is None:
            raise  # an error from user code keeps its traceback
        print(f"trainyard {args.command}: rank {os.environ.get('RANK', '?')}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        if _is_rank_zero():
            print(f"trainyard {args.command}: stopped at once; resume from the last checkpoint with --resume", file=sys.stderr)
        return getattr(exc, "exit_code", 130)


def _peer_failure_message(exc: Exception) -> str | None:
    """One line for a collective that failed because of another rank, instead of a gloo/NCCL traceback.

    Only the process group's own errors qualify: a user's error that mentions a timeout
    (a dataset's read timeout) keeps its traceback.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    from trainyard.dist import is_collective_failure

    if not is_collective_failure(exc):
        return None
    lowered = f"{type(exc).__name__} {exc}".lower()
    if "timed out" in lowered or "timeout" in lowered:
        return (
            "a collective operation timed out: another rank died without a message, the ranks have data of "
            "unequal length, or a hook calls a collective on one rank only. env_cfg.timeout sets the limit in seconds"
        )
    return "stopped because another process of this job failed or left; its own message is above"


def _is_rank_zero() -> bool:

    return os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) == "0"


def _resume_command(args: argparse.Namespace, work_dir: Path) -> str:
    """The command that continues an interrupted run: the same one, in the work dir it used, with ``--resume``.

    Options that change how training runs (seed, AMP, launcher, determinism, config
    overrides) are kept; ``--load-from``, ``--overwrite`` and a ``--resume PATH`` are not:
    the run continues from its own newest checkpoint.
    """
    import shlex

    words = ["trainyard", "train", args.config, "--work-dir", str(work_dir)]
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    words += [flag for flag, given in (("--amp", args.amp), ("--deterministic", args.deterministic)) if given]
    if args.launcher:
        words += ["--launcher", args.launcher]
    if args.cfg_options:
        words += ["--cfg-options", *args.cfg_options]
    return shlex.join([*words, "--resume"])


def run_tool(command: str) -> None:
    """Entry for ``tools/<command>.py``: ``python tools/train.py CONFIG`` == ``trainyard train CONFIG``."""
    sys.exit(main([command, *sys.argv[1:]]))
