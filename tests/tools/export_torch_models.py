"""Export tiny PyTorch / transformers models to ONNX fixtures for tests/test_exported_models.py.

Not run in CI: the fixtures it writes are committed. Re-run it after changing a model here:

    pip install torch transformers        # (a CPU wheel is enough)
    python tests/tools/export_torch_models.py [--out tests/data/exported] [--only NAME ...]

Each fixture is ``<name>.onnx`` (exported with the TorchScript exporter, ``dynamo=False``, fixed
input shapes) plus ``<name>.npz`` holding the sample input(s) under ``input:<name>`` and the
PyTorch output(s) under ``output:<name>``; ``manifest.json`` lists them with their opset and
what each one exercises. Models are tiny versions of well-known architectures with random
weights (seeded), BatchNorm statistics randomised so BN is never an identity, in eval mode.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import warnings
from collections import Counter
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "data", "exported"))


# ------------------------------------------------------------------------ helpers
def randomize(model: nn.Module, seed: int, bn_gain: float = 1.0) -> nn.Module:
    """Seeded He-normal convs/linears and non-trivial BatchNorm parameters and statistics.

    BN's gain is about ``bn_gain`` (its running stats do not describe the real activations);
    raise it for activations such as hardswish that shrink the signal more than ReLU does.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.weight.copy_((torch.rand(c, generator=g) * 0.4 + 0.8) * bn_gain
                              * m.running_var.sqrt())
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return model.eval()


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
            act: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------ CNNs
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, 1, act=None)
        self.down = (conv_bn(cin, cout, 1, stride, act=None)
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.conv2(self.conv1(x)) + self.down(x))


class ResNetTiny(nn.Module):
    """resnet18 layout (BasicBlock x [2, 2, 2, 2]) at widths 8..64."""

    def __init__(self, widths=(8, 16, 32, 64), num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, widths[0], 7, 2),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks += [BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class VGGTiny(nn.Module):
    """vgg11_bn layout: conv-BN-ReLU stacks, MaxPool, AdaptiveAvgPool(2x2), 3 FC layers."""

    def __init__(self, cfg=(8, "M", 16, "M", 32, 32, "M", 64, 64, "M"), num_classes: int = 10):
        super().__init__()
        layers, cin = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(conv_bn(cin, v, 3))
                cin = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(cin * 4, 128), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(128, 128), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int = 4):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, bn_size * growth, 1,
                                                                 bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, feats: List[torch.Tensor]):
        x = torch.cat(feats, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseNetTiny(nn.Module):
    """densenet121 layout (pre-activation BN, concat of all previous features, transitions)."""

    def __init__(self, growth: int = 8, blocks=(3, 4, 3), init: int = 16, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, init, 3, 1), nn.MaxPool2d(3, 2, 1))
        self.blocks, self.trans = nn.ModuleList(), nn.ModuleList()
        c = init
        for i, n in enumerate(blocks):
            self.blocks.append(nn.ModuleList(DenseLayer(c + j * growth, growth) for j in range(n)))
            c += n * growth
            if i != len(blocks) - 1:
                self.trans.append(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(),
                                                nn.Conv2d(c, c // 2, 1, bias=False),
                                                nn.AvgPool2d(2, 2)))
                c //= 2
        self.norm5 = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            feats = [x]
            for layer in block:
                feats.append(layer(feats))
            x = torch.cat(feats, 1)
            if i < len(self.trans):
                x = self.trans[i](x)
        x = F.adaptive_avg_pool2d(F.relu(self.norm5(x)), (1, 1))
        return self.fc(torch.flatten(x, 1))


