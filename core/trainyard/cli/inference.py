"""``trainyard predict`` and ``trainyard export``: a trained run on your own images, or as a file for deployment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trainyard.cli.arguments import count_at_least, output_folder
from trainyard.errors import TrainyardError

__all__ = ["add_verbs"]


def add_verbs(commands: Any) -> None:
    predict = commands.add_parser(
        "predict", help="run a trained model on your own images",
        description="trainyard predict CONFIG CHECKPOINT INPUTS... | trainyard predict CHECKPOINT_OR_WORK_DIR INPUTS...",
    )
    predict.add_argument("source", metavar="CONFIG_OR_RUN", help="a config file (then the checkpoint), a checkpoint, or a work dir "
                         "(its best checkpoint, else its last; the config saved with it is used)")
    predict.add_argument("inputs", nargs="+", metavar="[CHECKPOINT] INPUTS", help="image files and folders of images")
    predict.add_argument("--out", default="predictions", metavar="DIR",
                         help="where predictions.jsonl, vis/ pictures and masks/ go (default: predictions)")
    predict.add_argument("--batch-size", type=count_at_least(1), default=None, help="images per forward pass (default: the test dataloader's)")
    predict.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, cuda:1")
    predict.add_argument("--amp", action="store_true", help="mixed precision: float16 on CUDA, bfloat16 on the CPU")
    predict.add_argument("--tta", action="store_true", help="test-time augmentation: the model inside the config's tta_model "
                         "(default: the model's own, a horizontal flip), see docs/inference.md")
    predict.add_argument("--score-thr", type=float, default=0.3, help="detection: the lowest score kept and drawn")
    predict.add_argument("--topk", type=count_at_least(1), default=5, help="classification: how many classes to report")
    predict.add_argument("--num-workers", type=count_at_least(0), default=0, help="processes reading images")
    predict.add_argument("--show", action="store_true", help="also open each picture in a window")
    predict.add_argument("--quiet", action="store_true", help="no log lines, only the summary")
    predict.set_defaults(handler=_predict)

    export = commands.add_parser(
        "export", help="export a trained model (onnx, torchscript, pt2, safetensors), verified by running it",
        description="trainyard export CONFIG CHECKPOINT | trainyard export CHECKPOINT_OR_WORK_DIR",
    )
    export.add_argument("source", metavar="CONFIG_OR_RUN", help="a config file (then the checkpoint), a checkpoint, or a work dir")
    export.add_argument("rest", nargs="*", metavar="CHECKPOINT", help="the checkpoint, after a config file")
    export.add_argument("--format", nargs="+", default=["onnx"], choices=("onnx", "torchscript", "pt2", "safetensors"),
                        help="one or more formats (default: onnx)")
    export.add_argument("--out", default=None, metavar="DIR", help="folder for the files (default: export/ beside the checkpoint)")
    export.add_argument("--input-size", type=count_at_least(1), nargs=2, default=None, metavar=("HEIGHT", "WIDTH"),
                        help="sample size to trace and check with (default: the test set's first image)")
    export.add_argument("--atol", type=float, default=1e-4, help="allowed difference to PyTorch, plus 1e-5 x the largest output")
    export.set_defaults(handler=_export)


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


def _predict(args: argparse.Namespace) -> int:
    checkpoint, config, inputs = _source_and_inputs(args.source, list(args.inputs), needs_inputs=True)
    from trainyard.inference import Predictor, expand_inputs
    from trainyard.logging import setup_logger
    from trainyard.prediction_files import write_predictions

    setup_logger(None, 0, "WARNING" if args.quiet else "INFO")
    predictor = Predictor.from_run(checkpoint, config=config, device=args.device, amp=args.amp,
                                   batch_size=args.batch_size, num_workers=args.num_workers, tta=args.tta)
    items = expand_inputs(inputs)  # every path is checked before anything is written
    written = write_predictions(predictor, items, output_folder(Path(args.out)), topk=args.topk, score_thr=args.score_thr)
    print(written.summary())
    if args.show:
        _show(written.pictures)
    return 0


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


def _export(args: argparse.Namespace) -> int:
    checkpoint, config, rest = _source_and_inputs(args.source, list(args.rest), needs_inputs=False)
    if rest:
        raise TrainyardError(f"unexpected arguments {rest}; export takes CONFIG CHECKPOINT or a checkpoint or work dir")
    from trainyard.export import FORMATS, export_model, export_sample
    from trainyard.inference import Predictor
    from trainyard.logging import setup_logger

    setup_logger(None, 0, "INFO")
    predictor = Predictor.from_run(checkpoint, config=config, device="cpu")
    sample = export_sample(predictor, args.input_size)
    out = output_folder(Path(args.out) if args.out else predictor.checkpoint_path.parent / "export")
    stem = predictor.checkpoint_path.stem
    for format in args.format:
        result = export_model(predictor, format, out / f"{stem}{FORMATS[format]}", sample, atol=args.atol)
        print(result.summary())
    return 0
