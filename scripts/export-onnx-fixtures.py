#!/usr/bin/python3
"""Exports torchvision CNNs to ONNX the way a PyTorch user would, for the ONNX import/export tests.

Small models (committed under test/fixtures/onnx/, so the tests need no Python):
  resnet18-slim    torchvision's ResNet with BasicBlock [2,2,2,2] (ResNet-18's topology) at 1/8 width
  mobilenetv2      torchvision mobilenet_v2(width_mult=0.25)
  efficientnet-b0  torchvision EfficientNet with B0's block table at width 0.25, depth 0.34 (SE, SiLU)
  densenet-tiny    torchvision DenseNet(growth_rate=8, block_config=(2,2,2)): Concat
  operator-mix     every other converted operator (ConvTranspose, Resize, PRelu, HardSwish, ...), 16x16
  pooling-variants ceil_mode pooling and x.mean / torch.amax global pooling (GoogLeNet, SqueezeNet, MnasNet)
  grouped-convs    grouped convolutions: ResNeXt bottlenecks (4 groups) and a RegNet-style block
  shufflenet-tiny  torchvision ShuffleNetV2 at stage widths 16/32/64: channel split and shuffle
All at 32x32x3 (but operator-mix), 10 classes, random weights and randomized BatchNorm statistics (so BN is not the
identity), eval mode, opset 13, dynamic batch axis. Next to each NAME.onnx: NAME.ref.json with a
reference input (NCHW, batch 2), PyTorch's output for it, and PyTorch's MACs per image (conv and
linear layers, counted with forward hooks).

With --full DIR: full-size ResNet-18, MobileNetV2 and EfficientNet-B0 (224x224, 1000 classes) into
DIR (keep it git-ignored; about 80 MB), with references like the small ones, for the "MACs within 1% of PyTorch" check.

Usage: /usr/bin/python3 scripts/export-onnx-fixtures.py [--out test/fixtures/onnx] [--only NAME] [--full .cache/onnx-full]
Needs Debian's python3-torch, python3-torchvision and python3-onnx (no download).
"""
import argparse
import json
import os

import onnx
import torch
import torchvision
from torch import nn
from torchvision.models import efficientnet, resnet


def slim_resnet18(num_classes):
    """ResNet-18's topology (conv7x7/2, maxpool, BasicBlock x [2,2,2,2], GAP, fc) at widths 8..64."""
    model = resnet.ResNet(resnet.BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    # torchvision hard-codes widths 64..512 in __init__; rebuild the stages with its own _make_layer.
    model.inplanes = 8
    model.conv1 = nn.Conv2d(3, 8, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(8)
    model.layer1 = model._make_layer(resnet.BasicBlock, 8, 2)
    model.layer2 = model._make_layer(resnet.BasicBlock, 16, 2, stride=2)
    model.layer3 = model._make_layer(resnet.BasicBlock, 32, 2, stride=2)
    model.layer4 = model._make_layer(resnet.BasicBlock, 64, 2, stride=2)
    model.fc = nn.Linear(64, num_classes)
    return model


def slim_efficientnet_b0(num_classes):
    settings, last_channel = efficientnet._efficientnet_conf('efficientnet_b0', width_mult=0.25, depth_mult=0.34)
    return efficientnet.EfficientNet(settings, dropout=0.2, last_channel=last_channel, num_classes=num_classes)


def tiny_densenet(num_classes):
    return torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2, 2), num_init_features=16, bn_size=2, num_classes=num_classes)


class OperatorMix(nn.Module):
    """One of every other operator the importer converts (opset 14 for HardSwish), and a Flatten of a
    2x2 map into the classifier (Flatten and view), where NCHW and NHWC flatten orders differ."""

    def __init__(self, num_classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.1))
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.PReLU(16))
        self.depthwise = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1, groups=16), nn.Hardswish())
        self.squeeze = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(32, 8, 1), nn.ReLU(), nn.Conv2d(8, 32, 1), nn.Hardsigmoid())
        self.dilated = nn.Sequential(nn.Conv2d(32, 16, 3, padding=2, dilation=2), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU())
        self.upsample = nn.Sequential(nn.Upsample(scale_factor=2, mode='nearest'), nn.Conv2d(16, 16, 1), nn.ReLU6())
        self.bn = nn.BatchNorm2d(24)
        self.pool = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Conv2d(24, 8, 1), nn.Sigmoid(), nn.AvgPool2d(2))
        self.fc = nn.Linear(8 * 2 * 2, num_classes)
        self.fc2 = nn.Linear(8 * 2 * 2, num_classes)

    def forward(self, x):
        x = self.down(self.stem(x))
        x = self.depthwise(x)
        x = x * self.squeeze(x)
        x = self.dilated(x)
        x = torch.cat([self.up(x), self.upsample(x)], dim=1)
        x = self.head(self.pool(self.bn(x)))
        # Both ways users flatten: Flatten, and view(batch, -1) (Shape/Gather/Unsqueeze/Concat/Reshape).
        return self.fc(torch.flatten(x, 1)) + self.fc2(x.view(x.size(0), -1))


class PoolingVariants(nn.Module):
    """Pooling the way torchvision's GoogLeNet, SqueezeNet and MnasNet (and many hand-written nets)
    write it: max and average pooling with ceil_mode=True (a partial last window), and global pooling
    as x.mean([2, 3]) / torch.amax, which export as ReduceMean / ReduceMax, with and without keepdim
    (the latter in a squeeze-excitation gate)."""

    def __init__(self, num_classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16))
        self.pool_same = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 16 -> 8: TF's 'same' windows, values of any sign
        self.conv = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.pool_padded = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)  # 8 -> 5: explicit pads after ReLU
        self.gate = nn.Sequential(nn.Conv2d(32, 8, 1), nn.ReLU(), nn.Conv2d(8, 32, 1), nn.Sigmoid())
        self.pool_average = nn.AvgPool2d(2, stride=2, ceil_mode=True)  # 5 -> 3: the last window holds one row
        self.fc = nn.Linear(32, num_classes)
        self.fc_max = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.pool_same(self.stem(x))
        x = self.pool_padded(self.conv(x))
        x = x * self.gate(x.mean((2, 3), keepdim=True))
        x = self.pool_average(x)
        return self.fc(x.mean([2, 3])) + self.fc_max(torch.amax(x, dim=(2, 3)))


