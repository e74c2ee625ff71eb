"""``python tests/server/serve_fake.py PORT``: Uvicorn serving the fake echo pipelines (the
graceful-shutdown test holds requests in flight with ``delay``)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

if __name__ == "__main__":
    import uvicorn

    from tests.server.fake_pipelines import echo_app

    app, _ = echo_app()
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                timeout_graceful_shutdown=30)
