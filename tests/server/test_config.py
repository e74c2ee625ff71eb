"""Config schema and CLI argument handling (no server process)."""
import pytest

from deepsparse_lite.server.cli import config_from_args, parse_args
from deepsparse_lite.server.config import ConfigError, ServerConfig, load_config


def _ep(**kw):
    return dict({"task": "sentiment-analysis", "model": "m"}, **kw)


def test_defaults_and_seed_name():
    cfg = load_config({"endpoints": [_ep(scheduler="multi_stream")]})
    ep = cfg.endpoints[0]
    assert ep.name == "sentiment_analysis" and ep.url_name == "sentiment_analysis"
    assert ep.batch_size == 1 and ep.scheduler == "multi_stream" and ep.kwargs == {}
    assert cfg.num_cores is None and cfg.num_workers is None
    assert cfg.engine_thread_pinning == "core"


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"unknown key 'endpoints\.0\.batchsize'"):
        load_config({"endpoints": [_ep(batchsize=2)]})
    with pytest.raises(ConfigError, match=r"unknown key 'num_core'"):
        load_config({"num_core": 2, "endpoints": [_ep()]})


def test_missing_and_bad_values():
    with pytest.raises(ConfigError, match=r"missing required key 'endpoints\.0\.model'"):
        load_config({"endpoints": [{"task": "x"}]})
    with pytest.raises(ConfigError, match="missing required key 'endpoints'"):
        load_config({})
    with pytest.raises(ConfigError, match="unsupported Scheduler: fast"):
        load_config({"endpoints": [_ep(scheduler="fast")]})
    with pytest.raises(ConfigError, match="num_cores must be greater than 0"):
        load_config({"num_cores": 0, "endpoints": [_ep()]})
    with pytest.raises(ConfigError, match="integration 'sagemaker' is not supported"):
        load_config({"integration": "sagemaker", "endpoints": [_ep()]})
    with pytest.raises(ConfigError, match="engine_thread_pinning"):
        load_config({"engine_thread_pinning": "all", "endpoints": [_ep()]})
    with pytest.raises(ConfigError, match="bucketing is not supported"):
        load_config({"endpoints": [_ep(bucketing={"sequence_lengths": [16, 128]})]})


def test_names_routes_duplicates():
    cfg = load_config({"endpoints": [_ep(), _ep(route="sparse/predict/"), _ep(name="b")]})
    assert [e.name for e in cfg.endpoints] == ["sentiment_analysis-0", "sentiment_analysis-1", "b"]
    assert cfg.endpoints[1].route == "/sparse/predict"
    assert cfg.endpoints[1].url_name == "sparse/predict"
    with pytest.raises(ConfigError, match="'a' specified 2 times"):
        load_config({"endpoints": [_ep(name="a"), _ep(name="a")]})


def test_yaml_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("num_cores: 1\nnum_workers: 2\nendpoints:\n  - task: sentiment-analysis\n"
                 "    model: zoo:x\n    scheduler: multi_stream\n    kwargs: {top_k: 2}\n")
    cfg = load_config(str(p))
    assert isinstance(cfg, ServerConfig) and cfg.num_workers == 2
    assert cfg.endpoints[0].kwargs == {"top_k": 2}
    p.write_text("endpoints:\n  - task: a\n    model: b\n    typo: 1\n")
    with pytest.raises(ConfigError, match="unknown key 'endpoints.0.typo'"):
        load_config(str(p))


def test_cli_args():
    a = parse_args(["--task", "sentiment-analysis", "--model_path", "m", "--batch-size", "2",
                    "--num_cores", "1", "--num-workers", "2"])
    assert a.host == "0.0.0.0" and a.port == 5543
    cfg = config_from_args(a)
    assert cfg.num_cores == 1 and cfg.num_workers == 2
    ep = cfg.endpoints[0]
    assert (ep.name, ep.model, ep.batch_size) == ("sentiment_analysis", "m", 2)
    assert config_from_args(parse_args(["--task", "text_classification"])).endpoints[0].model == "default"
    with pytest.raises(ValueError, match="Must specify either --task or --config_file"):
        config_from_args(parse_args([]))
    with pytest.raises(ValueError, match="--integration sagemaker is not supported"):
        config_from_args(parse_args(["--task", "x", "--integration", "sagemaker"]))
    with pytest.raises(ValueError, match="hot-reload-config is not supported"):
        config_from_args(parse_args(["--task", "x", "--hot-reload-config"]))


