"""Pooling: MaxPool, AveragePool (1-D and 2-D, NCHW), GlobalAveragePool, GlobalMaxPool.

Output sizes follow the ONNX spec: explicit pads (floor, or ceil_mode with the rule that
the last window must start inside the input or its left pad), auto_pad SAME_UPPER /
SAME_LOWER (out = ceil(in / stride), the total pad split with the odd element at the end /
beginning) and VALID. 1-D pools run as 2-D with H = 1. Average divisors are 1 / window
counts precomputed per output row and column (count_include_pad counts pad positions but
never the ceil_mode overhang, as onnxruntime and onnx.reference do). Global pools are
plain per-plane reductions (REDUCE of the reduce family). MaxPool's optional Indices
output selects a scalar kernel that tracks the arg-max (first maximum in row-major window
order, flattened over N * C * H * W with storage_order 0, or h + w * H within the plane
for storage_order 1).
"""
from __future__ import annotations


import numpy as np

from deepsparse_lite.ops.base import OpDef, UnsupportedModelError, op_id, register
from deepsparse_lite.ops.reduce import RK, emit_reduce
from deepsparse_lite import step_params as sp
from deepsparse_lite.plan import Family


class PoolOp:
    """Sub-op numbers of the pool family (kernels/pool.pyx documents the layout)."""
    POOL2D = op_id(Family.POOL, 1)
    MAXPOOL2D_IDX = op_id(Family.POOL, 2)