class InceptionBlock(nn.Module):
    """Four branches concatenated: 1x1 | 1x1->3x3 | 1x1->1x7->7x1 | avgpool->1x1."""

    def __init__(self, cin: int, c1: int, c3: int, c7: int, cp: int):
        super().__init__()
        self.b1 = conv_bn(cin, c1, 1)
        self.b3 = nn.Sequential(conv_bn(cin, c3, 1), conv_bn(c3, c3, 3))
        self.b7 = nn.Sequential(
            conv_bn(cin, c7, 1),
            nn.Conv2d(c7, c7, (1, 7), padding=(0, 3), bias=False), nn.BatchNorm2d(c7), nn.ReLU(),
            nn.Conv2d(c7, c7, (7, 1), padding=(3, 0), bias=False), nn.BatchNorm2d(c7), nn.ReLU())
        self.bp = conv_bn(cin, cp, 1)

    def forward(self, x):
        p = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return torch.cat([self.b1(x), self.b3(x), self.b7(x), self.bp(p)], 1)


class InceptionTiny(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2), conv_bn(16, 16, 3),
                                  nn.MaxPool2d(3, 2))                      # no padding
        self.mixed = nn.Sequential(InceptionBlock(16, 8, 12, 8, 4),
                                   InceptionBlock(32, 12, 16, 8, 8),
                                   nn.MaxPool2d(3, 2, 1),
                                   InceptionBlock(44, 16, 16, 12, 8))
        self.fc = nn.Linear(52, num_classes)

    def forward(self, x):
        x = self.mixed(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNetTiny(nn.Module):
    """squeezenet1_1 layout: fire modules, ceil-mode max pools, conv classifier."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2), nn.ReLU(True), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16, 4, 8, 8), Fire(16, 4, 8, 8), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16, 8, 16, 16), Fire(32, 8, 16, 16))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(32, num_classes, 1),
                                        nn.ReLU(True), nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(b, -1, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: channel split (stride 1) or two branches (stride 2), then shuffle."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin, act=None),
                                         conv_bn(cin, half, 1))
        bin_ = cin if stride > 1 else half
        self.branch2 = nn.Sequential(conv_bn(bin_, half, 1),
                                     conv_bn(half, half, 3, stride, groups=half, act=None),
                                     conv_bn(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2Tiny(nn.Module):
    def __init__(self, widths=(16, 32, 64), repeats=(2, 3, 2), num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 8, 3, 2), nn.MaxPool2d(3, 2, 1))
        units, cin = [], 8
        for w, r in zip(widths, repeats):
            units += [ShuffleUnit(cin, w, 2)] + [ShuffleUnit(w, w, 1) for _ in range(r - 1)]
            cin = w
        self.stages = nn.Sequential(*units)
        self.conv5 = conv_bn(cin, 128, 1)
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.conv5(self.stages(self.stem(x)))
        return self.fc(x.mean([2, 3]))            # ReduceMean, as torchvision does


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1, act=nn.ReLU6)]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   conv_bn(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2Tiny(nn.Module):
    SETTINGS = ((1, 8, 1, 1), (6, 8, 2, 2), (6, 16, 2, 2), (6, 24, 2, 1), (6, 32, 2, 2))

    def __init__(self, num_classes: int = 10):
        super().__init__()
        layers, cin = [conv_bn(3, 8, 3, 2, act=nn.ReLU6)], 8
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 128, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, squeeze: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class V3Block(nn.Module):
    def __init__(self, cin: int, k: int, hidden: int, cout: int, se: bool, hs: bool,
                 stride: int):
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        self.use_res = stride == 1 and cin == cout
        layers = [] if hidden == cin else [conv_bn(cin, hidden, 1, act=act)]
        layers.append(conv_bn(hidden, hidden, k, stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden, max(8, hidden // 4)))
        layers.append(conv_bn(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNetV3Tiny(nn.Module):
    """mobilenet_v3_small layout: hardswish, SE with hardsigmoid, 5x5 depthwise, Linear head."""

    SETTINGS = ((8, 3, 8, 8, True, False, 2), (8, 3, 32, 12, False, False, 2),
                (12, 3, 40, 12, False, False, 1), (12, 5, 48, 16, True, True, 2),
                (16, 5, 64, 16, True, True, 1), (16, 5, 64, 24, True, True, 1))

    def __init__(self, num_classes: int = 10):
        super().__init__()
        layers = [conv_bn(3, 8, 3, 2, act=nn.Hardswish)]
        layers += [V3Block(*s) for s in self.SETTINGS]
        layers.append(conv_bn(24, 96, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(96, 128), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(128, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class _LRNFunction(torch.autograd.Function):
    """Local response norm exported as the ONNX ``LRN`` op.

    ``nn.LocalResponseNorm`` is composed in Python (pad, avg_pool3d, pow, an ``If`` on the
    rank), so exporting it directly gives that decomposition; the symbolic below emits the
    single op that ONNX (and AlexNet/GoogLeNet exports from other frameworks) use.
    """

    @staticmethod
    def forward(ctx, x, size: int, alpha: float, beta: float, k: float):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN(nn.Module):
    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
        super().__init__()
        self.args = (size, alpha, beta, k)

    def forward(self, x):
        return _LRNFunction.apply(x, *self.args)


class AlexNetTiny(nn.Module):
    """AlexNet layout (11x11/4 stem, LRN, overlapping 3x3/2 max pools, big FC layers)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 11, 4, 2), nn.ReLU(True), LRN(5, 1e-4, 0.75, 2.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(True),
            LRN(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
            nn.Conv2d(32, 48, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(48, 32, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(32 * 3 * 3, 256), nn.ReLU(True),
                                        nn.Dropout(), nn.Linear(256, 256), nn.ReLU(True),
                                        nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class UNetTiny(nn.Module):
    """Small encoder-decoder: SiLU, ConvTranspose 2x2/2, bilinear + nearest Resize, skip concat.

    Not in the architecture list the tests were asked for, but it covers the ops segmentation
    and detection exports add on top of classifiers.
    """

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.enc1 = conv_bn(3, 8, 3, act=nn.SiLU)
        self.enc2 = conv_bn(8, 16, 3, act=nn.SiLU)
        self.enc3 = conv_bn(16, 32, 3, act=nn.SiLU)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec2 = conv_bn(32, 16, 3, act=nn.SiLU)
        self.dec1 = conv_bn(40, 8, 3, act=nn.SiLU)
        self.head = nn.Conv2d(8, num_classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(e3), e2], 1))
        d1 = F.interpolate(d2, scale_factor=2.0, mode="bilinear", align_corners=False)
        up = F.interpolate(e2, scale_factor=2.0, mode="nearest")
        d1 = self.dec1(torch.cat([d1, e1, up], 1))
        return self.head(d1)


# ------------------------------------------------------------------------ transformers
def _text_inputs(batch: int, seq: int, vocab: int, seed: int, with_types: bool = True):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    for r in range(1, batch):                   # right padding on all rows but the first
        mask[r, seq - 2 * r:] = 0
        ids[r, seq - 2 * r:] = 0
    out = [ids, mask]
    if with_types:
        types = torch.zeros(batch, seq, dtype=torch.long)
        types[:, seq // 2:] = 1
        out.append(types)
    return out


def _hf_model(kind: str, seed: int, impl: str):
    import transformers as tf
    torch.manual_seed(seed)
    common = dict(attn_implementation=impl)
    if kind == "bert_cls":
        cfg = tf.BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64,
                            max_position_embeddings=32, initializer_range=0.2, num_labels=3,
                            **common)
        return tf.BertForSequenceClassification(cfg).eval()
    if kind == "distilbert_cls":
        cfg = tf.DistilBertConfig(vocab_size=128, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                  max_position_embeddings=32, initializer_range=0.2,
                                  num_labels=2, **common)
        return tf.DistilBertForSequenceClassification(cfg).eval()
    if kind == "minilm":
        # MiniLM is BertModel with a narrow, deep-ish config; here 2 layers, hidden 64, 4 heads.
        cfg = tf.BertConfig(vocab_size=128, hidden_size=64, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=128,
                            max_position_embeddings=32, initializer_range=0.2, **common)
        return tf.BertModel(cfg).eval()
    raise ValueError(kind)


class _HFWrapper(nn.Module):
    """Return plain tensors (not ModelOutput) so the exporter names outputs predictably."""

    def __init__(self, model: nn.Module, keys: Sequence[str], arg_names: Sequence[str]):
        super().__init__()
        self.model, self.keys, self.arg_names = model, list(keys), list(arg_names)

    def forward(self, *args):
        out = self.model(**dict(zip(self.arg_names, args)), return_dict=True)
        res = tuple(out[k] for k in self.keys)
        return res[0] if len(res) == 1 else res


# ------------------------------------------------------------------------ fixture table
# name -> (factory, opset, input maker, input names, output names, notes, keep BN nodes)
Fixture = Tuple[Callable[[], nn.Module], int, Callable[[], List[torch.Tensor]], List[str],
                List[str], str, bool]


def _image(batch: int, size: int, seed: int):
    def make():
        return [torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))]
    return make