def test_cli_config_file_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("endpoints:\n  - task: sentiment-analysis\n    model: m\n")
    cfg = config_from_args(parse_args(["--config-file", str(p), "--num_workers", "3"]))
    assert cfg.num_workers == 3 and cfg.endpoints[0].name == "sentiment_analysis"
    cfg = config_from_args(parse_args(["--config_file", str(p)]))
    assert cfg.num_workers is None


def test_engine_thread_pinning_sets_nm_flags():
    from deepsparse_lite.server.cli import apply_thread_pinning
    for pin, want in [("core", ("1", "0")), ("numa", ("0", "1")), ("none", ("0", "0"))]:
        env = {}
        apply_thread_pinning(load_config({"engine_thread_pinning": pin, "endpoints": [_ep()]}), env)
        assert (env["NM_BIND_THREADS_TO_CORES"], env["NM_BIND_THREADS_TO_SOCKETS"]) == want


def test_ray_keys_validated_and_listed():
    ep = load_config({"endpoints": [_ep(num_replicas=2, num_cpus_per_replica=2,
                                        num_streams=2)]}).endpoints[0]
    assert ep.ray_keys_set == ["num_replicas", "num_cpus_per_replica"]
    assert load_config({"endpoints": [_ep()]}).endpoints[0].ray_keys_set == []
    ep = load_config({"endpoints": [_ep(autoscaling_config={"min_replicas": 1,
                                                            "max_replicas": 4})]}).endpoints[0]
    assert ep.autoscaling_config.max_replicas == 4 and ep.autoscaling_config.target_ongoing_requests == 2
    for kw, msg in [({"num_replicas": 0}, "num_replicas: Input should be greater than or equal to 1"),
                    ({"num_replicas": 2, "autoscaling_config": {}}, "not both"),
                    ({"autoscaling_config": {"min_replicas": 3, "max_replicas": 2}},
                     r"min_replicas \(3\) must be <= max_replicas \(2\)"),
                    ({"autoscaling_config": {"max_replica": 2}},
                     "unknown key 'endpoints.0.autoscaling_config.max_replica'"),
                    ({"num_cpus_per_replica": 1, "num_streams": 2}, "a stream needs a core")]:
        with pytest.raises(ConfigError, match=msg):
            load_config({"endpoints": [_ep(**kw)]})


def test_cli_ray_flags():
    args = parse_args(["--config-file", "c.yaml", "--ray", "--address", "auto"])
    assert args.ray and args.address == "auto" and args.host == "0.0.0.0"
    assert parse_args(["--config-file", "c.yaml", "--ray"]).host == "127.0.0.1"
    assert parse_args(["--config-file", "c.yaml", "--ray", "--host", "::"]).host == "::"
    with pytest.raises(ValueError, match="give --ray too"):
        config_from_args(parse_args(["--task", "sentiment-analysis", "--address", "auto"]))


def test_plain_server_accepts_and_names_ignored_ray_keys(monkeypatch, caplog):
    import uvicorn

    import deepsparse_lite.server.app as app_mod
    from deepsparse_lite.server.cli import run_server

    monkeypatch.setattr(app_mod, "create_app", lambda cfg: "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    monkeypatch.setenv("NM_BIND_THREADS_TO_CORES", "1")      # run_server sets both
    monkeypatch.setenv("NM_BIND_THREADS_TO_SOCKETS", "0")
    with caplog.at_level("WARNING", logger="deepsparse_lite.server"):
        run_server({"endpoints": [_ep(name="a", num_replicas=2, num_cpus_per_replica=1),
                                  _ep(name="b")]})
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["endpoint a: num_replicas, num_cpus_per_replica apply only "
                    "with --ray; this server is one process"], msgs


def test_ray_example_config():
    import os

    from tests.server.conftest import ROOT
    ep = load_config(os.path.join(ROOT, "examples", "sentiment-analysis-ray-config.yaml")).endpoints[0]
    assert (ep.name, ep.num_replicas, ep.num_cpus_per_replica) == ("sentiment_analysis", 2, 1)
