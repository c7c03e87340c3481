"""
CT SSL Studio's models, losses, optimiser and pretext tasks in PyTorch, equal to the app's
TypeScript (src/core/ml/vqvae.ts, classifier.ts, losses.ts, optim.ts; src/core/ssl).

Every tensor keeps the app's name and layout (src/core/ml/specs/params.ts), so checkpoints are
the app's checkpoints:
  conv weight [kh, kw, in, out], transposed-conv weight [kh, kw, out, in], dense [in, out],
  codebook [codes, dim], BatchNorm weight/bias/running_mean/running_var.
The layers permute them to PyTorch's layout in forward. Activations are NCHW.

Needs only torch and numpy (PyTorch >= 1.10). No code of the app is imported.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

M32 = 0xFFFFFFFF


# --- layers ------------------------------------------------------------------------------------

def _uniform_(t, bound):
    with torch.no_grad():
        t.uniform_(-bound, bound)


class Conv(nn.Module):
    """Conv2d(k, stride, pad) whose weight is stored [k, k, in, out] (the app's layout)."""

    transposed = False

    def __init__(self, k, cin, cout, bias, stride, pad):
        super().__init__()
        self.stride, self.pad = stride, pad
        # conv [k, k, in, out], fan_in k*k*in; transposed [k, k, out, in], PyTorch's fan_in k*k*out
        shape = (k, k, cout, cin) if self.transposed else (k, k, cin, cout)
        bound = 1 / math.sqrt(k * k * shape[2])
        self.weight = nn.Parameter(torch.empty(*shape))
        _uniform_(self.weight, bound)
        if bias:
            self.bias = nn.Parameter(torch.empty(cout))
            _uniform_(self.bias, bound)
        else:
            self.register_parameter('bias', None)

    def forward(self, x):
        # [kh, kw, in, out] -> [out, in, kh, kw]; transposed [kh, kw, out, in] -> PyTorch's [in, out, kh, kw]
        f = F.conv_transpose2d if self.transposed else F.conv2d
        return f(x, self.weight.permute(3, 2, 0, 1), self.bias, self.stride, self.pad)


class ConvT(Conv):
    """ConvTranspose2d(k, stride, pad) whose weight is stored [k, k, out, in] (the app's layout)."""

    transposed = True


class BN(nn.Module):
    """
    BatchNorm (eps 1e-5, momentum 0.1, unbiased running variance) as the app's. `collect`, when a
    list, receives (mean, unbiased variance) of each training batch instead of updating the
    running statistics (BatchNorm recalibration, the codebook's data start).
    """

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer('running_mean', torch.zeros(c))
        self.register_buffer('running_var', torch.ones(c))
        self.collect = None

    def forward(self, x):
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, 1e-5)
        if self.collect is not None:
            with torch.no_grad():
                n = x.numel() // x.shape[1]
                mean = x.mean(dim=(0, 2, 3))
                var = x.var(dim=(0, 2, 3), unbiased=False) * (n / (n - 1) if n > 1 else 1.0)
                self.collect.append((mean, var))
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, 1e-5)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, True, 0.1, 1e-5)


class ConvBN(nn.Module):
    def __init__(self, conv, c):
        super().__init__()
        self.conv = conv
        self.bn = BN(c)

    def forward(self, x):
        return self.bn(self.conv(x))


class ConvTBN(nn.Module):
    def __init__(self, convt, c):
        super().__init__()
        self.convt = convt
        self.bn = BN(c)

    def forward(self, x):
        return self.bn(self.convt(x))


class ResBlock(nn.Module):
    """x + conv2(relu(bn(conv1(x)))): conv1 3x3 and conv2 1x1, no biases."""

    def __init__(self, w):
        super().__init__()
        self.conv1 = Conv(3, w, w, False, 1, 1)
        self.bn = BN(w)
        self.conv2 = Conv(1, w, w, False, 1, 0)

    def forward(self, x):
        return x + self.conv2(F.relu(self.bn(self.conv1(x))))


