"""The gradient probes (deepnets.probes) and the deep MLP builder (deepnets.models.mlp).

The probes are checked against gradients known in closed form, not only against autograd.
"""
import math

import pytest
import torch
from torch import nn

from deepnets.models import ACTIVATIONS, deep_mlp
from deepnets.models.mlp import default_init_std
from deepnets.probes import activation_stats, gradient_norms


def sum_loss(out, y):
    return out.sum()


def scaled_identity_chain(scales, dim):
    """Linear layers W_k = c_k * I, no bias, no activation."""
    layers = []
    for c in scales:
        lin = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            lin.weight.copy_(c * torch.eye(dim))
        layers.append(lin)
    return nn.Sequential(*layers)


def test_linear_chain_closed_form():
    # out = (prod c) x; L = sum(out) over batch and units.
    # dL/dW_k = (prod_{j>k} c_j) 1 (prod_{j<k} c_j sum_n x_n)^T
    # => ||dL/dW_k|| = prod_{j!=k} c_j * sqrt(dim) * ||sum_n x_n||.
    scales, dim = [2.0, 0.5, 3.0, 0.1], 4
    model = scaled_identity_chain(scales, dim)
    x = torch.arange(12, dtype=torch.float32).reshape(3, dim) / 10
    norms = gradient_norms(model, x, None, loss_fn=sum_loss)
    assert list(norms) == ["0", "1", "2", "3"]
    s = x.sum(0).norm().item()
    for k, (name, g) in enumerate(norms.items()):
        expected = math.prod(c for j, c in enumerate(scales) if j != k) * math.sqrt(dim) * s
        assert g == pytest.approx(expected, rel=1e-5), name


def sigmoid_chain(weights, x0):
    """1-unit chain h_k = sigmoid(w_k h_{k-1} + b_k) with biases chosen so that every
    pre-activation is exactly 0 at input x0: h_k = 1/2 and sigmoid'(0) = 1/4 everywhere."""
    layers, h = [], x0
    for w in weights:
        lin = nn.Linear(1, 1)
        with torch.no_grad():
            lin.weight.fill_(w)
            lin.bias.fill_(-w * h)
        layers += [lin, nn.Sigmoid()]
        h = 0.5
    return nn.Sequential(*layers)


@pytest.mark.parametrize("weights", [[1.0] * 8, [2.0, -1.0, 3.0, 0.5, 4.0]])
def test_sigmoid_chain_closed_form(weights):
    # L = h_L. delta_k = dL/da_k = (1/4)^(L-k+1) prod_{j>k} w_j, dL/dw_k = delta_k h_{k-1}
    # with h_0 = x0 and h_k = 1/2 for k >= 1.
    x0 = 0.8
    model = sigmoid_chain(weights, x0)
    norms = list(gradient_norms(model, torch.tensor([[x0]]), None, loss_fn=sum_loss).values())
    L = len(weights)
    assert len(norms) == L
    for k in range(1, L + 1):
        delta = 0.25 ** (L - k + 1) * math.prod(weights[k:])
        h_prev = x0 if k == 1 else 0.5
        assert norms[k - 1] == pytest.approx(abs(delta * h_prev), rel=1e-5)
    # dL/da_k (wrt="output" of the Linear layers) is delta_k itself
    deltas = list(gradient_norms(model, torch.tensor([[x0]]), None, loss_fn=sum_loss,
                                 wrt="output").values())
    for k in range(1, L + 1):
        assert deltas[k - 1] == pytest.approx(abs(0.25 ** (L - k + 1) * math.prod(weights[k:])),
                                              rel=1e-5)
    if weights == [1.0] * 8:
        # unit weights: each layer nearer the input gets exactly 1/4 of the next one's gradient
        ratios = [norms[k] / norms[k + 1] for k in range(1, L - 1)]
        assert ratios == pytest.approx([0.25] * len(ratios), rel=1e-5)


