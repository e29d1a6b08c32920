"""Data-parallel runs under torchrun: one process per device, each on its shard of every batch.

    torchrun --nproc_per_node 4 -m ltnas run CONFIG

Every rank builds the same network from the same seed, draws the same epoch order from the same
generator and keeps its own slice of each global batch (`DeviceBatches(shard=...)`), so a run with
N ranks and batch B sees exactly the batches a single process with batch N·B would, and a resumed
run restores one generator state for all. After each backward pass the gradients (weights and α)
are averaged across ranks, so every rank takes the same optimizer step and weights and α stay
identical everywhere; BatchNorm running statistics are averaged after each epoch. Only rank 0
writes the run folder and shows progress.

Without torchrun (WORLD_SIZE unset or 1) every function here is a no-op and nothing is imported
from torch.distributed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
from torch import nn

from ltnas.errors import LtnasError

# Where collectives put their small tensors: NCCL only reduces CUDA tensors, gloo CPU ones.
_collective_device = torch.device("cpu")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True in the process that writes files and prints (rank 0, or the only process)."""
    return rank() == 0


def shard() -> tuple[int, int]:
    """(this rank, number of ranks): the slice of each global batch this process trains on."""
    return rank(), world_size()


def init_from_environment(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...).

    Returns the device of this rank: cuda:LOCAL_RANK when the run is on CUDA, else `device`.
    Does nothing for a single process.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if not dist.is_available():
        raise LtnasError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run a single process")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise LtnasError(f"torchrun started local rank {local_rank} but only {torch.cuda.device_count()} GPUs "
                             "are visible; lower --nproc_per_node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    global _collective_device
    _collective_device = device
    return device


def broadcast_object(value):
    """Rank 0's `value` on every rank (e.g. the path of the run folder rank 0 created)."""
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _all_reduce_mean(tensors: Sequence[torch.Tensor]) -> None:
    """Average tensors across ranks in place, in one collective (flattened together)."""
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset: offset + t.numel()].view_as(t))
        offset += t.numel()


@torch.no_grad()
def average_gradients(parameters: Iterable[torch.Tensor]) -> None:
    """Replace each `.grad` by its mean over ranks (a missing grad counts as zeros)."""
    if not is_distributed():
        return
    params = list(parameters)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    _all_reduce_mean([p.grad for p in params])


@torch.no_grad()
def average_tensors(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Mean over ranks of freshly computed tensors (e.g. α gradients from autograd.grad)."""
    if not is_distributed():
        return list(tensors)
    averaged = [t.detach().clone() for t in tensors]
    _all_reduce_mean(averaged)
    return averaged


@torch.no_grad()
def average_buffers(module: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) across ranks, so that evaluation
    and checkpoints are the same on every rank. Integer buffers (batch counters) agree already."""
    if is_distributed():
        _all_reduce_mean([b for b in module.buffers() if b.is_floating_point()])


def sum_over_ranks(*values: float) -> list[float]:
    """Totals of per-rank sums (loss, correct, count) for the epoch's metrics row."""
    if not is_distributed():
        return list(values)
    total = torch.tensor(values, dtype=torch.float64, device=_collective_device)
    dist.all_reduce(total)
    return total.tolist()


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm with statistics over the global batch (`sync_bn`): torch's SyncBatchNorm, CUDA only."""
    if not is_distributed():
        return module
    if device.type != "cuda":
        raise LtnasError("sync_bn needs CUDA (torch's SyncBatchNorm); set distributed.sync_bn=false on CPU")
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def shutdown(synchronise: bool = True) -> None:
    """Leave the process group (at the end of a torchrun process). After a run that ended well, every rank
    first waits for the others: a rank that tore its gloo connections down while another still closed its
    own aborted that one ("terminate called without an active exception"). After a failure there is no
    wait, as the other ranks may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if synchronise:
            dist.barrier()
        dist.destroy_process_group()