def expand_channels(x, channels):
    """A grey batch [N, 1, S, S] repeated into the model's channels (the reference's 3-channel input)."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] != 1:
        raise ValueError('input has %d channels, the model takes %d (or 1, repeated into each)' % (x.shape[1], channels))
    return x.expand(-1, channels, -1, -1)


class Encoder(nn.Module):
    """E1-E5: [N, C, S, S] -> latent [N, d, S/4, S/4]."""

    def __init__(self, a):
        super().__init__()
        w1, w2 = a['widths']
        self.leak = a['leak']
        self.channels = a['channels']
        self.e1 = ConvBN(Conv(4, a['channels'], w1, True, 2, 1), w1)
        self.e2 = ConvBN(Conv(4, w1, w2, True, 2, 1), w2)
        self.e3 = ConvBN(Conv(3, w2, w2, True, 1, 1), w2)
        self.res = nn.ModuleList([ResBlock(w2) for _ in range(a['resBlocks'])])
        self.e5 = ConvBN(Conv(1, w2, a['latent'], True, 1, 0), a['latent'])

    def forward(self, x):
        lr = lambda t: F.leaky_relu(t, self.leak)
        h = lr(self.e1(expand_channels(x, self.channels)))
        h = lr(self.e2(h))
        h = lr(self.e3(h))
        for r in self.res:
            h = r(h)
        return lr(self.e5(lr(h)))


class Decoder(nn.Module):
    """D1-D4: latent -> [N, C, S, S] in (-1, 1)."""

    def __init__(self, a):
        super().__init__()
        w1, w2 = a['widths']
        self.leak = a['leak']
        self.d1 = ConvBN(Conv(3, a['latent'], w2, True, 1, 1), w2)
        self.res = nn.ModuleList([ResBlock(w2) for _ in range(a['resBlocks'])])
        self.d3 = ConvTBN(ConvT(4, w2, w1, True, 2, 1), w1)
        self.d4 = ConvTBN(ConvT(4, w1, a['channels'], True, 2, 1), a['channels'])

    def forward(self, q):
        lr = lambda t: F.leaky_relu(t, self.leak)
        h = lr(self.d1(q))
        for r in self.res:
            h = r(h)
        h = lr(h)
        h = lr(self.d3(h))
        return torch.tanh(self.d4(h))


class VQ(nn.Module):
    def __init__(self, codes, dim):
        super().__init__()
        self.codebook = nn.Parameter(torch.empty(codes, dim))
        _uniform_(self.codebook, 1 / codes)

    def forward(self, z, commitment):
        """Nearest code (L2; the first on ties), straight-through; loss = codebook + beta * commitment."""
        n, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        e = self.codebook
        with torch.no_grad():
            dist = (e * e).sum(1)[None, :] - 2 * (flat @ e.t())
            idx = torch.argmin(dist, dim=1)
        q = e[idx]
        loss = F.mse_loss(q, flat.detach()) + commitment * F.mse_loss(flat, q.detach())
        st = flat + (q - flat).detach()
        return st.reshape(n, h, w, d).permute(0, 3, 1, 2), loss, idx.reshape(n, h, w)


class Vqvae(nn.Module):
    kind = 'vqvae'

    def __init__(self, a):
        super().__init__()
        self.arch = a
        self.encoder = Encoder(a)
        self.vq = VQ(a['codes'], a['latent'])
        self.decoder = Decoder(a)

    def forward(self, x):
        z = self.encoder(x)
        q, vq_loss, idx = self.vq(z, self.arch['commitment'])
        return self.decoder(q), vq_loss, idx


class Head(nn.Module):
    def __init__(self, a):
        super().__init__()
        h = a['headWidth']
        self.leak = a['leak']
        self.c1 = ConvBN(Conv(4, a['latent'], h, True, 2, 1), h)
        self.c2 = ConvBN(Conv(4, h, h, True, 2, 1), h)
        self.fc = Dense(h, a['classes'])

    def forward(self, x):
        h = F.leaky_relu(self.c1(x), self.leak)
        h = F.leaky_relu(self.c2(h), self.leak)
        return self.fc(h.mean(dim=(2, 3)))


class Dense(nn.Module):
    """x @ weight + bias with weight [in, out] (the app's layout)."""

    def __init__(self, cin, cout):
        super().__init__()
        bound = 1 / math.sqrt(cin)
        self.weight = nn.Parameter(torch.empty(cin, cout))
        self.bias = nn.Parameter(torch.empty(cout))
        _uniform_(self.weight, bound)
        _uniform_(self.bias, bound)

    def forward(self, x):
        return x @ self.weight + self.bias


class Classifier(nn.Module):
    kind = 'classifier'

    def __init__(self, a):
        super().__init__()
        self.arch = a
        self.encoder = Encoder(a)
        self.head = Head(a)

    def forward(self, x):
        return self.head(self.encoder(x))


def build_model(arch):
    """The model of an architecture record (job.json: {model: 'vqvae'|'classifier', ...})."""
    if arch['model'] == 'vqvae':
        return Vqvae(arch)
    if arch['model'] == 'classifier':
        return Classifier(arch)
    raise ValueError('job.json: architecture.model must be vqvae or classifier (got %r)' % (arch['model'],))


def bn_layers(model):
    return [m for m in model.modules() if isinstance(m, BN)]


# --- losses ------------------------------------------------------------------------------------

def gaussian_window(size=11, sigma=1.5):
    c = (size - 1) / 2
    g = np.array([math.exp(-((i - c) ** 2) / (2 * sigma * sigma)) for i in range(size)], dtype=np.float64)
    return torch.from_numpy((g / g.sum()).astype(np.float32))


def ssim(a, b, size=11, sigma=1.5, k1=0.01, k2=0.03, data_range=1.0):
    """Mean SSIM of [N, C, H, W] images, per channel, 'valid' Gaussian filtering (no padding)."""
    n, c, h, w = a.shape
    g = gaussian_window(size, sigma).to(a.device, a.dtype)
    gx = g.reshape(1, 1, 1, size)
    gy = g.reshape(1, 1, size, 1)
    blur = lambda t: F.conv2d(F.conv2d(t, gx), gy)
    x = a.reshape(n * c, 1, h, w)
    y = b.reshape(n * c, 1, h, w)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return (num / den).mean()


DEFAULT_WEIGHTS = {'mse': 0.2, 'maskedMse': 0.2, 'vq': 0.8, 'ssim': 0.1}


def min_max_per_image(x):
    """Each image of a batch scaled to [0, 1] (a constant image to 0), differentiable."""
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - lo) / torch.clamp(hi - lo, min=1e-8)


