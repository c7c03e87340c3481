"""
CT SSL Studio cluster job: pretraining with PyTorch DistributedDataParallel.

    torchrun --nproc_per_node=N train.py            # one node, N GPUs (or N CPU processes)
    python3 train.py --spawn N                      # the same without torchrun (torch.multiprocessing)
    python3 train.py                                # one process

Reads the job folder this file is in (config.json, job.json, init.safetensors, data/), writes
checkpoints (safetensors, the app's tensor names and layout) and metrics.jsonl into --out
(default: the job folder's output/), and resumes from the latest checkpoint there when started
again (after a kill, a preemption, a time limit). `ctssl import OUTPUT` brings the result home.

Distributed: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT are read from the
environment (torchrun and Slurm launchers set them); NCCL on GPUs, gloo on CPUs. Each process
takes config.batchSize slices per step, so a step sees WORLD_SIZE x batchSize slices; the
gradients are averaged across processes.
"""
import argparse
import json
import math
import os
import shutil
import signal
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model as M  # noqa: E402

JOB_FORMAT = 'ctssl-cluster-job'


def log(*a):
    print('[ctssl-job]', *a, flush=True)


def read_json(path):
    with open(path, 'r', encoding='utf-8') as f:
        return json.load(f)


def write_json_atomic(path, value):
    tmp = '%s.tmp-%d' % (path, os.getpid())
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --- data ----------------------------------------------------------------------------------------

class Shards:
    """The job's slices: data/manifest.json, data/index.npy, data/shard-*.npy (memory-mapped)."""

    def __init__(self, data_dir):
        self.dir = data_dir
        self.manifest = read_json(os.path.join(data_dir, 'manifest.json'))
        m = self.manifest
        if m.get('format') != 'ctssl-cluster-job-data' or m.get('version') != 1:
            raise SystemExit('%s: not a CT SSL Studio job data manifest (format %r, version %r)' % (data_dir, m.get('format'), m.get('version')))
        self.size = int(m['size'])
        self.scale = float(m['scale'])
        self.index = np.load(os.path.join(data_dir, 'index.npy'))  # [N, 4]: series, position, shard, row
        self.files = [s['file'] for s in m['shards']]
        self._maps = {}
        self.series = m['series']

    def _shard(self, k):
        a = self._maps.get(k)
        if a is None:
            a = np.load(os.path.join(self.dir, self.files[k]), mmap_mode='r')
            self._maps[k] = a
        return a

    def image(self, i):
        _, _, shard, row = self.index[i]
        return np.asarray(self._shard(int(shard))[int(row)], dtype=np.float32) / self.scale

    def refs(self, split, gap=0):
        """Index rows of a split's slices (with a partner `gap` slices further on in the same series)."""
        out = []
        for s in self.series:
            if s['split'] != split:
                continue
            first, count = int(s['first']), int(s['slices'])
            out.extend(range(first, first + max(0, count - gap)))
        return np.asarray(out, dtype=np.int64)


def task_options(config):
    return {k: config.get(k) for k in ('maskPercent', 'maskDefinition', 'gap', 'noiseFraction')}


class TaskDataset(torch.utils.data.Dataset):
    """Examples by (epoch, position): the task's randomness is seeded by (seed, epoch, position),
    so a resumed run, any world size and any worker count see the same examples."""

    def __init__(self, shards, split, config, seed, shuffle):
        self.shards = shards
        self.task = config['task']
        self.opts = task_options(config)
        self.gap = int(config.get('gap') or 1) if self.task == 'next-slice' else 0
        self.refs = shards.refs(split, self.gap)
        self.seed = int(seed)
        self.shuffle = shuffle
        self._order = (None, None)

    def __len__(self):
        return len(self.refs)

    def order(self, epoch):
        if self._order[0] != epoch:
            if self.shuffle:
                perm = np.random.default_rng([self.seed, epoch, 0x5EED]).permutation(len(self.refs))
            else:
                perm = np.arange(len(self.refs))
            self._order = (epoch, perm)
        return self._order[1]

    def __getitem__(self, key):
        epoch, pos = key
        n = len(self.refs)
        i = int(self.refs[self.order(epoch)[pos % n]])
        img = self.shards.image(i)
        nxt = self.shards.image(i + self.gap) if self.gap else None
        rng = np.random.default_rng([self.seed, epoch, pos])
        return M.make_example(self.task, self.opts, img, rng, nxt)


