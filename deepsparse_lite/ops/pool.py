"""Pooling: MaxPool, AveragePool, LpPool (N-d, NC + spatial dims), GlobalAveragePool,
GlobalMaxPool.

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

3-D and higher pools are separable: a box max is the max along each dim in turn, and a
box average is the sum along each dim times the product of per-dim reciprocal counts
(both count_include_pad rules count a box as the product of its per-dim counts). So they
run as a 2-D pool over the last two dims (every leading dim a plane), then one POOL2D pass
per remaining dim with that dim as H and everything after it as one long W row
(kernel 1 along W). No column buffer; each pass reads the previous pass's (smaller)
output. N-d MaxPool's Indices output is refused.
LpPool is the sum pool (POOL2D's average with unit divisors) of |x|^p, then the p-th root
(elementwise steps before and after).
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


def _emit_pool2d(b, avg: bool, x, y, planes, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW,
                 invh=None, invw=None, q8: int = 0) -> None:
    """One POOL2D step over ``planes`` planes of H x W (invh / invw: average divisors)."""
    Wp = (OW - 1) * SW + (KW - 1) * DW + 1
    stride = -(-(Wp + 1) // 16) * 16   # per-thread row buffers, 64-byte apart
    nbuf = max(1, min(b.max_threads, planes * OH))
    if not avg:
        invh = invw = x
    ws = b.workspace(nbuf * stride * 4, name="pool_rows")
    b.emit(PoolOp.POOL2D, [x, y, ws, invh, invw], sp.params(
        sp.POOL, avg=int(avg), planes=planes, H=H, W=W, OH=OH, OW=OW, KH=KH, KW=KW,
        SH=SH, SW=SW, pad_top=PT, pad_left=PL, DH=DH, DW=DW, Wp=Wp, level=b.isa,
        ws_threads=nbuf, ws_stride=stride, q8=q8))


class _Pool(OpDef):
    kind = "max"     # "max", "avg" or "lp"

    @property
    def avg(self) -> bool:
        """POOL2D's sum mode (average, or the sum of |x|^p of LpPool)."""
        return self.kind != "max"

    def _geometry(self, node, x):
        rank = len(x.shape)
        if rank < 3:
            raise UnsupportedModelError(f"{node.describe()}: pooling needs an [N, C, D1, ...] input, "
                                        f"got rank {rank}")
        allow_dil = {"max": True, "avg": node.opset >= 19, "lp": node.opset >= 18}[self.kind]
        return pool_geometry(node, x.shape[2:], allow_dilations=allow_dil)

    def infer(self, node, ins):
        x = ins[0]
        out = self._geometry(node, x)[-1]
        return [(tuple(x.shape[:2]) + tuple(out), x.dtype)]

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        q8 = (self.kind == "max" and np.dtype(xv.dtype) in (np.dtype(np.uint8), np.dtype(np.int8))
              and not (len(node.outputs) > 1 and node.outputs[1]))
        if np.dtype(xv.dtype) != np.float32 and not q8:
            raise UnsupportedModelError(f"{node.describe()}: element type {np.dtype(xv.dtype)} is "
                                        f"not supported (float32 only; MaxPool also uint8 / int8)")
        if q8:   # 8-bit MaxPool (QOperator models, QDQ round trips dropped around it): bytes
            geom = self._geometry(node, xv)
            shape = tuple(int(d) for d in xv.shape)
            y = b.output(node.outputs[0], shape[:2] + tuple(geom[-1]), xv.dtype)
            if y.size == 0:
                return
            self._pool(node, b, b.value(node.inputs[0]), y, shape, geom,
                       q8=1 if np.dtype(xv.dtype) == np.uint8 else 2)
            return
        geom = self._geometry(node, xv)
        shape = tuple(int(d) for d in xv.shape)
        oshape = shape[:2] + tuple(geom[-1])
        with_idx = self.kind == "max" and len(node.outputs) > 1 and bool(node.outputs[1])
        if with_idx and len(shape) > 4:
            raise UnsupportedModelError(f"{node.describe()}: the Indices output is only supported "
                                        f"for 1-D and 2-D pooling")
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], oshape, np.float32)
        if y.size == 0:
            return
        if with_idx:
            self._with_indices(node, b, x, y, shape, geom)
            return
        if self.kind != "lp":
            self._pool(node, b, x, y, shape, geom)
            return
        # LpPool: (sum over the window of |x|^p)^(1/p), padding contributing 0
        from deepsparse_lite.ops.elementwise import Bin, Fn, emit_binary, emit_unary
        p = int(node.attrs.get("p", 2))
        if p < 1:
            raise UnsupportedModelError(f"{node.describe()}: p={p} (must be >= 1)")
        xp = b.temp(shape, np.float32, name=f"{node.name}_pow")
        if p == 2:
            emit_binary(b, Bin.MUL, x, x, xp)
        else:
            emit_unary(b, Fn.ABS, x, xp)
            if p > 1:
                emit_unary(b, Fn.POW, xp, xp, float(p))
        if p == 1:
            self._pool(node, b, xp, y, shape, geom)
            return
        pooled = b.temp(oshape, np.float32, name=f"{node.name}_sum")
        self._pool(node, b, xp, pooled, shape, geom)
        if p == 2:
            emit_unary(b, Fn.SQRT, pooled, y)
        else:
            emit_unary(b, Fn.POW, pooled, y, 1.0 / p)

    def _divisor(self, node, b, geom, d, size):
        """POOL2D's per-output 1 / count along spatial dim d (ones for LpPool's sum)."""
        kernel, strides, dil, pb, pe, out = geom
        if self.kind == "lp":
            return b.const(np.ones(out[d], np.float32), "pool_ones")
        inc = int(node.attrs.get("count_include_pad", 0))
        return b.const(_inv_counts(out[d], size, kernel[d], strides[d], dil[d], pb[d], pe[d], inc),
                       "pool_inv")

    @staticmethod
    def _as_2d(shape, geom):
        """1-D pooling as 2-D with H = 1."""
        kernel, strides, dil, pb, pe, out = geom
        if len(shape) == 3:
            return shape[:2] + (1,) + shape[2:], ([1] + kernel, [1] + strides, [1] + dil, [0] + pb,
                                                   [0] + pe, [1] + out)
        return shape, geom

    def _with_indices(self, node, b, x, y, shape, geom):
        shape, (kernel, strides, dil, pb, pe, out) = self._as_2d(shape, geom)
        ind = b.output(node.outputs[1], y.shape, np.int64)
        b.emit(PoolOp.MAXPOOL2D_IDX, [x, y, ind], sp.params(
            sp.POOL, planes=shape[0] * shape[1], H=shape[2], W=shape[3], OH=out[0], OW=out[1],
            KH=kernel[0], KW=kernel[1], SH=strides[0], SW=strides[1], pad_top=pb[0],
            pad_left=pb[1], DH=dil[0], DW=dil[1],
            storage_order=int(node.attrs.get("storage_order", 0))))

    def _pool(self, node, b, x, y, shape, geom, q8: int = 0):
        """y = the pool of x (N-d: separable passes, the last two dims first, then one pass
        per leading dim with everything after it as one row). q8: POOL2D's 8-bit max mode
        (1 uint8, 2 int8); the passes' temporaries then hold bytes too."""
        shape, geom = self._as_2d(shape, geom)
        kernel, strides, dil, pb, pe, out = geom
        sp_in = list(shape[2:])
        nd = len(sp_in)
        div = (lambda d: self._divisor(node, b, geom, d, sp_in[d])) if self.avg else (lambda d: None)
        cur = list(sp_in)   # spatial sizes of the current tensor
        src = x
        passes = [(nd - 2, nd - 1)] + [(d,) for d in range(nd - 3, -1, -1)]
        for k, dims in enumerate(passes):
            for d in dims:
                cur[d] = out[d]
            dst = y if k == len(passes) - 1 else b.temp(
                tuple(shape[:2]) + tuple(cur), y.dtype, name=f"{node.name}_pool_pass")
            if len(dims) == 2:
                h, w = dims
                planes = shape[0] * shape[1] * int(np.prod(sp_in[:h], dtype=np.int64))
                _emit_pool2d(b, self.avg, src, dst, planes, sp_in[h], sp_in[w], out[h], out[w],
                             kernel[h], kernel[w], strides[h], strides[w], pb[h], pb[w], dil[h],
                             dil[w], div(h), div(w), q8=q8)
            else:
                (d,) = dims
                planes = shape[0] * shape[1] * int(np.prod(sp_in[:d], dtype=np.int64))
                inner = int(np.prod(cur[d + 1:], dtype=np.int64))
                ones = b.const(np.ones(inner, np.float32), "pool_ones") if self.avg else None
                _emit_pool2d(b, self.avg, src, dst, planes, sp_in[d], inner, out[d], inner,
                             kernel[d], 1, strides[d], 1, pb[d], 0, dil[d], 1, div(d), ones, q8=q8)
            src = dst


@register("MaxPool")
class MaxPool(_Pool):
    kind = "max"

    def infer(self, node, ins):
        if int(node.attrs.get("storage_order", 0)) not in (0, 1):
            raise UnsupportedModelError(f"{node.describe()}: invalid storage_order")
        res = super().infer(node, ins)
        if len(node.outputs) > 1 and node.outputs[1]:
            res.append((res[0][0], np.dtype(np.int64)))
        return res


@register("AveragePool")
class AveragePool(_Pool):
    kind = "avg"


@register("LpPool")
class LpPool(_Pool):
    kind = "lp"


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