def composite_loss(out, target, vq_loss, mask, weights, recipe='ours'):
    """
    w.mse * MSE + w.maskedMse * masked MSE + w.vq * VQ - w.ssim * SSIM (src/core/ml/losses.ts).
    The reference recipe (src/shared/recipes.ts) sums each image's masked MSE over the batch and
    takes SSIM of the output min-max scaled per image, as the public code does.
    """
    w = dict(DEFAULT_WEIGHTS)
    w.update(weights or {})
    reference = recipe == 'reference'
    zero = out.new_zeros(())
    m = F.mse_loss(out, target)
    if mask is None:
        mm = zero
    elif reference:
        mm = (((out - target) ** 2 * mask).sum(dim=(1, 2, 3)) / torch.clamp(mask.sum(dim=(1, 2, 3)), min=1.0)).sum()
    else:
        mm = ((out - target) ** 2 * mask).sum() / torch.clamp(mask.sum(), min=1.0)
    s = ssim(min_max_per_image(out) if reference else out, target) if w['ssim'] != 0 else zero
    total = m * w['mse'] + vq_loss * w['vq']
    if mask is not None and w['maskedMse'] != 0:
        total = total + mm * w['maskedMse']
    if w['ssim'] != 0:
        total = total - s * w['ssim']
    return total, {'mse': m, 'maskedMse': mm, 'vq': vq_loss, 'ssim': s}


