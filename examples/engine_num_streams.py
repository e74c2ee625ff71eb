"""Seed example: the maximum number of concurrent requests (scheduler-how-to.md).
num_streams=12 is capped to the available cores with a warning."""
from deepsparse_lite import Engine
from deepsparse_lite.utils import generate_random_inputs, model_to_path

# download onnx from sparsezoo and compile with batchsize 1
sparsezoo_stub = "zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/pruned90_quant-none"
batch_size = 1
bert_engine = Engine(
  model=sparsezoo_stub,   # sparsezoo stub or path to local ONNX
  batch_size=batch_size,   # defaults to batch size 1,
  scheduler="multi_stream", # default: maps to single_stream
  num_streams = 12
)

# input is raw numpy tensors, output is raw scores for classes
inputs = generate_random_inputs(model_to_path(sparsezoo_stub), batch_size)
output = bert_engine(inputs)
print(output)
# [array([[-0.34614536,  0.09025408]], dtype=float32)]