def collate(examples):
    out = {'input': torch.from_numpy(np.stack([e['input'] for e in examples]))[:, None]}
    if 'target' in examples[0]:
        out['target'] = torch.from_numpy(np.stack([e['target'] for e in examples]))[:, None]
    if 'mask' in examples[0]:
        out['mask'] = torch.from_numpy(np.stack([e['mask'] for e in examples]))[:, None]
    if 'label' in examples[0]:
        out['labels'] = torch.tensor([e['label'] for e in examples], dtype=torch.long)
    return out


def to_device(batch, device):
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# --- one step ------------------------------------------------------------------------------------

def train_step(task_model, optimizer, batch):
    """Forward, backward and update on one batch; returns the loss terms as tensors."""
    optimizer.zero_grad(set_to_none=True)
    total, terms, _ = task_model(batch['input'], batch.get('target'), batch.get('mask'), batch.get('labels'))
    total.backward()
    optimizer.step()
    return {k: v.detach() for k, v in terms.items()}


def make_optimizer(model, config):
    return M.AdamFamily(model.named_parameters(), kind=config.get('optimizer', 'radam'), lr=float(config.get('lr', 1e-3)))


def lr_at(config, step):
    """The learning rate of a step: the config's (the app trains at a constant rate)."""
    return float(config.get('lr', 1e-3))


# --- checkpoints ---------------------------------------------------------------------------------

def latest_checkpoint(out_dir):
    p = os.path.join(out_dir, 'checkpoints', 'latest.json')
    if not os.path.exists(p):
        return None
    d = os.path.join(out_dir, 'checkpoints', read_json(p)['dir'])
    return d if os.path.exists(os.path.join(d, 'state.json')) else None