class TaskModel(nn.Module):
    """The model with its task's loss, so that DistributedDataParallel wraps one forward."""

    def __init__(self, model, loss_weights, recipe='ours'):
        super().__init__()
        self.model = model
        self.loss_weights = loss_weights or {}
        self.recipe = recipe or 'ours'

    def forward(self, x, target=None, mask=None, labels=None):
        if self.model.kind == 'vqvae':
            out, vq_loss, idx = self.model(x)
            c = self.model.arch['channels']
            target = expand_channels(target, c)
            mask = None if mask is None else expand_channels(mask, c)
            total, terms = composite_loss(out, target, vq_loss, mask, self.loss_weights, self.recipe)
            return total, {'loss': total, **terms}, idx
        logits = self.model(x)
        loss = F.cross_entropy(logits, labels)
        acc = (logits.argmax(1) == labels).float().mean()
        return loss, {'loss': loss, 'accuracy': acc}, None


# --- optimiser ---------------------------------------------------------------------------------

class AdamFamily(torch.optim.Optimizer):
    """
    Adam and RAdam as the app's src/core/ml/optim.ts (PyTorch 1.13's rules, written out so that
    every PyTorch version gives the same update). State per parameter: m, v; one step count.
    """

    def __init__(self, named_params, kind='radam', lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        if kind not in ('adam', 'radam'):
            raise ValueError("optimizer kind must be 'adam' or 'radam' (got %r)" % (kind,))
        named_params = list(named_params)
        self.names = [n for n, _ in named_params]
        super().__init__([p for _, p in named_params], dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay))
        self.kind = kind
        self.t = 0

    @torch.no_grad()
    def step(self, closure=None):
        self.t += 1
        t = self.t
        for group in self.param_groups:
            lr, b1, b2, eps, wd = group['lr'], group['beta1'], group['beta2'], group['eps'], group['weight_decay']
            bc1 = 1 - b1 ** t
            bc2 = 1 - b2 ** t
            rho_inf = 2 / (1 - b2) - 1
            rho_t = rho_inf - (2 * t * b2 ** t) / bc2
            rect = math.sqrt(((rho_t - 4) * (rho_t - 2) * rho_inf) / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) if rho_t > 5 else 0.0
            for p in group['params']:
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                if wd != 0:
                    g = g + p * wd
                st = self.state[p]
                if 'm' not in st:
                    st['m'] = torch.zeros_like(p)
                    st['v'] = torch.zeros_like(p)
                m, v = st['m'], st['v']
                m.mul_(b1).add_(g * (1 - b1))
                v.mul_(b2).add_(g * g * (1 - b2))
                if self.kind == 'adam':
                    upd = (m * (lr / bc1)) / (v.sqrt() / math.sqrt(bc2) + eps)
                elif rho_t > 5:
                    upd = (m * (lr * rect * math.sqrt(bc2) / bc1)) / (v.sqrt() + eps)
                else:
                    upd = m * (lr / bc1)
                p.sub_(upd)

    def set_lr(self, lr):
        for g in self.param_groups:
            g['lr'] = lr

    def app_state(self):
        """The app's optimizer state: ({kind, step, options, names}, {name:m, name:v tensors})."""
        g = self.param_groups[0]
        tensors, names = {}, []
        for name, p in zip(self.names, g['params']):
            st = self.state.get(p)
            if not st or 'm' not in st:
                continue
            names.append(name)
            tensors[name + ':m'] = st['m']
            tensors[name + ':v'] = st['v']
        options = {'lr': g['lr'], 'beta1': g['beta1'], 'beta2': g['beta2'], 'eps': g['eps'], 'weightDecay': g['weight_decay']}
        return {'kind': self.kind, 'step': self.t, 'options': options, 'names': names}, tensors

    def load_app_state(self, meta, tensors):
        if meta.get('kind') != self.kind:
            raise ValueError("optimizer state is for %r, this optimizer is %r" % (meta.get('kind'), self.kind))
        self.t = int(meta['step'])
        by_name = dict(zip(self.names, self.param_groups[0]['params']))
        for name in meta['names']:
            p = by_name.get(name)
            if p is None:
                raise ValueError('optimizer state names %r, which the model does not have' % (name,))
            m, v = tensors[name + ':m'], tensors[name + ':v']
            if tuple(m.shape) != tuple(p.shape) or tuple(v.shape) != tuple(p.shape):
                raise ValueError('optimizer state of %s has shape %s, the parameter %s' % (name, tuple(m.shape), tuple(p.shape)))
            self.state[p] = {'m': m.to(p.device).clone(), 'v': v.to(p.device).clone()}


