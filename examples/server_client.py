# The seed document's server request (scheduler-how-to.md, "Scheduling Work With Server"), as
# written; start the server first:
#   deepsparse_lite.server --config-file examples/sentiment-analysis-config.yaml
# The zoo: stub resolves to a local sample folder (synthetic weights): the label and score are
# arbitrary.
import requests

# Uvicorn is running on this port
url = 'http://0.0.0.0:5543/v2/models/sentiment_analysis/infer'

# send the data
obj = {"sequences": "Sending requests to DeepSparse Server is fast and easy!"}
resp = requests.post(url=url, json=obj)

# recieve the post-processed output
print(resp.text)
# {"labels":["positive"],"scores":[0.9330279231071472]}
