"""The Pipeline base class: task registry, engine construction, batching, schemas.

A pipeline is ``pre-process -> engine -> post-process`` around one compiled model:

1. ``parse_inputs``: a positional ``input_schema`` instance, or keyword arguments that build
   one (pydantic v2 validates them: a bad request is a ``ValidationError``, a ``ValueError``);
2. ``process_inputs(parsed)`` -> the engine's input arrays (any batch size), optionally with a
   dict of context for post-processing;
3. the arrays are cut into engine-sized chunks (the last one edge-padded), each chunk runs on
   the engine, the outputs are joined and the padding trimmed;
4. ``process_engine_outputs(outputs, **context)`` -> an ``output_schema`` instance.

``__call__`` is synchronous, as in DeepSparse 1.8. ``batch_size=None`` compiles the engine at
batch 1 and runs the chunks concurrently on a thread pool of ``max(1, cores // 2)`` workers.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Pipeline", "PipelineConfig", "normalize_task", "registered_tasks"]

_LOGGER = logging.getLogger(__name__)


def normalize_task(task: str) -> str:
    """``"Sentiment-Analysis"`` -> ``"sentiment_analysis"`` (DeepSparse's rule)."""
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"task must be a non-empty string, given {task!r}")
    return task.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class _TaskEntry:
    task: str
    cls: type
    default_model_path: Union[str, Callable[[], str], None]


_REGISTRY: Dict[str, _TaskEntry] = {}     # canonical task -> entry
_ALIASES: Dict[str, str] = {}             # any accepted name -> canonical task


def registered_tasks() -> List[str]:
    """Every accepted task name (canonical names and aliases), sorted."""
    _import_builtin_tasks()
    return sorted(_ALIASES)


def _import_builtin_tasks() -> None:
    # the task modules register themselves on import; import them on first need so that a
    # plain ``import deepsparse_lite.pipelines`` stays light
    import importlib
    for mod in _BUILTIN_TASK_MODULES:
        importlib.import_module(f"deepsparse_lite.pipelines.{mod}")


_BUILTIN_TASK_MODULES = ("text_classification", "image_classification", "embedding_extraction")


class PipelineConfig(BaseModel):
    """What ``Pipeline.from_config`` builds from (DeepSparse's ``PipelineConfig`` fields;
    note its ``scheduler`` default is ``"async"``, i.e. multi_stream)."""
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    task: str
    model_path: Optional[str] = None
    engine_type: str = "deepsparse"
    batch_size: Optional[int] = 1
    num_cores: Optional[int] = None
    scheduler: Optional[str] = "async"
    input_shapes: Optional[List[List[int]]] = None
    alias: Optional[str] = None
    kwargs: Dict[str, Any] = Field(default_factory=dict)