def pool_geometry(node, in_spatial, *, allow_dilations=True):
    """(kernel, strides, dilations, pads_begin, pads_end, out) per spatial dim."""
    nd = len(in_spatial)
    desc = node.describe()
    kernel = node.attrs.get("kernel_shape")
    if kernel is None or len(kernel) != nd:
        raise UnsupportedModelError(f"{desc}: kernel_shape must have {nd} entries")
    kernel = [int(k) for k in kernel]
    strides = [int(s) for s in (node.attrs.get("strides") or [1] * nd)]
    dil = [int(d) for d in (node.attrs.get("dilations") or [1] * nd)] if allow_dilations else [1] * nd
    pads = [int(p) for p in (node.attrs.get("pads") or [0] * (2 * nd))]
    if len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd:
        raise UnsupportedModelError(f"{desc}: strides / dilations / pads do not match the rank")
    if min(kernel) < 1 or min(strides) < 1 or min(dil) < 1 or min(pads) < 0:
        raise UnsupportedModelError(f"{desc}: kernel, strides and dilations must be >= 1, pads >= 0")
    auto_pad = node.attrs.get("auto_pad", "NOTSET") or "NOTSET"
    ceil_mode = int(node.attrs.get("ceil_mode", 0))
    pb, pe, out = pads[:nd], pads[nd:], []
    for d in range(nd):
        size, k, s, dl = int(in_spatial[d]), kernel[d], strides[d], dil[d]
        ext = (k - 1) * dl + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-size // s)
            total = max((o - 1) * s + ext - size, 0)
            small = total // 2
            pb[d], pe[d] = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)
        elif auto_pad == "VALID":
            pb[d] = pe[d] = 0
            o = (size - ext) // s + 1
        elif auto_pad == "NOTSET":
            span = size + pb[d] + pe[d] - ext
            if ceil_mode:
                o = -(-span // s) + 1
                if (o - 1) * s >= size + pb[d]:   # the last window must start inside
                    o -= 1
            else:
                o = span // s + 1
        else:
            raise UnsupportedModelError(f"{desc}: unknown auto_pad '{auto_pad}'")
        if o < 1:
            raise UnsupportedModelError(f"{desc}: the pooling window does not fit the input "
                                        f"(dim {d}: size {size}, window {ext})")
        out.append(o)
    return kernel, strides, dil, pb, pe, out


def _inv_counts(out, size, k, s, d, pb, pe, include_pad):
    lo, hi = (-pb, size + pe) if include_pad else (0, size)
    inv = np.zeros(out, np.float32)
    for o in range(out):
        cnt = sum(1 for kk in range(k) if lo <= o * s - pb + kk * d < hi)
        inv[o] = 1.0 / cnt if cnt else 0.0
    return inv


class _Pool(OpDef):
    avg = False

    def _geometry(self, node, x):
        rank = len(x.shape)
        if rank not in (3, 4):
            raise UnsupportedModelError(f"{node.describe()}: only 1-D and 2-D pooling (rank 3 or 4 "
                                        f"inputs) is supported, got rank {rank}")
        allow_dil = not self.avg or node.opset >= 19
        return pool_geometry(node, x.shape[2:], allow_dilations=allow_dil)

    def infer(self, node, ins):
        x = ins[0]
        out = self._geometry(node, x)[-1]
        return [(tuple(x.shape[:2]) + tuple(out), x.dtype)]

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        if np.dtype(xv.dtype) != np.float32:
            raise UnsupportedModelError(f"{node.describe()}: element type {np.dtype(xv.dtype)} is "
                                        f"not supported (float32 only)")
        kernel, strides, dil, pb, pe, out = self._geometry(node, xv)
        shape = xv.shape
        if len(shape) == 3:   # 1-D as 2-D with H = 1
            kernel, strides, dil, pb, pe, out = ([1] + kernel, [1] + strides, [1] + dil, [0] + pb,
                                                 [0] + pe, [1] + out)
            H, W = 1, int(shape[2])
        else:
            H, W = int(shape[2]), int(shape[3])
        planes = int(shape[0]) * int(shape[1])
        x = b.value(node.inputs[0])
        oshape = tuple(shape[:2]) + tuple(out[-(len(shape) - 2):])
        y = b.output(node.outputs[0], oshape, np.float32)
        if y.size == 0:
            return
        OH, OW = out
        KH, KW = kernel
        if not self.avg and len(node.outputs) > 1 and node.outputs[1]:
            ind = b.output(node.outputs[1], oshape, np.int64)
            b.emit(PoolOp.MAXPOOL2D_IDX, [x, y, ind], sp.params(
                sp.POOL, planes=planes, H=H, W=W, OH=OH, OW=OW, KH=KH, KW=KW, SH=strides[0],
                SW=strides[1], pad_top=pb[0], pad_left=pb[1], DH=dil[0], DW=dil[1],
                storage_order=int(node.attrs.get("storage_order", 0))))
            return
        Wp = (OW - 1) * strides[1] + (KW - 1) * dil[1] + 1
        stride = -(-(Wp + 1) // 16) * 16   # per-thread row buffers, 64-byte apart
        nbuf = max(1, min(b.max_threads, planes * OH))
        if self.avg:
            inc = int(node.attrs.get("count_include_pad", 0))
            invh = b.const(_inv_counts(OH, H, KH, strides[0], dil[0], pb[0], pe[0], inc), "pool_invh")
            invw = b.const(_inv_counts(OW, W, KW, strides[1], dil[1], pb[1], pe[1], inc), "pool_invw")
        else:
            invh = invw = x
        ws = b.workspace(nbuf * stride * 4, name="pool_rows")
        b.emit(PoolOp.POOL2D, [x, y, ws, invh, invw], sp.params(
            sp.POOL, avg=int(self.avg), planes=planes, H=H, W=W, OH=OH, OW=OW, KH=KH, KW=KW,
            SH=strides[0], SW=strides[1], pad_top=pb[0], pad_left=pb[1], DH=dil[0], DW=dil[1],
            Wp=Wp, level=b.isa, ws_threads=nbuf, ws_stride=stride))


@register("MaxPool")
class MaxPool(_Pool):
    avg = False

    def infer(self, node, ins):
        if int(node.attrs.get("storage_order", 0)) not in (0, 1):
            raise UnsupportedModelError(f"{node.describe()}: invalid storage_order")
        res = super().infer(node, ins)
        if len(node.outputs) > 1 and node.outputs[1]:
            res.append((res[0][0], np.dtype(np.int64)))
        return res


@register("AveragePool")
class AveragePool(_Pool):
    avg = True


@register("GlobalAveragePool", "GlobalMaxPool")
class GlobalPool(OpDef):
    def infer(self, node, ins):
        x = ins[0]
        if len(x.shape) < 2:
            raise UnsupportedModelError(f"{node.describe()}: input must be [N, C, ...]")
        return [(tuple(x.shape[:2]) + (1,) * (len(x.shape) - 2), x.dtype)]

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        shape = xv.shape
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], tuple(shape[:2]) + (1,) * (len(shape) - 2), xv.dtype)
        if y.size == 0:
            return
        kind = RK.MEAN if node.op_type == "GlobalAveragePool" else RK.MAX
        emit_reduce(b, kind, x, y, list(range(2, len(shape))), node.describe())