def _text(kind: str, impl: str, seed: int, types: bool):
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if types else [])
    return names, (lambda: _text_inputs(2, 12, 128, seed, types))


FIXTURES: Dict[str, Fixture] = {
    "resnet_tiny": (lambda: randomize(ResNetTiny(), 1), 13, _image(2, 32, 1), ["input"],
                    ["output"], "resnet18 BasicBlocks; BN folded by the exporter", False),
    "vgg_tiny": (lambda: randomize(VGGTiny(), 2), 14, _image(1, 32, 2), ["input"], ["output"],
                 "vgg11_bn: BN kept, MaxPool, AdaptiveAvgPool 2x2, 3 FC + Dropout", True),
    "densenet_tiny": (lambda: randomize(DenseNetTiny(), 3), 17, _image(1, 32, 3), ["input"],
                      ["output"], "densenet: pre-activation BN, concat chains, AvgPool", False),
    "inception_tiny": (lambda: randomize(InceptionTiny(), 4), 13, _image(2, 40, 4), ["input"],
                       ["output"], "inception: 4-branch concat, 1x7/7x1 convs, "
                       "AvgPool count_include_pad=0, unpadded MaxPool", False),
    "squeezenet_tiny": (lambda: randomize(SqueezeNetTiny(), 5), 13, _image(1, 48, 5), ["input"],
                        ["output"], "squeezenet1_1: fire modules, ceil_mode MaxPool, biased "
                        "convs, conv classifier", False),
    "shufflenet_v2_tiny": (lambda: randomize(ShuffleNetV2Tiny(), 6), 14, _image(1, 64, 6),
                           ["input"], ["output"], "shufflenet v2: chunk (Slice), channel "
                           "shuffle Reshape/Transpose, depthwise, ReduceMean head", False),
    "mobilenet_v2_tiny": (lambda: randomize(MobileNetV2Tiny(), 7), 13, _image(2, 32, 7),
                          ["input"], ["output"], "mobilenet v2: ReLU6 Clip, depthwise, "
                          "inverted residuals", False),
    "mobilenet_v3_tiny": (lambda: randomize(MobileNetV3Tiny(), 8, bn_gain=1.1), 17,
                          _image(1, 64, 8),
                          ["input"], ["output"], "mobilenet v3 small: HardSwish, SE with "
                          "HardSigmoid + Mul, 5x5 depthwise; BN kept", True),
    "mobilenet_v3_tiny_op13": (lambda: randomize(MobileNetV3Tiny(), 8, bn_gain=1.1), 13,
                               _image(1, 64, 8),
                               ["input"], ["output"], "same model at opset 13 (no HardSwish "
                               "op: exported as HardSigmoid * x)", False),
    "alexnet_tiny": (lambda: randomize(AlexNetTiny(), 9), 13, _image(1, 127, 9), ["input"],
                     ["output"], "alexnet: 11x11/4 conv, LRN, overlapping MaxPool, big FC",
                     False),
    "unet_tiny": (lambda: randomize(UNetTiny(), 12), 13, _image(1, 32, 12), ["input"],
                  ["output"], "encoder-decoder: SiLU, ConvTranspose, bilinear Resize, skip "
                  "concat", False),
}