# --- weights: safetensors with the app's names -------------------------------------------------

def write_safetensors(path, tensors, metadata=None):
    """float32 tensors {name: tensor} as safetensors (8-byte aligned header), written atomically."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype('<f4'))
        b = a.tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(',', ':'))
    while (8 + len(h.encode('utf-8'))) % 8 != 0:
        h += ' '
    hb = h.encode('utf-8')
    tmp = '%s.tmp-%d' % (path, os.getpid())
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_safetensors(path, max_header=16 << 20):
    """{name: float32 tensor} of a safetensors file (F32 only), every offset checked."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError('%s: shorter than its header length' % path)
    (n,) = struct.unpack('<Q', data[:8])
    if n > max_header or 8 + n > len(data):
        raise ValueError('%s: header length %d exceeds the file' % (path, n))
    header = json.loads(data[8:8 + n].decode('utf-8'))
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        if t.get('dtype') != 'F32':
            raise ValueError('%s: %s has dtype %s; only F32 is supported' % (path, name, t.get('dtype')))
        b, e = t['data_offsets']
        count = int(np.prod(t['shape'])) if t['shape'] else 1
        if e < b or base + e > len(data) or (e - b) != 4 * count:
            raise ValueError('%s: %s lies outside the file or has the wrong size' % (path, name))
        arr = np.frombuffer(data, dtype='<f4', count=count, offset=base + b).reshape(t['shape'])
        out[name] = torch.from_numpy(arr.copy())
    return out


def model_tensors(model):
    """Parameters then buffers, by the app's names."""
    out = {}
    for n, p in model.named_parameters():
        out[n] = p
    for n, b in model.named_buffers():
        out[n] = b
    return out


def load_weights(model, tensors, strict=True):
    own = model_tensors(model)
    missing = [n for n in own if n not in tensors]
    unexpected = [n for n in tensors if n not in own]
    if strict and (missing or unexpected):
        raise ValueError('weights: missing %s, unexpected %s' % (missing, unexpected))
    with torch.no_grad():
        for n, t in own.items():
            if n not in tensors:
                continue
            src = tensors[n]
            if tuple(src.shape) != tuple(t.shape):
                raise ValueError('weights: %s has shape %s but the model expects %s' % (n, tuple(src.shape), tuple(t.shape)))
            t.copy_(src.to(t.device, t.dtype))
    return missing, unexpected


# --- seeded streams ----------------------------------------------------------------------------

def mulberry32(seed):
    """The app's mulberry32 (src/core/random.ts): floats in [0, 1)."""
    state = [seed & M32]

    def imul(a, b):
        return (a * b) & M32

    def nxt():
        state[0] = (state[0] + 0x6D2B79F5) & M32
        t = state[0]
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296.0

    return nxt


