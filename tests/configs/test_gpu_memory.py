"""The GPU memory arithmetic of vLLM models (:mod:`configs.gpu_memory`), and the shipped configs pass it."""

from __future__ import annotations

import pytest

from configs.base import ConfigError
from configs.gpu_memory import MIN_HEADROOM_GB, gpu_memory_warnings, weight_gb
from configs.loader import load_experiment
from configs.schema import ExperimentConfig, ModelSpec
from tests.conftest import ROOT, scripted_config


def _vllm(name: str = "glm", params_b: float | None = 9.4, **options) -> dict:
    spec = {"name": name, "backend": "vllm", "model": f"org/{name}", "options": options}
    if params_b is not None:
        spec["params_b"] = params_b
    return spec


def _check(tmp_path, *models: dict) -> list[str]:
    config = scripted_config()
    config["models"] = list(models)
    return gpu_memory_warnings(ExperimentConfig.model_validate(config), tmp_path / "c.yaml")


def test_weights_per_gpu_follow_params_dtype_quantization_and_parallelism():
    assert weight_gb(ModelSpec.model_validate(_vllm())) == pytest.approx(18.8)  # bf16 (auto): 2 bytes a parameter
    assert weight_gb(ModelSpec.model_validate(_vllm(dtype="float32"))) == pytest.approx(37.6)
    assert weight_gb(ModelSpec.model_validate(_vllm(quantization="fp8"))) == pytest.approx(9.4)
    assert weight_gb(ModelSpec.model_validate(_vllm(quantization="awq", tensor_parallel_size=2))) == pytest.approx(2.35)
    assert weight_gb(ModelSpec.model_validate(_vllm(quantization="some-new-scheme"))) is None
    assert weight_gb(ModelSpec.model_validate(_vllm(params_b=None))) is None


def test_glm_4_9b_in_bf16_does_not_fit_in_022_of_80_gb(tmp_path):
    with pytest.raises(ConfigError) as caught:
        _check(tmp_path, _vllm(gpu_memory_utilization=0.22))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'c.yaml'}: models[0].options.gpu_memory_utilization: 'glm'")
    assert "18.8 GB of weights" in message and "0.22 × 80 GB = 17.6 GB" in message and "\n" not in message


def test_little_headroom_warns_and_enough_is_quiet(tmp_path):
    # 0.25 × 80 = 20 GB for 18.8 GB of weights: 1.2 GB left
    (message,) = _check(tmp_path, _vllm(gpu_memory_utilization=0.25))
    assert "leaves 1.2 GB after its 18.8 GB of weights" in message and f"{MIN_HEADROOM_GB:g} GB" in message
    assert _check(tmp_path, _vllm(gpu_memory_utilization=0.22, gpu_memory_gb=141)) == []  # 31.0 GB: 12.2 left
    (message,) = _check(tmp_path, _vllm(params_b=None))
    assert "'glm' has no params_b, so its GPU memory cannot be checked" in message


def test_models_sharing_a_gpu_must_fit_together(tmp_path):
    # vLLM's default share is 0.9: two engines with no share set ask for 1.8 of the GPU
    with pytest.raises(ConfigError) as caught:
        _check(tmp_path, _vllm("a", 0.5), _vllm("b", 0.5))
    assert str(caught.value).startswith(f"{tmp_path / 'c.yaml'}: models: ") and "adds up to 1.80" in str(caught.value)
    assert (
        _check(tmp_path, _vllm("a", 0.5, gpu_memory_utilization=0.45), _vllm("b", 0.5, gpu_memory_utilization=0.45))
        == []
    )
    # a vLLM model that nothing uses is never loaded
    config = scripted_config()
    config["models"] += [_vllm("a", 0.5), _vllm("b", 0.5)]
    config["grid"]["models"] = ["script"]
    assert gpu_memory_warnings(ExperimentConfig.model_validate(config), tmp_path / "c.yaml") == []


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_fit_their_gpu(name):
    experiment = load_experiment(ROOT / "configs" / name)  # raises ConfigError where a model cannot fit
    assert not gpu_memory_warnings(experiment.config, experiment.path)
