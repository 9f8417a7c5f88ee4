"""The Runner: a resolved config turned into a model, data, hooks and loops.

The Runner owns the state hooks read (``model``, ``optimizer``, ``epoch``, ``iter``,
``work_dir``, ``logger``, ...) and delegates the rest: building to the registries,
the loop to a loop object, policy to hooks, persistence to
:mod:`trainyard.checkpointer` (which asks the parts for their states), process groups
to :mod:`trainyard.dist`.
"""

from __future__ import annotations

import contextlib
import pprint
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainyard import checkpoint, dist
from trainyard.checkpointer import Checkpointer
from trainyard.data import build_dataloader, stop_workers, to_device
from trainyard.environment import randomness_to_resume, select_device, setup_backends, setup_randomness
from trainyard.errors import CheckpointError, ConfigError
from trainyard.evaluation import Evaluator
from trainyard.hooks import Hook, HookDispatcher
from trainyard.interrupts import StopOnSignals, TrainingInterrupted
from trainyard.logging import LogBuffer, RunWriter, add_log_file, setup_logger
from trainyard.lr_scaling import scale_lr
from trainyard.openmmlab_keys import config_warnings
from trainyard.run_status import log_run_status
from trainyard.pretrained import weights_from_checkpoint
from trainyard.optim import OptimWrapper, amp_dtype_of, build_optim_wrapper
from trainyard.registry import HOOKS, LOOPS, MODELS, SCHEDULERS, building
from trainyard.strategies import build_strategy
from trainyard.training_state import TrainingState

__all__ = ["Runner"]