def save_checkpoint(out_dir, model, optimizer, position, losses, job, keep=2):
    """The app's checkpoint layout (src/library/runs/checkpoint.ts), written to a temporary folder and renamed."""
    root = os.path.join(out_dir, 'checkpoints')
    os.makedirs(root, exist_ok=True)
    name = 'step-%07d' % position['step']
    final = os.path.join(root, name)
    tmp = os.path.join(root, '.%s.tmp-%d' % (name, os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    M.write_safetensors(os.path.join(tmp, 'weights.safetensors'), M.model_tensors(model))
    meta, slots = optimizer.app_state()
    M.write_safetensors(os.path.join(tmp, 'optimizer.safetensors'), slots)
    write_json_atomic(os.path.join(tmp, 'optimizer.json'), meta)
    write_json_atomic(os.path.join(tmp, 'state.json'), {
        'step': position['step'], 'epoch': position['epoch'], 'batch': position['batch'],
        'configHash': job['configHash'], 'manifestHash': job['manifestHash'],
        'losses': losses, 'savedAt': datetime.now(timezone.utc).isoformat().replace('+00:00', 'Z'),
    })
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json_atomic(os.path.join(root, 'latest.json'), {'step': position['step'], 'dir': name})
    old = sorted(d for d in os.listdir(root) if d.startswith('step-') and len(d) == 12)
    for d in old[:max(0, len(old) - keep)]:
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    return final


def load_checkpoint(path, model, optimizer):
    M.load_weights(model, M.read_safetensors(os.path.join(path, 'weights.safetensors')), strict=True)
    if os.path.exists(os.path.join(path, 'optimizer.json')):
        optimizer.load_app_state(read_json(os.path.join(path, 'optimizer.json')), M.read_safetensors(os.path.join(path, 'optimizer.safetensors')))
    return read_json(os.path.join(path, 'state.json'))


def truncate_metrics(path, step):
    """Drops metrics of steps after `step` (a killed run's; the resumed run writes them again)."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path, 'r', encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                if json.loads(line)['step'] <= step:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                pass
    with open(path, 'w', encoding='utf-8') as f:
        f.write(''.join(l + '\n' for l in keep))


# --- validation ----------------------------------------------------------------------------------

def image_metrics(out, target, mask):
    """Per image: MSE, SSIM and (with a mask) masked MSE, as src/core/metrics/image.ts."""
    rows = []
    for k in range(out.shape[0]):
        o = out[k:k + 1].double()
        t = target[k:k + 1].double()
        r = {'mse': float(((o - t) ** 2).mean()), 'ssim': float(M.ssim(o, t))}
        if mask is not None:
            m = mask[k:k + 1] > 0
            r['maskedMse'] = float(((o - t) ** 2)[m].mean()) if m.any() else float('nan')
        rows.append(r)
    return rows


def auroc(scores, labels):
    pos = scores[labels == 1]
    neg = scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float('nan')
    order = np.argsort(np.concatenate([pos, neg]), kind='mergesort')
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(allv):  # average ranks of ties
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@torch.no_grad()
def evaluate(net, train_ds, val_ds, config, device):
    """BatchNorm recalibrated on up to 4 training batches, then the validation metrics (the app's evaluate)."""
    bs = int(config['batchSize'])
    calib = []
    for i in range(min(4, math.ceil(len(train_ds) / bs))):
        calib.append(collate([train_ds[(0, i * bs + j)] for j in range(bs)])['input'].to(device))
    M.recalibrate_bn(net, calib)
    net.eval()
    n = math.ceil(len(val_ds) / bs)
    eb = int(config.get('evalBatches', 4))
    n = n if eb == 0 else min(eb, n)
    rows, probs, labels = [], [], []
    for i in range(n):
        idx = [(0, p) for p in range(i * bs, min((i + 1) * bs, len(val_ds)))]
        b = to_device(collate([val_ds[k] for k in idx]), device)
        if net.kind == 'vqvae':
            out, _, _ = net(b['input'])
            c = net.arch['channels']
            if c > 1:
                out = out.mean(1, keepdim=True)
            rows.extend(image_metrics(out.cpu(), b['target'].cpu(), b['mask'].cpu() if 'mask' in b else None))
        else:
            probs.append(torch.softmax(net(b['input']), 1).cpu().double().numpy())
            labels.append(b['labels'].cpu().numpy())
    net.train()
    metrics = {}
    for k in (rows[0].keys() if rows else []):
        v = [r[k] for r in rows if np.isfinite(r[k])]
        metrics[k] = float(np.mean(v)) if v else float('nan')
    if probs:
        p = np.concatenate(probs)
        y = np.concatenate(labels)
        metrics['crossEntropy'] = float(-np.mean(np.log(np.maximum(1e-12, p[np.arange(len(y)), y]))))
        per = [auroc(p[:, c], (y == c).astype(np.int64)) for c in range(p.shape[1])]
        per = [a for a in per if np.isfinite(a)]
        metrics['auroc'] = float(np.mean(per)) if per else float('nan')
        metrics['accuracy'] = float(np.mean(p.argmax(1) == y))
    return {k: v for k, v in metrics.items() if np.isfinite(v)}


# --- the run ------------------------------------------------------------------------------------

def distributed_env():
    rank = int(os.environ.get('RANK', '0'))
    world = int(os.environ.get('WORLD_SIZE', '1'))
    local = int(os.environ.get('LOCAL_RANK', str(rank)))
    return rank, world, local


def pick_device(choice, local_rank):
    if choice == 'cpu' or (choice == 'auto' and not torch.cuda.is_available()):
        return torch.device('cpu')
    if not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is visible to this process')
    torch.cuda.set_device(local_rank % torch.cuda.device_count())
    return torch.device('cuda', local_rank % torch.cuda.device_count())


def default_signals(_worker_id=None):
    """Data loader workers leave SIGTERM and SIGUSR1 to their defaults (the training process's
    handler, inherited through fork, breaks the loader's worker bookkeeping)."""
    for s in (signal.SIGTERM, getattr(signal, 'SIGUSR1', None)):
        if s is not None:
            signal.signal(s, signal.SIG_DFL)


class Stop:
    """SIGTERM / SIGUSR1 (Slurm's warning before a time limit or preemption): save and leave at the next step."""

    def __init__(self):
        self.asked = False
        for s in (signal.SIGTERM, getattr(signal, 'SIGUSR1', None)):
            if s is not None:
                try:
                    signal.signal(s, self._on)
                except ValueError:
                    pass  # not the main thread

    def _on(self, *_):
        self.asked = True


def run(args):
    job_dir = os.path.abspath(args.job)
    out_dir = os.path.abspath(args.out or os.path.join(job_dir, 'output'))
    config = read_json(os.path.join(job_dir, 'config.json'))
    job = read_json(os.path.join(job_dir, 'job.json'))
    if job.get('format') != JOB_FORMAT or job.get('version') != 1:
        raise SystemExit('%s: not a CT SSL Studio cluster job (job.json format %r, version %r)' % (job_dir, job.get('format'), job.get('version')))
    rank, world, local = distributed_env()
    device = pick_device(args.device, local)
    if world > 1:
        dist.init_process_group(backend='nccl' if device.type == 'cuda' else 'gloo', init_method='env://', rank=rank, world_size=world)
    torch.manual_seed(int(config.get('seed', 1)))

    shards = Shards(os.path.join(job_dir, 'data'))
    seed = int(config.get('seed', 1))
    train_ds = TaskDataset(shards, 'train', config, seed, shuffle=True)
    monitor = 'val' if len(shards.refs('val')) else 'train'
    val_ds = TaskDataset(shards, monitor, config, seed ^ 0x5A17, shuffle=False)
    bs = int(config['batchSize'])
    batches_per_epoch = max(1, math.ceil(len(train_ds) / (bs * world)))
    total = int(config['steps']) if config.get('steps') else max(1, math.ceil(float(config.get('epochs', 1)) * batches_per_epoch))

    net = M.build_model(job['architecture']).to(device)
    optimizer = make_optimizer(net, config)
    position = {'step': 0, 'epoch': 0, 'batch': 0}
    ck = latest_checkpoint(out_dir)
    if ck:
        state = load_checkpoint(ck, net, optimizer)
        if state.get('configHash') != job['configHash'] or state.get('manifestHash') != job['manifestHash']:
            raise SystemExit('%s was written for another job (config or data differ): use another --out' % ck)
        position = {k: int(state[k]) for k in ('step', 'epoch', 'batch')}
        if rank == 0:
            log('resuming from %s (step %d)' % (ck, position['step']))
    else:
        M.load_weights(net, M.read_safetensors(os.path.join(job_dir, 'init.safetensors')), strict=True)
        if job.get('codebookFromData') and net.kind == 'vqvae':
            first = collate([train_ds[(0, j)] for j in range(bs)])
            M.init_codebook_from_data(net, first['input'].to(device), seed)
    if rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        for f in ('config.json', 'job.json'):
            shutil.copyfile(os.path.join(job_dir, f), os.path.join(out_dir, f))
    metrics_path = os.path.join(out_dir, 'metrics.jsonl')
    if rank == 0:
        truncate_metrics(metrics_path, position['step'])

    task_model = M.TaskModel(net, config.get('lossWeights') or {}, config.get('recipe', 'ours'))
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(task_model, device_ids=[device.index] if device.type == 'cuda' else None)
    else:
        ddp = task_model
    if rank == 0:
        log('%s, %s, %d process(es) on %s, %d training slices, %d steps of %d x %d slices, %d steps per epoch' % (
            config['task'], job['architecture']['model'], world, device.type, len(train_ds), total, world, bs, batches_per_epoch))

    stop = Stop()
    eval_every = int(config.get('evalEvery', 50))
    ck_every = int(config.get('checkpointEvery', 50))
    budget = args.max_steps if args.max_steps is not None else None
    done_here = 0
    last = {}
    t0 = time.time()
    workers = args.workers
    while position['step'] < total:
        epoch = position['epoch']
        keys = [[(epoch, (b * world + rank) * bs + j) for j in range(bs)] for b in range(position['batch'], batches_per_epoch)]
        loader = torch.utils.data.DataLoader(train_ds, batch_sampler=keys, collate_fn=collate, num_workers=workers,
                                             pin_memory=device.type == 'cuda', persistent_workers=False,
                                             worker_init_fn=default_signals if workers > 0 else None)
        stopped = False
        for batch in loader:
            for g in optimizer.param_groups:
                g['lr'] = lr_at(config, position['step'])
            terms = train_step(ddp, optimizer, to_device(batch, device))
            vec = torch.stack([terms[k].float() for k in sorted(terms)])
            if world > 1:
                dist.all_reduce(vec)
                vec /= world
            last = {k: float(v) for k, v in zip(sorted(terms), vec.tolist())}
            position['step'] += 1
            position['batch'] += 1
            if position['batch'] >= batches_per_epoch:
                position['epoch'] += 1
                position['batch'] = 0
            done_here += 1
            step = position['step']
            if rank == 0:
                with open(metrics_path, 'a', encoding='utf-8') as f:
                    f.write(json.dumps({'step': step, 'split': 'train', **last}) + '\n')
                if step % max(1, args.log_every) == 0 or step == total:
                    rate = done_here * bs * world / max(1e-9, time.time() - t0)
                    log('step %d/%d  %s  %.1f slices/s' % (step, total, '  '.join('%s %.5f' % kv for kv in last.items()), rate))
            if step % eval_every == 0 or step == total:
                if rank == 0:
                    m = evaluate(net, train_ds, val_ds, config, device)
                    with open(metrics_path, 'a', encoding='utf-8') as f:
                        f.write(json.dumps({'step': step, 'split': 'val', **m}) + '\n')
                if world > 1:
                    dist.barrier()
            asked = torch.tensor([1.0 if stop.asked or (budget is not None and done_here >= budget) else 0.0], device=device)
            if world > 1:
                dist.all_reduce(asked)
            leave = asked.item() > 0 and step < total
            if step % ck_every == 0 or step == total or leave:
                if rank == 0:
                    save_checkpoint(out_dir, net, optimizer, position, last, job)
                if world > 1:
                    dist.barrier()
            if leave:
                stopped = True
                break
            if step >= total or position['batch'] == 0:
                break  # done, or the epoch is over: a new loader for the next one
        if stopped:
            if rank == 0:
                log('stopped at step %d with a checkpoint; run the same command again to continue' % position['step'])
            break
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if rank == 0 and position['step'] >= total:
        log('done: %d steps; bring it home with: ctssl import %s' % (position['step'], out_dir))


# --- the equivalence check: one step on a given batch ----------------------------------------------

def check_step(folder):
    """
    One step from `folder`/init.safetensors on the batch in `folder` (input.npy, target.npy,
    mask.npy, labels.npy as present; NHWC float32 / int32 as the app's batches), with
    `folder`/config.json and job.json; writes after.safetensors and losses.json. The app's test
    (test/host/cluster-job.test.ts) compares them with one step of the app.
    """
    torch.set_num_threads(1)
    config = read_json(os.path.join(folder, 'config.json'))
    job = read_json(os.path.join(folder, 'job.json'))
    net = M.build_model(job['architecture'])
    M.load_weights(net, M.read_safetensors(os.path.join(folder, 'init.safetensors')), strict=True)
    optimizer = make_optimizer(net, config)
    batch = {}
    for k in ('input', 'target', 'mask'):
        p = os.path.join(folder, k + '.npy')
        if os.path.exists(p):
            a = np.load(p)  # [N, H, W, 1]
            batch[k] = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
    if os.path.exists(os.path.join(folder, 'labels.npy')):
        batch['labels'] = torch.from_numpy(np.load(os.path.join(folder, 'labels.npy')).astype(np.int64))
    task_model = M.TaskModel(net, config.get('lossWeights') or {}, config.get('recipe', 'ours'))
    terms = train_step(task_model, optimizer, batch)
    M.write_safetensors(os.path.join(folder, 'after.safetensors'), M.model_tensors(net))
    write_json_atomic(os.path.join(folder, 'losses.json'), {k: float(v) for k, v in terms.items()})


# --- launching without torchrun ------------------------------------------------------------------

def _spawned(index, world, port, argv):
    os.environ.update({'RANK': str(index), 'LOCAL_RANK': str(index), 'WORLD_SIZE': str(world),
                       'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(port)})
    run(parse_args(argv))


def free_port():
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def parse_args(argv):
    p = argparse.ArgumentParser(description='CT SSL Studio cluster job: pretraining with PyTorch DDP.')
    p.add_argument('--job', default=HERE, help='the job folder (default: the folder of this file)')
    p.add_argument('--out', default=None, help='where checkpoints and metrics.jsonl go (default: JOB/output); a run there is resumed')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    p.add_argument('--workers', type=int, default=2, help='data loader worker processes per training process')
    p.add_argument('--max-steps', type=int, default=None, help='leave (with a checkpoint) after this many steps of this invocation')
    p.add_argument('--log-every', type=int, default=10)
    p.add_argument('--spawn', type=int, default=0, help='start N local processes (torch.multiprocessing) instead of using torchrun')
    p.add_argument('--check-step', nargs='+', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.check_step:
        for folder in args.check_step:
            check_step(folder)
        return
    if args.spawn and args.spawn > 0 and 'RANK' not in os.environ:
        rest = []
        skip = False
        for a in argv:
            if skip:
                skip = False
                continue
            if a == '--spawn':
                skip = True
                continue
            if a.startswith('--spawn='):
                continue
            rest.append(a)
        import torch.multiprocessing as mp
        mp.spawn(_spawned, args=(args.spawn, free_port(), rest), nprocs=args.spawn, join=True)
        return
    run(args)


if __name__ == '__main__':
    main()
