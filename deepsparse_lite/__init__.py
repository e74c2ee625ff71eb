"""deepsparse_lite: an open CPU inference engine for ONNX models with DeepSparse's API.

The path of a request: an ONNX file is compiled once (``compiler``: load, fold, fuse,
lower through ``ops``, plan memory) into a flat Plan of kernel steps; ``Engine.run``
validates the inputs and executes the whole plan in one GIL-free call into the Cython +
OpenMP ``kernels`` (packed-weight GEMM microkernels chosen at run time for AVX-512, AVX2 or
portable C).

    >>> from deepsparse_lite import compile_model
    >>> from deepsparse_lite.models import sample_model_path
    >>> engine = compile_model(sample_model_path("resnet50"), batch_size=1)
    >>> outputs = engine(engine.generate_random_inputs())
"""
from deepsparse_lite.version import __version__
from deepsparse_lite.kernels._openmp import openmp_enabled
from deepsparse_lite.engine import BaseEngine, Context, Engine, MultiModelEngine, Scheduler, compile_model

__all__ = [
    "__version__",
    "BaseEngine",
    "Context",
    "Engine",
    "MultiModelEngine",
    "Pipeline",
    "Scheduler",
    "benchmark_model",
    "compile_model",
    "cpu_architecture",
    "openmp_enabled",
]


_PIPELINE_NAMES = ("Pipeline", "PipelineConfig", "text_classification_pipeline",
                   "sentiment_analysis_pipeline", "image_classification_pipeline",
                   "embedding_extraction_pipeline")


def __getattr__(name):
    # cpu and benchmark live in modules written separately; import them on first use so a
    # plain `import deepsparse_lite` stays light.
    if name == "cpu_architecture":
        from deepsparse_lite.cpu import cpu_architecture
        return cpu_architecture
    if name in ("cpu_avx2_compatible", "cpu_avx512_compatible", "cpu_vnni_compatible"):
        from deepsparse_lite import cpu
        return getattr(cpu, name)
    if name in _PIPELINE_NAMES:  # pydantic + tokenizers load only when pipelines are used
        from deepsparse_lite import pipelines
        return getattr(pipelines, name)
    if name == "benchmark_model":  # as in DeepSparse, the package-level name is the CLI's
        from deepsparse_lite.benchmark import benchmark_model
        return benchmark_model
    raise AttributeError(f"module 'deepsparse_lite' has no attribute '{name}'")