class GroupedConvs(nn.Module):
    """Grouped convolutions as ResNeXt and RegNet use them: torchvision's ResNeXt bottleneck (a
    3x3 conv of 4 groups between 1x1 convs, BN, residual add) at stride 1 and 2, and a RegNet-style
    block (group width 8) with a biased grouped conv."""

    def __init__(self, num_classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        base = lambda width: resnet.Bottleneck(16, 4, stride=1, groups=4, base_width=width)
        self.block1 = base(64)  # 16 -> width 16 (4 groups of 4) -> 16
        down = nn.Sequential(nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))
        self.block2 = resnet.Bottleneck(16, 8, stride=2, downsample=down, groups=4, base_width=64)  # width 32, 8x8
        self.regnet = nn.Sequential(nn.Conv2d(32, 24, 3, padding=1, groups=4, bias=True), nn.BatchNorm2d(24), nn.ReLU(),
                                    nn.Conv2d(24, 24, 3, stride=2, padding=1, groups=3), nn.ReLU())
        self.fc = nn.Linear(24, num_classes)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.regnet(x), 1), 1))


def tiny_shufflenet(num_classes):
    """torchvision's ShuffleNetV2 (channel split, shuffle, stride-2 blocks with two branches) at
    stage widths 16/32/64 and 1-2 blocks per stage."""
    return torchvision.models.ShuffleNetV2([2, 2, 1], [8, 16, 32, 64, 128], num_classes=num_classes)


SMALL = {
    'resnet18-slim': slim_resnet18,
    'mobilenetv2': lambda n: torchvision.models.mobilenet_v2(num_classes=n, width_mult=0.25),
    'efficientnet-b0': slim_efficientnet_b0,
    'densenet-tiny': tiny_densenet,
    'operator-mix': OperatorMix,
    'pooling-variants': PoolingVariants,
    'grouped-convs': GroupedConvs,
    'shufflenet-tiny': tiny_shufflenet,
}
OPSET = {'operator-mix': 14}
SIZE = {'operator-mix': 16}

FULL = {
    'resnet18': lambda n: torchvision.models.resnet18(num_classes=n),
    'mobilenetv2': lambda n: torchvision.models.mobilenet_v2(num_classes=n),
    'efficientnet-b0': lambda n: torchvision.models.efficientnet_b0(num_classes=n),
}


def randomize_batchnorm(model, generator):
    """Random affine parameters and running statistics: an identity BN would hide layout bugs."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            with torch.no_grad():
                module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.2)
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)


def pytorch_macs(model, x):
    """MACs per image of Conv2d, ConvTranspose2d and Linear layers, from forward hooks on the real forward pass."""
    total = [0]

    def conv_hook(module, inputs, output):
        kh, kw = module.kernel_size
        total[0] += output[0].numel() * (module.in_channels // module.groups) * kh * kw

    def transposed_hook(module, inputs, output):
        # Every input position scatters a kh x kw x (out / groups) window: MACs follow the input's size.
        kh, kw = module.kernel_size
        total[0] += inputs[0][0].numel() * (module.out_channels // module.groups) * kh * kw

    def linear_hook(module, inputs, output):
        total[0] += module.in_features * module.out_features

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.ConvTranspose2d):
            hooks.append(module.register_forward_hook(transposed_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(x[:1])
    for hook in hooks:
        hook.remove()
    return total[0]


def export(name, build, out_dir, size, num_classes, seed):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build(num_classes)
    randomize_batchnorm(model, generator)
    model.eval()
    x = torch.randn(2, 3, size, size, generator=generator)
    path = os.path.join(out_dir, f'{name}.onnx')
    torch.onnx.export(
        model, x, path, opset_version=OPSET.get(name, 13), input_names=['input'], output_names=['logits'],
        dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
    )
    onnx.checker.check_model(onnx.load(path))
    macs = pytorch_macs(model, x)
    with torch.no_grad():
        y = model(x)
    reference = {
        'model': f'{name}.onnx',
        'torch': torch.__version__,
        'torchvision': torchvision.__version__,
        'inputShape': list(x.shape),
        'input': [round(v, 7) for v in x.flatten().tolist()],
        'outputShape': list(y.shape),
        'output': y.flatten().tolist(),
        'macsPerImage': macs,
    }
    with open(os.path.join(out_dir, f'{name}.ref.json'), 'w') as f:
        json.dump(reference, f)
    print(f'{path}: {os.path.getsize(path)} bytes, {macs} MACs per image')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default='test/fixtures/onnx')
    parser.add_argument('--full', help='also write full-size models (224x224, 1000 classes) into this folder')
    parser.add_argument('--only-full', action='store_true', help='write the full-size models only')
    parser.add_argument('--only', help='write only this small model (the others stay byte for byte as committed)')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for i, (name, build) in enumerate([] if args.only_full else SMALL.items()):
        if args.only in (None, name):
            export(name, build, args.out, SIZE.get(name, 32), 10, seed=100 + i)
    if args.full:
        os.makedirs(args.full, exist_ok=True)
        for i, (name, build) in enumerate(FULL.items()):
            export(name, build, args.full, 224, 1000, seed=200 + i)


if __name__ == '__main__':
    main()
