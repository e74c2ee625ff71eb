"""Seed example: choosing the scheduler with compile_model (serial-or-concurrent-inferences.md)."""
from deepsparse_lite import Scheduler, compile_model
from deepsparse_lite.utils import model_to_path

model_path = model_to_path("zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/base-none")

engine = compile_model(model_path, scheduler="single_stream")
print(engine.scheduler, engine.num_streams)

engine = compile_model(model_path, scheduler="multi_stream", num_streams=None) # None is the default
print(engine.scheduler, engine.num_streams)

# or pass in the enum value directly, since "multi_stream" == Scheduler.multi_stream
assert "multi_stream" == Scheduler.multi_stream
engine = compile_model(model_path, scheduler=Scheduler.multi_stream)
print(engine.scheduler, engine.num_streams)
