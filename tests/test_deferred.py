"""pyinit.deferred() + materialize_: equal to eager construction, bit for bit, in both streams."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import pyinit


def _equal_state(a: nn.Module, b: nn.Module) -> list[str]:
    """Names whose values differ (or are missing): empty when a == b."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        return sorted(set(sa) ^ set(sb))
    return [k for k in sa if sa[k].dtype != sb[k].dtype or not torch.equal(sa[k], sb[k])]


class TiedLM(nn.Module):
    def __init__(self, vocab=64, dim=32, heads=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=64, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, std=0.02)  # a model's own init after the layers'


class WithInitWeights(nn.Module):
    """A timm/transformers-style model: layers, then an _init_weights pass written with tensor
    methods and trunc_normal_."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)
        self.register_buffer("scale", torch.tensor([0.5, 2.0]))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            m.bias.data.zero_()
        elif isinstance(m, nn.Conv2d):
            m.weight.data.normal_(0.0, 0.1)
            nn.init.orthogonal_(m.weight)
            nn.init.dirac_(m.weight[:3])


MODELS = {
    "d2l_mlp": lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)),
    "multihead_attention": lambda: nn.MultiheadAttention(32, 4),
    "lstm": lambda: nn.LSTM(16, 32, num_layers=2),
    "transformer": lambda: nn.Transformer(
        d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=64
    ),
    "tied_lm": TiedLM,
    "init_weights": WithInitWeights,
    "conv_sparse": lambda: _sparse_model(),
}


def _sparse_model():
    m = nn.Sequential(nn.Linear(20, 30), nn.Conv1d(4, 4, 3))
    nn.init.sparse_(m[0].weight, 0.3)
    nn.init.xavier_normal_(m[1].weight, gain=2.0)
    return m


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("stream", ["torch", "philox"])
@pytest.mark.parametrize("name", list(MODELS))
def test_materialize_equals_eager(name, stream):
    make = MODELS[name]
    with pyinit.stream(stream), pyinit.patch_torch_init():
        torch.manual_seed(0)
        rng = torch.get_rng_state()
        with pyinit.deferred():
            deferred = make()
        assert torch.equal(torch.get_rng_state(), rng), "deferred construction drew numbers"
        tensors = list(deferred.parameters()) + list(deferred.buffers())
        assert tensors and all(t.is_meta for t in tensors)
        torch.manual_seed(0)
        eager = make()
        after_eager = torch.get_rng_state()
        torch.manual_seed(0)
        assert pyinit.materialize_(deferred, "cpu") is deferred
        assert torch.equal(torch.get_rng_state(), after_eager)
    assert _equal_state(eager, deferred) == []
    assert all(t.device.type == "cpu" for t in deferred.parameters())
    assert all(type(p) is nn.Parameter for p in deferred.parameters())
    # Gradients flow as in the eager model.
    assert [p.requires_grad for p in deferred.parameters()] == [
        p.requires_grad for p in eager.parameters()
    ]


def test_ties_stay_ties():
    with pyinit.deferred():
        lm = TiedLM()
    pyinit.materialize_(lm)
    assert lm.head.weight is lm.embed.weight
    assert isinstance(lm.head.weight, nn.Parameter)


def test_lstm_flat_weights_follow_the_swap():
    torch.manual_seed(0)
    with pyinit.deferred():
        lstm = nn.LSTM(4, 6)
    pyinit.materialize_(lstm)
    assert all(w.device.type == "cpu" for w in lstm._flat_weights)
    lstm(torch.rand(3, 1, 4))  # runs on the real weights


def test_plain_attribute_aliasing_a_buffer_gets_the_real_tensor():
    class Rotary(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, 8, 2) / 8)))
            self.original_inv_freq = self.inv_freq

    torch.manual_seed(0)
    eager = Rotary()
    with pyinit.deferred():
        r = Rotary()
    pyinit.materialize_(r)
    assert r.original_inv_freq is r.inv_freq
    assert torch.equal(r.inv_freq, eager.inv_freq)


def test_meta_attribute_outside_the_record_raises():
    class Odd(nn.Module):
        def __init__(self, outside):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.cache = outside

    outside = torch.empty(3, device="meta")
    with pyinit.deferred():
        m = Odd(outside)
    with pytest.raises(
        RuntimeError, match="meta tensors held outside parameters and buffers: cache"
    ):
        pyinit.materialize_(m)


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar")
def test_reading_values_during_construction_raises():
    class ReadsValues(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.norm = float(self.lin.weight.norm())

    with pytest.raises((RuntimeError, NotImplementedError)):
        with pyinit.deferred():
            ReadsValues()


def test_random_numbers_into_a_real_tensor_inside_the_block_raise():
    with pytest.raises(RuntimeError, match="drew random numbers into a real tensor"):
        with pyinit.deferred():
            torch.empty(4, device="cpu").normal_()


def test_lazy_modules_are_refused():
    with pyinit.deferred():
        net = nn.Sequential(nn.LazyLinear(4))
    with pytest.raises(
        ValueError, match=r"lazy modules cannot be built deferred .*: 0.weight, 0.bias"
    ):
        pyinit.materialize_(net)


def test_not_deferred_module_is_refused():
    with pytest.raises(ValueError, match="not built inside pyinit.deferred"):
        pyinit.materialize_(nn.Linear(2, 2, device="meta"))


def test_modules_of_one_block_are_replayed_together():
    torch.manual_seed(0)
    ea, eb = nn.Linear(3, 3), nn.Linear(3, 3)
    with pyinit.deferred():
        a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    torch.manual_seed(0)
    pyinit.materialize_(b)  # replays the block: a's draws come first, as eagerly
    torch.manual_seed(123)
    pyinit.materialize_(a)
    assert _equal_state(ea, a) == [] and _equal_state(eb, b) == []
    with pyinit.deferred():
        c, d = nn.Linear(3, 3), nn.Linear(3, 3)
    pyinit.materialize_(c, "cpu")
    with pytest.raises(ValueError, match="materialized on one device"):
        pyinit.materialize_(d, "meta")


def test_patched_names_are_restored_after_the_block():
    import torch.nn.init as torch_init

    original = torch_init.kaiming_uniform_
    with pyinit.deferred():
        assert torch_init.kaiming_uniform_ is pyinit.kaiming_uniform_
    assert torch_init.kaiming_uniform_ is original


@pytest.mark.filterwarnings("ignore")
def test_transformers_models_equal_eager():
    transformers = pytest.importorskip("transformers")
    configs = [
        (
            transformers.GPT2LMHeadModel,
            transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500),
        ),
        (
            transformers.LlamaForCausalLM,
            transformers.LlamaConfig(
                num_hidden_layers=2,
                hidden_size=64,
                intermediate_size=128,
                num_attention_heads=4,
                vocab_size=500,
            ),
        ),
    ]
    for cls, cfg in configs:
        torch.manual_seed(0)
        eager = cls(cfg)
        with pyinit.deferred():
            model = cls(cfg)
        torch.manual_seed(0)
        pyinit.materialize_(model)
        assert _equal_state(eager, model) == [], cls.__name__
        if cfg.tie_word_embeddings:
            assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


@pytest.mark.filterwarnings("ignore")
def test_timm_models_equal_eager():
    timm = pytest.importorskip("timm")
    for name in ("resnet18", "vit_tiny_patch16_224"):
        torch.manual_seed(0)
        eager = timm.create_model(name)
        with pyinit.deferred():
            model = timm.create_model(name)
        torch.manual_seed(0)
        pyinit.materialize_(model)
        assert _equal_state(eager, model) == [], name
