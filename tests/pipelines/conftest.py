import pytest


@pytest.fixture(scope="session")
def tiny_text_folder():
    from deepsparse_lite.pipelines.samples import sample_text_folder
    return sample_text_folder("bert_tiny", {0: "negative", 1: "positive"})
