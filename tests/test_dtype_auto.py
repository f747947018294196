"""dtype auto and bf16 auto: bfloat16 only where the CPU's matrix kernels compute it natively."""

import pytest
import torch

from rlhf_recipes.config.schema import Compute
from rlhf_recipes.models.loading import Loading, native_bfloat16, resolved_compute


@pytest.fixture
def bfloat16_cpu(monkeypatch):
    """A CPU that reports AVX512-BF16, whatever this machine is."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)


def test_a_cpu_with_avx512_bf16_gets_bfloat16(bfloat16_cpu):
    assert native_bfloat16("cpu")
    assert Loading.auto("cpu").dtype == "bfloat16"
    assert resolved_compute(Compute(device="cpu", bf16="auto")).bf16 is True


@pytest.mark.parametrize("variable", ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"])
@pytest.mark.parametrize("cap", ["AVX2", "avx512_core", "AVX2_VNNI"])
def test_onednn_capped_below_bf16_gets_float32(bfloat16_cpu, monkeypatch, variable, cap):
    # oneDNN told not to use AVX512-BF16 emulates bfloat16 matmuls (minutes for one 2,048² product)
    monkeypatch.setenv(variable, cap)
    assert not native_bfloat16("cpu")
    assert Loading.auto("cpu").dtype == "float32"
    assert resolved_compute(Compute(device="cpu", bf16="auto")).bf16 is False


@pytest.mark.parametrize("cap", ["AVX512_CORE_BF16", "AVX512_CORE_AMX", "ALL"])
def test_onednn_caps_that_keep_bf16(bfloat16_cpu, monkeypatch, cap):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert native_bfloat16("cpu")


def test_explicit_settings_are_kept_whatever_the_cpu(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert resolved_compute(Compute(device="cpu", bf16=True)).bf16 is True
