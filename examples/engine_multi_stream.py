"""Seed example: a BERT engine with the multi_stream scheduler (scheduler-how-to.md).

The zoo: stub resolves to the locally built bert_base-pruned90_quant sample (synthetic weights
pruned and INT8-quantized by deepsparse_lite.sparsify)."""
from deepsparse_lite import Engine
from deepsparse_lite.utils import generate_random_inputs, model_to_path

# download onnx from sparsezoo and compile with batchsize 1
sparsezoo_stub = "zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/pruned90_quant-none"
batch_size = 1
bert_engine = Engine(
  model=sparsezoo_stub,   # sparsezoo stub or path to local ONNX
  batch_size=batch_size,   # defaults to batch size 1,
  scheduler="multi_stream" # default: maps to single_stream
)

# input is raw numpy tensors, output is raw scores for classes
inputs = generate_random_inputs(model_to_path(sparsezoo_stub), batch_size)
output = bert_engine(inputs)
print(output)
# [array([[-0.34614536,  0.09025408]], dtype=float32)]