@torch.no_grad()
def init_codebook_from_data(model, x, seed):
    """The codebook's data start (src/core/ml/vqvae.ts initCodebookFromData): K encoder outputs of a batch."""
    bns = bn_layers(model.encoder)
    for b in bns:
        b.collect = []
    was = model.training
    model.train()
    try:
        z = model.encoder(x)
    finally:
        for b in bns:
            b.collect = None
        model.train(was)
    d = model.arch['latent']
    flat = z.permute(0, 2, 3, 1).reshape(-1, d).cpu().numpy().astype(np.float32)
    n = flat.shape[0]
    rng = mulberry32(seed)
    out = np.zeros((model.arch['codes'], d), dtype=np.float32)
    for k in range(model.arch['codes']):
        r = int(math.floor(rng() * n))
        for j in range(d):
            out[k, j] = np.float32(flat[r, j] + 1e-3 * (rng() - 0.5))
    model.vq.codebook.copy_(torch.from_numpy(out).to(model.vq.codebook.device))


@torch.no_grad()
def recalibrate_bn(model, batches):
    """Running statistics = the mean of the batch statistics over `batches` (src/core/ml/bn-recalibrate.ts)."""
    bns = bn_layers(model)
    for b in bns:
        b.collect = []
    was = model.training
    model.train()
    try:
        for x in batches:
            model(x)
    finally:
        model.train(was)
    for b in bns:
        if b.collect:
            b.running_mean.copy_(torch.stack([m for m, _ in b.collect]).mean(0))
            b.running_var.copy_(torch.stack([v for _, v in b.collect]).mean(0))
        b.collect = None


# --- pretext tasks (src/core/ssl/transforms.ts), on [S, S] float32 images in [0, 1] ---------------

def js_round(x):
    """JavaScript's Math.round (halves up), not Python's banker's rounding."""
    return int(math.floor(x + 0.5))


def mask_side(size, percent, definition):
    f = percent / 100.0
    # 'side' truncates as the public code's int() does (the app's maskSide, src/core/ssl/transforms.ts)
    return max(1, js_round(math.sqrt(f) * size) if definition == 'area' else int(math.floor(f * size + 1e-9)))


def masked_example(img, o, rng):
    size = img.shape[0]
    side = mask_side(size, o['maskPercent'], o['maskDefinition'])
    margin = js_round(100 / 512 * size) if o['maskDefinition'] == 'side' else 0
    room = max(0, size - margin - side)
    x, y = int(rng.integers(room + 1)), int(rng.integers(room + 1))
    inp = img.copy()
    mask = np.zeros_like(img)
    inp[y:y + side, x:x + side] = 0
    mask[y:y + side, x:x + side] = 1
    return {'input': inp, 'target': img, 'mask': mask}


def salt_and_pepper(img, fraction, rng):
    out = img.copy().reshape(-1)
    n = out.size
    count = js_round(fraction * n)
    idx = rng.choice(n, size=count, replace=False)
    half = (count + 1) // 2  # the first ceil(count / 2) chosen pixels are set to 1
    out[idx[:half]] = 1
    out[idx[half:]] = 0
    return out.reshape(img.shape)


def rotate90(img, k):
    """Counter-clockwise by k x 90 degrees, as the app's rotate90."""
    return np.ascontiguousarray(np.rot90(img, k % 4))


def flip_image(img, kind):
    """0: none, 1: horizontal (left-right), 2: vertical (up-down)."""
    if kind == 1:
        return np.ascontiguousarray(img[:, ::-1])
    if kind == 2:
        return np.ascontiguousarray(img[::-1, :])
    return img.copy()


def make_example(task, o, img, rng, nxt=None):
    """One training example of a task (src/core/ssl/pretext/*)."""
    if task == 'masked':
        return masked_example(img, o, rng)
    if task == 'next-slice':
        return {'input': img, 'target': nxt}
    if task == 'denoise':
        return {'input': salt_and_pepper(img, o['noiseFraction'], rng), 'target': img}
    if task == 'rotation':
        k = int(rng.integers(4))
        return {'input': rotate90(img, k), 'label': k}
    if task == 'flip':
        k = int(rng.integers(3))
        return {'input': flip_image(img, k), 'label': k}
    raise ValueError('unknown pretext task %r' % (task,))
