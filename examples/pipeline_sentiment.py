# The seed document's Pipeline example (scheduler-how-to.md, "Scheduling Work With
# Pipeline"), as written, with deepsparse_lite in place of deepsparse. The zoo: stub resolves
# to a local sample folder (BERT-base 90% pruned + INT8, synthetic weights, a real WordPiece
# vocabulary): the label and score are arbitrary.
from deepsparse_lite import Pipeline

# download onnx from sparsezoo and compile with batch size 1
sparsezoo_stub = "zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/pruned90_quant-none"
batch_size = 1
sa_pipeline = Pipeline.create(
  task="sentiment-analysis",
  model_path=sparsezoo_stub,   # sparsezoo stub or path to local ONNX
  batch_size=1,                # default batch size is 1
  scheduler="single_stream" # default: maps to single_stream
)

# run inference on image file
prediction = sa_pipeline("The sentiment analysis pipeline is fast and easy to use")
print(prediction)
# labels=['positive'] scores=[0.9955807328224182]