def test_default_loss_is_mean_cross_entropy():
    # One Linear layer with zero weights: softmax is uniform, so
    # dL/dW = mean_n (1/C - onehot(y_n)) x_n^T.
    C, D = 3, 2
    model = nn.Linear(D, C)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    y = torch.tensor([0, 2])
    expected = ((torch.full((2, C), 1 / C) - nn.functional.one_hot(y, C)).T @ x) / 2
    norms = gradient_norms(model, x, y)
    assert list(norms) == ["Linear"]
    assert norms["Linear"] == pytest.approx(expected.norm().item(), rel=1e-6)


def test_matches_autograd_computed_another_way():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.Tanh(),
        nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Sigmoid(), nn.Linear(16, 5))
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 5, (8,))
    norms = gradient_norms(model, x, y)

    # second way: loss.backward() and read .grad
    model.train()
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    by_grad = {n: m.weight.grad.norm().item() for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert list(norms) == list(by_grad) == ["0", "3", "6", "8"]
    for n in norms:
        assert norms[n] == pytest.approx(by_grad[n], rel=1e-5)

    # third way: torch.func on a functional copy of the parameters
    params = dict(model.named_parameters())
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    grads = torch.func.grad(lambda p, b: nn.functional.cross_entropy(
        torch.func.functional_call(model, (p, b), (x,)), y))(params, buffers)
    for n in norms:
        assert norms[n] == pytest.approx(grads[f"{n}.weight"].norm().item(), rel=1e-5)


class ShortcutFirst(nn.Module):
    """Registers `late` before `early`, but calls `early` first."""

    def __init__(self):
        super().__init__()
        self.late = nn.Linear(3, 2)
        self.early = nn.Linear(4, 3)

    def forward(self, x):
        return self.late(torch.relu(self.early(x)))


def test_order_follows_forward_pass():
    torch.manual_seed(0)
    norms = gradient_norms(ShortcutFirst(), torch.randn(5, 4), torch.randint(0, 2, (5,)))
    assert list(norms) == ["early", "late"]


def test_probe_leaves_the_model_alone():
    torch.manual_seed(0)
    model = deep_mlp(4, 8, "relu", "he", batch_norm=True, in_features=6, num_classes=3)
    model.eval()
    model.zero_grad(set_to_none=True)
    before = {n: b.clone() for n, b in model.named_buffers()}
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    gradient_norms(model, x, y)
    activation_stats(model, x)
    assert not model.training and not any(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    for n, b in model.named_buffers():
        assert torch.equal(b, before[n]), n


def test_deep_sigmoid_vanishes_relu_he_does_not():
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    sig = list(gradient_norms(deep_mlp(20, 64, "sigmoid", "default"), x, y).values())
    relu = list(gradient_norms(deep_mlp(20, 64, "relu", "he"), x, y).values())
    assert len(sig) == len(relu) == 20
    assert sig[0] / sig[-1] < 1e-8
    assert 1e-2 < relu[0] / relu[-1] < 1e2


def test_activation_stats_known_values():
    # identity Linear, then sigmoid / relu / tanh on known pre-activations
    lin = nn.Linear(4, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(4))
        lin.bias.zero_()
    model = nn.Sequential(lin, nn.Sigmoid())
    x = torch.tensor([[-10.0, 0.0, 10.0, 0.0]])
    st = activation_stats(model, x)
    assert list(st) == ["1"]
    s = st["1"]
    assert s["mean"] == pytest.approx(0.5, abs=1e-6)                   # symmetric values
    assert s["saturated"] == pytest.approx(0.5)                        # -10 and +10
    assert sorted(s["values"].tolist()) == pytest.approx(
        sorted(torch.sigmoid(x).flatten().tolist()))
    counts, edges = s["hist"]
    assert counts.sum().item() == 4 and len(edges) == len(counts) + 1
    assert s["example_std"] == 0.0                                     # one example: nothing varies

    # example_std: per unit over the batch (population std), then the mean over units.
    # Unit 0 is 1 and 3 (std 1), unit 1 is 5 and 5 (std 0): example_std 0.5, while the std of
    # all four values mixes the units.
    two = activation_stats(nn.Sequential(nn.Identity(), nn.ReLU()),
                           torch.tensor([[1.0, 5.0], [3.0, 5.0]]))["1"]
    assert two["example_std"] == pytest.approx(0.5)
    assert two["std"] == pytest.approx(torch.tensor([1.0, 5.0, 3.0, 5.0]).std().item())

    relu = activation_stats(nn.Sequential(nn.Identity(), nn.ReLU(inplace=True)),
                            torch.tensor([[-1.0, -2.0, 3.0, 0.5]]))["1"]
    assert relu["saturated"] == pytest.approx(0.5)                     # the two dead units
    assert relu["mean"] == pytest.approx(3.5 / 4)
    dead = activation_stats(nn.Sequential(nn.ReLU()), torch.tensor([[-1.0, 2.0], [-3.0, -4.0]]))
    assert dead["0"]["saturated"] == 0.75 and dead["0"]["dead"] == 0.5  # unit 0 off for both
    tanh = activation_stats(nn.Sequential(nn.Tanh()), torch.tensor([[-5.0, 0.1, 5.0, 2.0]]))
    assert tanh["0"]["saturated"] == pytest.approx(0.5)                # |z| = 5: slope 1.8e-4
    leaky = activation_stats(nn.Sequential(nn.LeakyReLU()), torch.tensor([[-1.0, 1.0]]))
    assert leaky["0"]["saturated"] == 0.0                              # slope 0.01 passes


def test_activation_stats_module_selection_and_sampling():
    torch.manual_seed(0)
    model = deep_mlp(3, 16, "tanh", "xavier", in_features=5, num_classes=2)
    x = torch.randn(100, 5)
    st = activation_stats(model, x, max_values=50)
    assert list(st) == ["blocks.0.act", "blocks.1.act"]
    assert all(s["values"].numel() == 50 for s in st.values())
    lin = activation_stats(model, x, modules=nn.Linear)
    assert list(lin) == ["blocks.0.fc", "blocks.1.fc", "head"]
    assert lin["head"]["saturated"] is None                            # not element-wise
    by_name = activation_stats(model, x, modules=["blocks.1.act"])
    assert by_name["blocks.1.act"]["std"] == pytest.approx(st["blocks.1.act"]["std"])
    with pytest.raises(KeyError):
        activation_stats(model, x, modules=["nope"])


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_deep_mlp_structure(activation):
    model = deep_mlp(5, 32, activation, "he")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 5
    assert [tuple(m.weight.shape) for m in linears] == [(32, 784)] + [(32, 32)] * 3 + [(10, 32)]
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert isinstance(model.blocks[0].act, ACTIVATIONS[activation])


def test_deep_mlp_inits():
    torch.manual_seed(0)
    width = 512
    stds = {init: deep_mlp(3, width, "relu", init).blocks[1].fc.weight.std().item()
            for init in ["default", "xavier", "he", 1.0, 0.01]}
    assert stds["default"] == pytest.approx(default_init_std(width), rel=0.02)
    assert stds["xavier"] == pytest.approx(math.sqrt(2 / (width + width)), rel=0.02)
    assert stds["he"] == pytest.approx(math.sqrt(2 / width), rel=0.02)
    assert stds[1.0] == pytest.approx(1.0, rel=0.02)
    assert stds[0.01] == pytest.approx(0.01, rel=0.02)
    assert deep_mlp(3, 8, "relu", "he").blocks[1].fc.bias.abs().sum().item() == 0
    with pytest.raises(ValueError):
        deep_mlp(3, 8, "relu", "lecun")
    with pytest.raises(ValueError):
        deep_mlp(3, 8, "swish", "he")


def test_deep_mlp_batch_norm_and_residual():
    torch.manual_seed(0)
    bn = deep_mlp(4, 16, "sigmoid", batch_norm=True)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in bn.modules()) == 3
    assert all(b.fc.bias is None for b in bn.blocks) and bn.head.bias is not None
    # Algorithm 1 of Ioffe & Szegedy written out: batch mean, biased batch variance, then
    # gamma and beta, before the sigmoid; in eval mode the running statistics instead.
    blk, u = bn.blocks[1], torch.randn(32, 16)
    with torch.no_grad():
        blk.bn.weight.uniform_(0.5, 2.0)
        blk.bn.bias.uniform_(-1.0, 1.0)
        x = u @ blk.fc.weight.T
        mu, var = x.mean(0), x.var(0, unbiased=False)
        gamma, beta, eps = blk.bn.weight, blk.bn.bias, blk.bn.eps
        expected = torch.sigmoid(gamma * (x - mu) / torch.sqrt(var + eps) + beta)
        blk.train()
        assert torch.allclose(blk(u), expected, atol=1e-6)
        # one training-mode batch moved the running statistics from (0, 1) by momentum 0.1,
        # the variance with the unbiased estimate (m / (m - 1), Ioffe & Szegedy Sec. 3.1)
        m = len(u)
        assert torch.allclose(blk.bn.running_mean, 0.1 * mu, atol=1e-6)
        assert torch.allclose(blk.bn.running_var, 0.9 + 0.1 * var * m / (m - 1), atol=1e-5)
        blk.eval()
        rm, rv = blk.bn.running_mean, blk.bn.running_var
        assert torch.allclose(blk(u), torch.sigmoid(gamma * (x - rm) / torch.sqrt(rv + eps) + beta),
                              atol=1e-6)
    res = deep_mlp(4, 16, "sigmoid", residual=True)
    assert [b.residual for b in res.blocks] == [False, True, True]
    # a residual block adds its input: y = x + act(fc(x))
    blk, h = res.blocks[1], torch.randn(2, 16)
    assert torch.allclose(blk(h), h + torch.sigmoid(blk.fc(h)))
    assert res(torch.randn(2, 784)).shape == (2, 10)


def test_output_gradients_obey_the_chain_rule_bound():
    # delta_k = f'(a_k) * W_{k+1}^T delta_{k+1} with |sigmoid'| <= 1/4, so
    # ||delta_k|| <= 1/4 ||W_{k+1}||_2 ||delta_{k+1}|| at every layer (batch matrix norms).
    torch.manual_seed(0)
    model = deep_mlp(8, 32, "sigmoid", 1.0, in_features=10, num_classes=4)
    x, y = torch.randn(16, 10), torch.randint(0, 4, (16,))
    deltas = list(gradient_norms(model, x, y, wrt="output").values())
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for k in range(len(linears) - 1):
        spectral = torch.linalg.matrix_norm(linears[k + 1].weight, ord=2).item()
        assert deltas[k] <= 0.25 * spectral * deltas[k + 1] * (1 + 1e-5)
    # the last one is dL/dlogits of the mean cross-entropy
    logits = model(x).detach()
    expected = ((logits.softmax(1) - nn.functional.one_hot(y, 4)) / 16).norm().item()
    assert deltas[-1] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError):
        gradient_norms(model, x, y, wrt="input")


def test_norm_of_huge_gradients_does_not_overflow():
    # entries of 1e20 are finite in float32, but their squares (1e40) are not
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    x = torch.full((1, 2), 1e20)
    norms = gradient_norms(lin, x, None, loss_fn=sum_loss)
    assert norms["Linear"] == pytest.approx(math.sqrt(2) * 1e20, rel=1e-6)


def test_activation_stats_survive_an_exploded_net():
    model = nn.Sequential(nn.Identity(), nn.ReLU())
    st = activation_stats(model, torch.tensor([[1.0, float("inf"), -2.0, 3.0]]))["1"]
    counts, edges = st["hist"]
    assert counts.sum().item() == 3 and math.isfinite(edges[-1].item())