class Runner:
    """Build everything a config describes, then :meth:`train`, :meth:`val` or :meth:`test`.

    Construction sets up the environment (process group, seed, run directory,
    logger, config dump), builds the model and the hooks, and loads ``load_from``
    weights; dataloaders, optimizer and loops are built by the method that needs them.
    """

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        env_cfg = dict(cfg.get("env_cfg") or {})
        dist.init_distributed(
            cfg.get("launcher") or "none",
            (env_cfg.get("dist_cfg") or {}).get("backend"),
            env_cfg.get("timeout", 1800),
        )
        setup_backends(env_cfg)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.device = select_device(env_cfg.get("device"))
        self.work_dir = Path(cfg.get("work_dir") or Path("work_dirs") / Path(getattr(cfg, "filename", None) or "run").stem)
        self.logger = setup_logger(None, self.rank, cfg.get("log_level", "INFO"))
        self._resume_source, self._start_notes = self._select_resume_source(cfg.get("resume", False))
        self.seed = self._setup_randomness(cfg.get("randomness"))
        self._earlier_checkpoints: list[Path] = []
        self.run_dir = self._choose_run_dir()
        self.writer = RunWriter(self.run_dir, self.rank)
        self.log_buffer = LogBuffer()
        self._dataloaders: dict[str, Any] = {}
        self.model = self._build_model(cfg.get("model"))
        self.dispatcher = HookDispatcher()
        self._build_hooks(cfg.get("default_hooks") or {}, cfg.get("custom_hooks") or [])
        self.train_loop: Any = None
        self.val_loop: Any = None
        self.optim_wrapper: OptimWrapper | None = None
        self.checkpointer: Checkpointer | None = None
        """Saves and resumes the training state (built by :meth:`train`)."""
        self.param_schedulers: list[Any] = []
        self._evaluated_progress = {"epoch": 0, "iter": 0}
        """Epoch and iteration of the checkpoint a standalone val or test evaluates."""

    @classmethod
    def from_cfg(cls, cfg: Any) -> Runner:
        """A Runner for a config loaded with :func:`trainyard.config.load_config` (or a dict)."""
        return cls(cfg)

    # environment ---------------------------------------------------------------

    @property
    def config_text(self) -> str:
        """The resolved config as Python text (a readable repr when it holds live objects)."""
        try:
            return self.cfg.pretty_text
        except (AttributeError, SyntaxError):
            return pprint.pformat(self.cfg.to_dict() if hasattr(self.cfg, "to_dict") else dict(self.cfg))

    def _select_resume_source(self, resume: Any) -> tuple[checkpoint.ResumeSource | None, list[str]]:
        """Rank 0 chooses the checkpoint to resume from; every rank then reads that file."""
        choice: tuple[str | None, list[str], str | None] = (None, [], None)
        source = None
        if self.rank == 0:
            try:
                source, notes = checkpoint.resume_source(resume, self.work_dir)
                choice = (str(source.path) if source else None, notes, None)
            except CheckpointError as exc:
                choice = (None, [], str(exc))
        path, notes, error = dist.broadcast_object(choice)
        if error is not None:
            raise CheckpointError(error)
        if self.rank != 0 and path is not None:
            source = checkpoint.ResumeSource(Path(path))
        return source, notes

    def _setup_randomness(self, randomness: Any) -> int:
        """Seed every generator; a resumed run keeps the seed of the run it continues (logged as such)."""
        if self._resume_source is None:
            return setup_randomness(randomness)
        options, warning = randomness_to_resume(randomness, self._resume_source.state["meta"].get("seed"))
        if warning:
            self.logger.warning(warning)
        seed = setup_randomness(options)
        self._start_notes.append(f"seed {seed}: the seed of the run this resumes")
        return seed

    def _refuse_earlier_run(self) -> None:
        """A run never writes over the checkpoints of another one unless it continues them or ``overwrite`` says so.

        Resuming from a file outside the work dir continues another run, whose saves would
        replace and prune the work dir's files. Checked before anything is built; with
        ``overwrite`` the earlier files are deleted only once the new run has been built
        and has loaded its weights (:meth:`_remove_earlier_run`).
        """
        blocking = next((p for p in (self.work_dir, *self.work_dir.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            where = "is a file" if blocking == self.work_dir else f"is under {blocking}, which is a file"
            raise ConfigError(f"work_dir {self.work_dir} {where}; choose a directory with --work-dir")
        problem = None
        source = self._resume_source.path if self._resume_source is not None else None
        if self.rank == 0 and (source is None or source.resolve().parent != self.work_dir.resolve()):
            self._earlier_checkpoints = checkpoint.checkpoints_of_earlier_run(self.work_dir)
            if self._earlier_checkpoints and not self.cfg.get("overwrite"):
                problem = self._earlier_run_problem(source)
        problem = dist.broadcast_object(problem)  # every rank stops, not only the one that looked
        if problem is not None:
            raise ConfigError(problem)

    def _earlier_run_problem(self, source: Path | None) -> str:
        names = [p.name for p in self._earlier_checkpoints]
        listing = f"{', '.join(names[:4])}{', ...' if len(names) > 4 else ''}"
        if source is None:
            return (f"work_dir {self.work_dir} already holds checkpoints of an earlier run ({listing}); nothing was changed. "
                    "To continue that run add --resume; to start a new run choose another --work-dir; "
                    "to replace those checkpoints add --overwrite")
        return (f"work_dir {self.work_dir} already holds checkpoints of another run ({listing}), and resuming from {source}, "
                "which is outside it, would replace and delete them; nothing was changed. To continue the work dir's run "
                f"use --resume without a path; to continue the other run use --work-dir {source.parent} or an empty one; "
                "to replace the work dir's checkpoints add --overwrite")

    def _start_run_directory(self) -> None:
        """Create the run directory of a training run (once everything is built): log file, config, cleanup notes."""
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.py").write_text(self.config_text)
        add_log_file(self.logger, self.run_dir / f"{self.run_dir.name}.log", self.rank)
        self.logger.info(f"run directory {self.run_dir}; seed {self.seed}; device {self.device}; world size {self.world_size}")
        if self.rank == 0:
            for line in checkpoint.remove_stale_temporaries(self.work_dir):
                self.logger.info(line)
        for line in self._start_notes:
            self.logger.info(line)
        for line in config_warnings(self.cfg):
            self.logger.warning(line)

    def _remove_earlier_run(self) -> None:
        """``overwrite``: delete the earlier run's checkpoints, after loading (``load_from`` may name one of them)."""
        for path in self._earlier_checkpoints:  # only with overwrite, on rank 0
            checkpoint.remove_checkpoint(path)
            self.logger.warning(f"--overwrite: removed {path} of an earlier run")

    def _choose_run_dir(self) -> Path:
        """``work_dir/<timestamp>``; a resumed run continues in its checkpoint's directory."""
        previous = checkpoint.run_dir_of(self._resume_source)
        if previous is not None and previous.name not in ("", ".", "..") and previous.parent.resolve() == self.work_dir.resolve():
            return self.work_dir / previous.name  # a folder of this work dir, whatever the (foreign) checkpoint says
        stamp = dist.broadcast_object(time.strftime("%Y%m%d_%H%M%S"))
        return self.work_dir / stamp

    # model and hooks ---------------------------------------------------------

    def _build_model(self, model_cfg: Mapping[str, Any] | None) -> nn.Module:
        if model_cfg is None:
            raise ConfigError("the config has no 'model'")
        wrapped = model_cfg.get("module") if isinstance(model_cfg, Mapping) else None  # a TTA model's (--tta)
        counted = wrapped if isinstance(wrapped, Mapping) else model_cfg
        if isinstance(counted, Mapping) and counted.get("num_classes") == "auto":
            counted["num_classes"] = self._count_dataset_classes()
        replaced = weights_from_checkpoint() if self._resume_source is not None else contextlib.nullcontext()
        with building("model"), replaced:  # a resume replaces every weight: pretrained files are not fetched
            model = MODELS.build(model_cfg)
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model type {model_cfg.get('type')!r} built a {type(model).__name__}, not an nn.Module")
        model.to(self.device)
        self.strategy = build_strategy(self.cfg.get("model_wrapper_cfg"), self.world_size, self.device)
        model = self.strategy.wrap(model)
        self._unwrapped_model = self.strategy.model  # FSDP shards in place: this is the sharded module
        # looked up once: a missing attribute of an nn.Module costs a raised AttributeError (~5 us) per batch
        self._preprocessor = getattr(self._unwrapped_model, "data_preprocessor", None)
        compile_cfg = self.cfg.get("compile")
        if compile_cfg:
            model = torch.compile(model, **(compile_cfg if isinstance(compile_cfg, Mapping) else {}))
        return model

    @property
    def unwrapped_model(self) -> nn.Module:
        """The user's model, without DDP or ``torch.compile`` around it (under FSDP: itself, sharded in place)."""
        return self._unwrapped_model

    def preprocess(self, batch: Any) -> Any:
        """The model's ``data_preprocessor``, or every tensor of the batch moved to the device."""
        if self._preprocessor is not None:
            return self._preprocessor(batch)
        if self.device.type == "cpu":
            return batch  # a DataLoader's batches are on the CPU already
        return to_device(batch, self.device)

    def _count_dataset_classes(self) -> int:
        """``model.num_classes='auto'``: as many as the first configured dataset lists (train, else val, else test).

        The number replaces ``'auto'`` in the config, so the saved config and
        checkpoints name it.
        """
        for split in ("train", "val", "test"):
            if self.cfg.get(f"{split}_dataloader") is None:
                continue
            classes = (getattr(self.dataloader(split).dataset, "metainfo", None) or {}).get("classes") or ()
            if not classes:
                raise ConfigError(f"model.num_classes='auto', but {split}_dataloader.dataset lists no classes in its metainfo; set model.num_classes")
            self.logger.info(f"model.num_classes: {len(classes)}, the classes of {split}_dataloader.dataset")
            return len(classes)
        raise ConfigError("model.num_classes='auto' needs a train, val or test dataloader to count the classes of")

    def _build_hooks(self, default_hooks: Mapping[str, Any], custom_hooks: list[Any]) -> None:
        configs = [(f"default_hooks.{name}", hook) for name, hook in default_hooks.items() if hook is not None]
        configs += [(f"custom_hooks[{i}]", hook) for i, hook in enumerate(custom_hooks)]
        for key, hook_cfg in configs:
            if isinstance(hook_cfg, Hook):
                self.register_hook(hook_cfg)
                continue
            if not isinstance(hook_cfg, Mapping):
                raise ConfigError(f"{key} must be a dict with a 'type' key, got {hook_cfg!r}")
            options = dict(hook_cfg)
            priority = options.pop("priority", None)
            with building(key):
                hook = HOOKS.build(options)
            if not isinstance(hook, Hook):
                raise ConfigError(f"{key}: {type(hook).__name__} is not a trainyard Hook")
            self.register_hook(hook, priority)

    def register_hook(self, hook: Hook, priority: int | str | None = None) -> None:
        """Add a hook; it runs after hooks of lower or equal priority."""
        self.dispatcher.add(hook, priority)

    @property
    def hooks(self) -> list[Hook]:
        return self.dispatcher.hooks

    def call_hook(self, point: str, **kwargs: Any) -> None:
        self.dispatcher.call(point, self, **kwargs)

    @property
    def timer(self) -> Any:
        """The hook that measures iteration time, if any (for the ETA)."""
        return next((h for h in self.dispatcher.hooks if hasattr(h, "seconds_per_iter")), None)

    # data --------------------------------------------------------------------

    def dataloader(self, split: str) -> Any:
        """The ``train``, ``val`` or ``test`` dataloader, built on first use."""
        if split not in self._dataloaders:
            key = f"{split}_dataloader"
            if self.cfg.get(key) is None:
                raise ConfigError(f"the config has no '{key}'")
            loader_cfg = dict(self.cfg[key])
            if self.device.type == "cuda" and loader_cfg.get("num_workers", 0) > 0:
                # page-locked batches copy to the GPU asynchronously. Only with data workers: without, the main
                # process pins each batch itself, and validation ran at 12.5-18.8k instead of 24.4k images/s (H200)
                loader_cfg.setdefault("pin_memory", True)
            self._dataloaders[split] = build_dataloader(loader_cfg, self.seed, key, shuffle=split == "train")
            self._start_notes.append(self._dataloaders[split].dataset.seeding_note)
        return self._dataloaders[split]

    @property
    def train_dataloader(self) -> Any:
        return self.dataloader("train")

    # progress ----------------------------------------------------------------

    @property
    def iter(self) -> int:
        """Finished training iterations (in a standalone val or test: those of the evaluated checkpoint)."""
        return self.train_loop.iter if self.train_loop is not None else self._evaluated_progress["iter"]

    @property
    def epoch(self) -> int:
        return self.train_loop.epoch if self.train_loop is not None else self._evaluated_progress["epoch"]

    @property
    def dataset_meta(self) -> dict[str, Any]:
        """``classes`` and ``palette`` of the first built dataset (train, val, test): saved in checkpoints for inference."""
        for split in ("train", "val", "test"):
            loader = self._dataloaders.get(split)
            metainfo = getattr(getattr(loader, "dataset", None), "metainfo", None) or {}
            if metainfo.get("classes"):
                return {key: _plain_lists(metainfo[key]) for key in ("classes", "palette") if metainfo.get(key)}
        return {}

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype ``optim_wrapper`` trains with (None without AMP); validation and test use it too."""
        return self.optim_wrapper.amp_dtype if self.optim_wrapper is not None else amp_dtype_of(self.cfg.get("optim_wrapper"), self.device)

    @property
    def max_iters(self) -> int:
        return self.train_loop.max_iters if self.train_loop is not None else 0

    @property
    def max_epochs(self) -> int | None:
        return getattr(self.train_loop, "max_epochs", None)

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return self.optim_wrapper.optimizer if self.optim_wrapper is not None else None

    # loops -------------------------------------------------------------------

    def _build_loop(self, split: str) -> Any:
        key = f"{split}_cfg"
        loop_cfg = dict(self.cfg.get(key) or {})
        if split != "train":
            loop_cfg.setdefault("type", "ValLoop" if split == "val" else "TestLoop")
            evaluator_cfg = self.cfg.get(f"{split}_evaluator")
            if evaluator_cfg is None:
                raise ConfigError(f"the config has '{split}_dataloader' but no '{split}_evaluator'")
            evaluator = Evaluator.from_cfg(evaluator_cfg, f"{split}_evaluator")
            dataloader = self.dataloader(split)
            evaluator.set_dataset_meta(getattr(dataloader.dataset, "metainfo", None) or {})
            with building(key):
                return LOOPS.build(loop_cfg, runner=self, dataloader=dataloader, evaluator=evaluator)
        if "type" not in loop_cfg:
            raise ConfigError("train_cfg needs a 'type', e.g. 'EpochBasedTrainLoop' or 'IterBasedTrainLoop'")
        with building(key):
            return LOOPS.build(loop_cfg, runner=self, dataloader=self.dataloader("train"))

    def _check_class_count(self) -> None:
        """A model with fewer outputs than the dataset has classes would fail deep inside the loss."""
        model_classes = getattr(self.unwrapped_model, "num_classes", None)
        classes = (getattr(self.train_dataloader.dataset, "metainfo", None) or {}).get("classes") or ()
        if isinstance(model_classes, int) and classes and model_classes < len(classes):
            raise ConfigError(
                f"model.num_classes={model_classes}, but train_dataloader.dataset has {len(classes)} classes "
                f"({', '.join(map(str, classes[:8]))}{', ...' if len(classes) > 8 else ''}); set model.num_classes={len(classes)}"
            )

    def _build_schedulers(self) -> list[Any]:
        configs = self.cfg.get("param_scheduler") or []
        configs = [configs] if isinstance(configs, Mapping) else list(configs)
        schedulers = []
        for index, scheduler_cfg in enumerate(configs):
            with building(f"param_scheduler[{index}]"):
                schedulers.append(SCHEDULERS.build(scheduler_cfg, optimizer=self.optimizer))
        return schedulers

    def _run(self, name: str, body: Any) -> Any:
        start = self.dispatcher.seconds, time.perf_counter()
        self.call_hook("before_run")
        try:
            result = body()
        finally:
            for loader in self._dataloaders.values():
                stop_workers(loader)
        self.call_hook("after_run")
        total = time.perf_counter() - start[1]
        in_hooks = self.dispatcher.seconds - start[0]
        self.logger.info(
            f"{name} finished: total {total:.2f} s, of which {in_hooks:.3f} s in hooks ({100 * in_hooks / max(total, 1e-9):.2f}%)"
        )
        self.writer.close()
        return result

    def train(self) -> nn.Module:
        """Train as ``train_cfg`` says (validating on the way when a val set is configured)."""
        self._refuse_earlier_run()
        self.train_loop = self._build_loop("train")
        self.optim_wrapper = build_optim_wrapper(self.cfg.get("optim_wrapper") or {}, self.unwrapped_model, self.device, self.strategy)
        self.strategy.check_optimizer(self.optim_wrapper.optimizer)
        self.strategy.check_save_points(self.optim_wrapper.accumulative_counts, self.hooks, getattr(self.train_loop, "iters_per_epoch", None))
        self._start_notes += scale_lr(self.optim_wrapper, self.cfg.get("auto_scale_lr"), self.train_dataloader, self.world_size)
        self.param_schedulers = self._build_schedulers()
        if self.cfg.get("val_dataloader") is not None:
            self.val_loop = self._build_loop("val")
        self._check_class_count()
        self._start_run_directory()
        self.checkpointer = Checkpointer(self.training_state(), self.work_dir, self.call_hook, self.logger)
        if self._resume_source is not None:
            self.checkpointer.restore(self._resume_source)
        elif self.cfg.get("load_from"):
            checkpoint.load_weights(self, self.cfg["load_from"])
        self._remove_earlier_run()
        self.optim_wrapper.set_progress(self.train_loop.iter, self.train_loop.max_iters)
        try:
            with StopOnSignals(self.train_loop.request_stop):
                self._run("training", self.train_loop.run)
        except BaseException as exc:
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            log_run_status(self.logger, "failed", self.iter, f"{type(exc).__name__}: {reason}")
            raise
        finally:
            self.optim_wrapper.release_graph()
        if getattr(self.train_loop, "interrupted", None):
            stop = TrainingInterrupted(self.train_loop.interrupted, self.iter, checkpoint.last_checkpoint(self.work_dir), self.work_dir)
            log_run_status(self.logger, "interrupted", self.iter, stop.signal_name)
            raise stop
        log_run_status(self.logger, "finished", self.iter)
        return self.unwrapped_model

    def val(self) -> dict[str, float]:
        """Evaluate once on the validation set."""
        self._load_for_evaluation()
        self.val_loop = self._build_loop("val")
        self._start_evaluation_directory("val")
        return self._run("validation", self.val_loop.run)

    def test(self) -> dict[str, float]:
        """Evaluate once on the test set."""
        self._load_for_evaluation()
        loop = self._build_loop("test")
        self._start_evaluation_directory("test")
        return self._run("test", loop.run)

    def _load_for_evaluation(self) -> None:
        """A standalone evaluation loads ``load_from`` and takes its epoch and iteration for the log and pictures.

        Strictly, unless ``load_from`` says ``strict=False``: missing keys would score a partly random model.
        """
        if self.train_loop is None and self.cfg.get("load_from"):
            meta = checkpoint.load_weights(self, self.cfg["load_from"], default_strict=True)
            self._evaluated_progress = {"epoch": int(meta.get("epoch", 0)), "iter": int(meta.get("iter", 0))}

    def _start_evaluation_directory(self, split: str) -> None:
        """A standalone evaluation, once built, writes its log, scalars and pictures to ``work_dir/<timestamp>_<split>/``."""
        if self.train_loop is not None:
            return
        self.run_dir = self.run_dir.with_name(f"{self.run_dir.name}_{split}")
        self.writer = RunWriter(self.run_dir, self.rank)
        add_log_file(self.logger, self.run_dir / f"{self.run_dir.name}.log", self.rank)
        for line in self._start_notes:
            self.logger.info(line)

    def training_state(self) -> TrainingState:
        """The parts whose states a checkpoint holds, and the run's ``meta``."""
        def meta() -> dict[str, Any]:
            from trainyard import __version__

            return {"trainyard_version": __version__, "torch_version": str(torch.__version__), "config": self.config_text,
                    "epoch": self.epoch, "iter": self.iter, "seed": self.seed, "world_size": self.world_size,
                    "time": time.strftime("%Y-%m-%d %H:%M:%S"), "run_dir": str(self.run_dir.resolve()), "dataset_meta": self.dataset_meta}

        return TrainingState(self.unwrapped_model, self.optim_wrapper, self.param_schedulers, self.train_loop, self.dispatcher,
                             meta, self.rank, self.world_size)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, in the layout of a single-file checkpoint (see :mod:`trainyard.training_state`)."""
        return self.training_state().full()


def _plain_lists(value: Any) -> Any:
    """Tuples to lists, recursively: what a ``weights_only`` checkpoint and JSON both hold."""
    if isinstance(value, (list, tuple)):
        return [_plain_lists(v) for v in value]
    return value