def _add_text(name, kind, impl, opset, outputs, keys, types, notes):
    names, maker = _text(kind, impl, 10, types)
    FIXTURES[name] = (lambda: _HFWrapper(_hf_model(kind, 11, impl), keys, names), opset, maker,
                      names, outputs, notes, False)


_add_text("bert_tiny_hf", "bert_cls", "eager", 17, ["logits"], ["logits"], True,
          "transformers BertForSequenceClassification, eager attention, LayerNormalization")
_add_text("bert_tiny_hf_op13", "bert_cls", "eager", 13, ["logits"], ["logits"], True,
          "same at opset 13: LayerNorm decomposed into ReduceMean/Sub/Pow/Sqrt/Div")
_add_text("distilbert_tiny_hf", "distilbert_cls", "sdpa", 14, ["logits"], ["logits"], False,
          "transformers DistilBertForSequenceClassification, SDPA attention export")
_add_text("minilm_tiny_hf", "minilm", "eager", 17,
          ["last_hidden_state", "pooler_output"], ["last_hidden_state", "pooler_output"], True,
          "MiniLM-style BertModel (hidden 64, 4 heads), two outputs")


# ------------------------------------------------------------------------ export
def export_one(name: str, out_dir: str) -> Dict:
    factory, opset, make_inputs, in_names, out_names, notes, keep_bn = FIXTURES[name]
    torch.manual_seed(0)        # anything randomize() does not cover is still reproducible
    model = factory()
    inputs = make_inputs()
    with torch.no_grad():
        ref = model(*inputs)
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, tuple(inputs), buf, dynamo=False, opset_version=opset,
            input_names=in_names, output_names=out_names, do_constant_folding=True,
            # PRESERVE keeps the (eval-mode) BatchNormalization nodes instead of folding them.
            training=(torch.onnx.TrainingMode.PRESERVE if keep_bn
                      else torch.onnx.TrainingMode.EVAL))
    proto = onnx.load_from_string(buf.getvalue())
    proto.doc_string = f"deepsparse_lite test fixture {name}: {notes}. Random weights."
    for node in proto.graph.node:           # exporter doc strings carry local file paths
        node.doc_string = ""
    onnx.checker.check_model(proto)
    onnx.save(proto, os.path.join(out_dir, f"{name}.onnx"))
    arrays = {f"input:{n}": t.numpy() for n, t in zip(in_names, inputs)}
    arrays.update({f"output:{n}": t.numpy() for n, t in zip(out_names, ref)})
    np.savez_compressed(os.path.join(out_dir, f"{name}.npz"), **arrays)
    ops = Counter(n.op_type for n in proto.graph.node)
    return {"opset": opset, "notes": notes, "inputs": in_names, "outputs": out_names,
            "ops": dict(sorted(ops.items())),
            "bytes": os.path.getsize(os.path.join(out_dir, f"{name}.onnx"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", help="export only these fixtures")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    names = args.only or list(FIXTURES)
    manifest_path = os.path.join(args.out, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f).get("fixtures", {})
    for name in names:
        manifest[name] = export_one(name, args.out)
        print(f"{name:26s} opset {manifest[name]['opset']:2d} "
              f"{manifest[name]['bytes'] / 1024:7.1f} KiB")
    import transformers
    info = {"generator": "tests/tools/export_torch_models.py", "torch": torch.__version__,
            "transformers": transformers.__version__, "onnx": onnx.__version__,
            "fixtures": dict(sorted(manifest.items()))}
    with open(manifest_path, "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