class Pipeline:
    """Pre-processing, a compiled engine and post-processing behind one call.

    Lifecycle: ``Pipeline.create(task, model_path, ...)`` resolves the model, compiles an
    :class:`~deepsparse_lite.Engine` (a :class:`~deepsparse_lite.MultiModelEngine` when a
    ``context`` is given) and returns the task's subclass; call it any number of times
    (``p("text")``, ``p(sequences=[...])``, ``p(p.input_schema(...))``), each call returns an
    ``output_schema`` instance; ``close()`` (or ``with``) releases the engine.

    Example::

        from deepsparse_lite import Pipeline
        p = Pipeline.create("sentiment-analysis",
            model_path="zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/base-none")
        print(p("The pipeline is fast and easy to use"))   # labels=[...] scores=[...]

    :param model_path: a model folder (``model.onnx`` + the task's files), a path to
        ``model.onnx`` with those files beside it, or a ``zoo:`` stub
    :param batch_size: the engine's batch; any request size is split into chunks of it.
        None: dynamic, the engine runs batch 1 chunks concurrently
    :param num_cores, num_streams, scheduler: as for :class:`~deepsparse_lite.Engine`
    :param input_shapes: engine input shape overrides
    :param context: run on this shared Context (``num_cores`` must then match it)
    :param executor: a ThreadPoolExecutor or a worker count used to run the chunks
    :param alias: a name for the pipeline (the server's endpoint name)
    """

    #: set by subclasses: pydantic models of one request and one response
    input_schema_class: Type[BaseModel] = BaseModel
    output_schema_class: Type[BaseModel] = BaseModel
    task: Optional[str] = None

    # ------------------------------------------------------------------ registry
    @staticmethod
    def register(task: str, task_aliases: Optional[Sequence[str]] = None,
                 default_model_path: Union[str, Callable[[], str], None] = None
                 ) -> Callable[[type], type]:
        """Class decorator: make ``cls`` the pipeline of ``task`` (and its aliases)."""
        canonical = normalize_task(task)
        names = [canonical] + [normalize_task(a) for a in (task_aliases or [])]

        def deco(cls: type) -> type:
            if not (isinstance(cls, type) and issubclass(cls, Pipeline)):
                raise TypeError(f"Pipeline.register expects a Pipeline subclass, given {cls!r}")
            for n in names:
                other = _ALIASES.get(n)
                if other is not None and _REGISTRY[other].cls is not cls:
                    _LOGGER.warning("Pipeline task %r re-registered: %s replaces %s", n,
                                    cls.__name__, _REGISTRY[other].cls.__name__)
            _REGISTRY[canonical] = _TaskEntry(canonical, cls, default_model_path)
            for n in names:
                _ALIASES[n] = canonical
            cls.task = canonical
            return cls

        return deco

    @staticmethod
    def create(task: str, model_path: Optional[str] = None, **kwargs) -> "Pipeline":
        """Build the pipeline registered for ``task`` (names are normalised: ``-`` -> ``_``,
        lower case; ``sentiment-analysis`` is an alias of ``text_classification``).

        ``model=`` is accepted for ``model_path`` (not both). ``model_path`` None or
        ``"default"`` uses the task's default model. Other keyword arguments go to the task's
        constructor (engine options and task options such as ``sequence_length``, ``top_k``).
        """
        _import_builtin_tasks()
        if "model" in kwargs:
            if model_path is not None:
                raise ValueError("pass one of model= and model_path=, not both")
            model_path = kwargs.pop("model")
        name = normalize_task(task)
        canonical = _ALIASES.get(name)
        if canonical is None:
            raise ValueError(f"Unknown Pipeline task {task}. Currently supported tasks are "
                             f"{sorted(_ALIASES)}")
        entry = _REGISTRY[canonical]
        if model_path is None or model_path == "default":
            if not entry.default_model_path:
                raise ValueError(f"No model_path provided for pipeline {entry.cls.__name__} "
                                 f"(task {canonical!r} has no default model)")
            # a callable default builds (or finds) its model folder on first use
            model_path = (entry.default_model_path() if callable(entry.default_model_path)
                          else entry.default_model_path)
        pipeline = entry.cls(model_path=model_path, **kwargs)
        pipeline._create_kwargs = dict(kwargs)
        return pipeline

    @staticmethod
    def from_config(config: Union[PipelineConfig, Dict, str], **kwargs) -> "Pipeline":
        """Build from a :class:`PipelineConfig`, a dict, a JSON string or a JSON file path;
        ``kwargs`` override the config's task keyword arguments."""
        import json
        if isinstance(config, (str, os.PathLike)):
            text = os.fspath(config)
            if os.path.isfile(text):
                with open(text, encoding="utf-8") as f:
                    text = f.read()
            try:
                config = json.loads(text)
            except ValueError as e:
                raise ValueError(f"config must be a PipelineConfig, a dict, JSON or a JSON "
                                 f"file: {e}") from e
        if isinstance(config, dict):
            config = PipelineConfig(**config)
        if not isinstance(config, PipelineConfig):
            raise ValueError(f"config must be a PipelineConfig, a dict, JSON or a JSON file, "
                             f"given {type(config).__name__}")
        task_kwargs = {**config.kwargs, **kwargs}
        return Pipeline.create(task=config.task, model_path=config.model_path,
                               engine_type=config.engine_type, batch_size=config.batch_size,
                               num_cores=config.num_cores, scheduler=config.scheduler,
                               input_shapes=config.input_shapes, alias=config.alias,
                               **task_kwargs)

    def to_config(self) -> PipelineConfig:
        """The :class:`PipelineConfig` that rebuilds this pipeline."""
        engine_keys = {"engine_type", "batch_size", "num_cores", "scheduler", "input_shapes",
                       "alias", "context", "executor", "num_streams"}
        kw = {k: v for k, v in getattr(self, "_create_kwargs", {}).items() if k not in engine_keys}
        sched = self._engine_args.get("scheduler")
        return PipelineConfig(task=self.task, model_path=str(self._model_path_orig),
                              batch_size=self.batch_size, num_cores=self._engine_args["num_cores"],
                              scheduler=None if sched is None else str(getattr(sched, "value", sched)),
                              input_shapes=self._engine_args.get("input_shapes"),
                              alias=self.alias, kwargs=kw)

    # ------------------------------------------------------------------ construction
    def __init__(self, model_path: str, batch_size: Optional[int] = 1,
                 num_cores: Optional[int] = None, num_streams: Optional[int] = None,
                 scheduler=None, input_shapes=None, context=None,
                 executor: Union[ThreadPoolExecutor, int, None] = None,
                 engine_type: str = "deepsparse", alias: Optional[str] = None):
        if engine_type not in ("deepsparse", "deepsparse_lite"):
            raise ValueError(f"Unknown engine_type {engine_type!r}: deepsparse_lite pipelines "
                             f"run on the deepsparse engine only")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)):
            raise ValueError(f"batch_size must be an int or None, given {batch_size!r}")
        if context is not None and num_cores is not None and num_cores != context.num_cores:
            raise ValueError(f"num_cores mismatch. Expected {context.num_cores} from passed "
                             f"context, but got {num_cores} while instantiating Pipeline")
        if not (executor is None or isinstance(executor, ThreadPoolExecutor)
                or (isinstance(executor, int) and not isinstance(executor, bool))):
            raise ValueError(f"Expected an int or ThreadPoolExecutor to run in async mode but "
                             f"got {executor!r}")
        self._model_path_orig = model_path
        self.alias = alias
        self._dynamic_batch = batch_size is None or batch_size < 1
        self._batch_size = 1 if self._dynamic_batch else int(batch_size)
        self._context = context
        self._engine_args = dict(batch_size=self._batch_size, num_cores=num_cores,
                                 num_streams=num_streams, scheduler=scheduler,
                                 input_shapes=input_shapes)
        self._onnx_path = self.setup_onnx_file_path()      # subclasses resolve their files
        self._engine = None
        self._executor, self._owns_executor = None, False
        self._engine = self.create_engine()
        self._executor, self._owns_executor = self._make_executor(executor)

    def setup_onnx_file_path(self) -> str:
        """Resolve the model to a local ONNX path (subclasses also load their side files)."""
        from deepsparse_lite.utils import model_to_path
        return model_to_path(self._model_path_orig)

    def create_engine(self):
        from deepsparse_lite.engine import Engine, MultiModelEngine

        a = self._engine_args
        if self._context is not None:
            return MultiModelEngine(self._onnx_path, a["batch_size"], self._context,
                                    a["input_shapes"])
        return Engine(self._onnx_path, a["batch_size"], a["num_cores"], a["num_streams"],
                      a["scheduler"], a["input_shapes"])

    def _make_executor(self, executor) -> Tuple[Optional[ThreadPoolExecutor], bool]:
        if isinstance(executor, ThreadPoolExecutor):
            return executor, False
        if executor is None:
            if not self._dynamic_batch:
                return None, False      # chunks run one after another on the calling thread
            workers = max(1, (self._engine.num_cores or 1) // 2)
        else:
            workers = max(1, executor)
        if workers == 1:
            return None, False
        return ThreadPoolExecutor(workers, thread_name_prefix="dsl-pipeline"), True

    # ------------------------------------------------------------------ properties
    @property
    def input_schema(self) -> Type[BaseModel]:
        return self.input_schema_class

    @property
    def output_schema(self) -> Type[BaseModel]:
        return self.output_schema_class

    @property
    def model_path(self) -> str:
        """The local ONNX file the engine runs."""
        return self._onnx_path

    @property
    def model_path_orig(self) -> str:
        return self._model_path_orig

    @property
    def onnx_file_path(self) -> str:
        return self._onnx_path

    @property
    def engine(self):
        return self._engine

    @property
    def engine_args(self) -> Dict[str, Any]:
        return dict(self._engine_args)

    @property
    def engine_type(self) -> str:
        return "deepsparse"

    @property
    def batch_size(self) -> Optional[int]:
        """The pipeline's batch size: None for dynamic batch (engine at 1)."""
        return None if self._dynamic_batch else self._batch_size

    @property
    def executor(self) -> Optional[ThreadPoolExecutor]:
        return self._executor

    # ------------------------------------------------------------------ calling
    def __call__(self, *args, **kwargs) -> BaseModel:
        parsed = self.parse_inputs(*args, **kwargs)
        processed = self.process_inputs(parsed)
        if isinstance(processed, tuple):
            arrays, ctx = processed
        else:
            arrays, ctx = processed, {}
        outputs = self.run_engine(arrays)
        result = self.process_engine_outputs(outputs, **ctx)
        if not isinstance(result, self.output_schema):
            raise ValueError(f"Outputs of {self.__class__.__name__} must be instances of "
                             f"{self.output_schema.__name__}, found output of type {type(result)}")
        return result

    def parse_inputs(self, *args, **kwargs) -> BaseModel:
        """One ``input_schema`` instance from the call's arguments."""
        if "engine_inputs" in kwargs:
            raise ValueError("engine_inputs is not a valid argument: pass raw inputs, or call "
                             "pipeline.engine(...) with arrays directly")
        if args and kwargs:
            raise ValueError(f"pipeline {self.__class__.__name__} takes positional or keyword "
                             f"inputs, not both (given {len(args)} positional and keywords "
                             f"{sorted(kwargs)})")
        if len(args) == 1 and isinstance(args[0], self.input_schema):
            return args[0]
        if args:
            return self.parse_positional(args)
        return self.input_schema(**kwargs)

    def parse_positional(self, args: tuple) -> BaseModel:
        """Positional inputs -> schema; subclasses map them to their main field."""
        if len(args) == 1 and isinstance(args[0], dict):
            return self.input_schema(**args[0])
        raise ValueError(f"pipeline {self.__class__.__name__} expects a single "
                         f"{self.input_schema.__name__} or keyword inputs, given {len(args)} "
                         f"positional argument(s)")

    def run_engine(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        """Run any batch: engine-sized chunks, the last edge-padded, outputs trimmed."""
        from deepsparse_lite.utils.data import join_engine_outputs, split_engine_inputs

        batches, total = split_engine_inputs(arrays, self._batch_size)
        if self._executor is None or len(batches) == 1:
            outs = [self.engine_forward(b) for b in batches]
        else:
            outs = list(self._executor.map(self.engine_forward, batches))
        return join_engine_outputs(outs, total)

    def engine_forward(self, engine_inputs: List[np.ndarray]) -> List[np.ndarray]:
        # inputs are built by process_inputs in the engine's dtypes and shapes
        return self._engine.run(engine_inputs, val_inp=False)

    # to be provided by each task
    def process_inputs(self, inputs: BaseModel):
        raise NotImplementedError

    def process_engine_outputs(self, engine_outputs: List[np.ndarray], **context) -> BaseModel:
        raise NotImplementedError

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release the engine (a shared Context stays open) and the pipeline's own pool."""
        if self._owns_executor and self._executor is not None:
            self._executor.shutdown(wait=True)
        self._executor = None
        self._owns_executor = False
        eng = getattr(self, "_engine", None)
        if eng is not None:
            eng.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return (f"{self.__class__.__name__}(task={self.task!r}, model_path={self._onnx_path!r}, "
                f"batch_size={self.batch_size})")


# ---------------------------------------------------------------------- model folders
def resolve_model_folder(model_path, required: Sequence[str] = ()) -> Tuple[str, str]:
    """``(onnx_file, folder)`` for a model folder, a path to its .onnx file, or a ``zoo:``
    stub (text stubs resolve to a cached sample folder, see :mod:`.samples`). Every name in
    ``required`` must exist in the folder: a missing one is a ValueError saying what to add."""
    from deepsparse_lite.utils import model_to_path

    if isinstance(model_path, os.PathLike):
        model_path = os.fspath(model_path)
    if isinstance(model_path, str) and model_path.startswith("zoo:") and required:
        from deepsparse_lite.pipelines.samples import zoo_text_folder
        folder = zoo_text_folder(model_path)
        return os.path.join(folder, "model.onnx"), folder
    onnx_path = model_to_path(model_path)
    folder = os.path.dirname(os.path.abspath(onnx_path))
    missing = [f for f in required if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise ValueError(f"model folder {folder} lacks {missing}: a text pipeline needs "
                         f"model.onnx with {list(required)} beside it (see "
                         f"deepsparse_lite.pipelines.convert for Hugging Face checkpoints)")
    return onnx_path, folder
