"""Quantized ops on the INT8 kernels (family 7, kernels/quant.pyx).

QuantizeLinear / DequantizeLinear (per tensor or per axis, uint8 / int8, DequantizeLinear
also int32) and DynamicQuantizeLinear are real kernels, so a QDQ model whose quantized
patterns are not rewritten runs in fp32 between DQ and Q, exactly as ONNX defines it.

MatMulInteger / QLinearMatMul (constant 2-D B) and ConvInteger / QLinearConv (constant
weights, 1-D / 2-D) run the INT8 GEMM: uint8 (or int8, xor 0x80 on the fly) activations x
int8 weights, int32 accumulation, weights packed here once in panels of 16 columns and
groups of 4 along K with their zero-point compensation (csrc/q8_gemm.h). The activation
zero point may be a runtime tensor (DynamicQuantizeLinear's): its product with the weight
column sums is taken in the epilogue. QLinear* requantize in the epilogue with
``a_scale * w_scale[n] / y_scale`` computed in float32 as onnxruntime does.

Scales (and QLinear* output zero points) must be constants: a runtime scale is refused by
name. Blocked quantization (opset 21 ``block_size``) and 4-bit / 16-bit / float8 types are
refused.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from deepsparse_lite.ops.base import (OpDef, UnsupportedModelError, ints_attr, normalize_axis,
                                      op_id, register)
from deepsparse_lite.plan import DType, Family, PlanBuilder
from deepsparse_lite import step_params as sp


class QuantOp:
    """Sub-op numbers of the quantization family (layouts in kernels/quant.pyx)."""
    QUANTIZE = op_id(Family.QUANT, 1)
    DEQUANTIZE = op_id(Family.QUANT, 2)
    DYNQUANT = op_id(Family.QUANT, 3)
    QGEMM = op_id(Family.QUANT, 4)
    QCONV = op_id(Family.QUANT, 5)
    QCONVCW = op_id(Family.QUANT, 6)
    QADD = op_id(Family.QUANT, 7)
    EWCHAIN = op_id(Family.QUANT, 8)


OUT_I32, OUT_F32, OUT_U8, OUT_S8 = 0, 1, 2, 3
Q8_TYPES = (np.dtype(np.uint8), np.dtype(np.int8))


def _kq():
    from deepsparse_lite.kernels import quant as kquant
    return kquant


def _const(node, v, what: str) -> np.ndarray:
    if v is None or v.const is None:
        raise UnsupportedModelError(f"{node.describe()}: {what} must be a constant")
    return np.asarray(v.const)


def _dt(v) -> np.dtype:
    return np.dtype(v.dtype)


def _qtype_code(node, dt: np.dtype) -> int:
    if dt == np.uint8:
        return int(DType.U8)
    if dt == np.int8:
        return int(DType.I8)
    raise UnsupportedModelError(f"{node.describe()}: quantized type {dt} is not supported "
                                "(uint8 and int8 only)")


def _axis(node, rank: int, nscale: int, x_shape) -> int:
    """The quantization axis; a 1-D tensor with one scale per element (the int32 biases
    onnxruntime's quantizer emits, axis left at its default 1) is quantized along axis 0."""
    axis = int(node.attrs.get("axis", 1))
    if rank == 1 and axis == 1 and nscale == int(x_shape[0]):
        return 0
    return normalize_axis(axis, rank, node)


def _channel_layout(node, x_shape, scale_shape):
    """(outer, C, inner) of a per-tensor or per-axis scale."""
    n = int(np.prod(x_shape, dtype=np.int64))
    if int(np.prod(scale_shape, dtype=np.int64)) == 1 and len(scale_shape) <= 1:
        return 1, 1, n   # one scale (a [1] tensor included): per tensor
    if len(scale_shape) != 1:
        raise UnsupportedModelError(f"{node.describe()}: blocked quantization (scale of shape "
                                    f"{tuple(scale_shape)}) is not supported")
    if int(node.attrs.get("block_size", 0) or 0):
        raise UnsupportedModelError(f"{node.describe()}: blocked quantization is not supported")
    if len(x_shape) == 0:
        if scale_shape[0] != 1:
            raise UnsupportedModelError(f"{node.describe()}: scale {tuple(scale_shape)} for a scalar")
        return 1, 1, 1
    axis = _axis(node, len(x_shape), int(scale_shape[0]), x_shape)
    C = int(x_shape[axis])
    if scale_shape[0] == 1 and C != 1:
        return 1, 1, n
    if scale_shape[0] != C:
        raise UnsupportedModelError(f"{node.describe()}: {scale_shape[0]} scales for axis {axis} "
                                    f"of size {C}")
    outer = int(np.prod(x_shape[:axis], dtype=np.int64))
    inner = int(np.prod(x_shape[axis + 1:], dtype=np.int64))
    return outer, C, inner


def _check_scale(node, v):
    if v is None:
        raise UnsupportedModelError(f"{node.describe()}: the scale input is required")
    if _dt(v) != np.float32:
        raise UnsupportedModelError(f"{node.describe()}: scale type {_dt(v)} is not supported "
                                    "(float32 only)")


def _q_output_dtype(node, zp) -> np.dtype:
    if zp is not None:
        return _dt(zp)
    od = int(node.attrs.get("output_dtype", 0) or 0)
    if od in (0, 2):
        return np.dtype(np.uint8)
    if od == 3:
        return np.dtype(np.int8)
    raise UnsupportedModelError(f"{node.describe()}: output_dtype {od} is not supported")


def _per_channel(node, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A scale / zero point shaped to broadcast against ``x`` along the node's axis."""
    v = np.asarray(v)
    if v.size == 1:
        return v.reshape(())
    if v.ndim != 1:
        raise UnsupportedModelError(f"{node.describe()}: blocked quantization is not supported")
    axis = _axis(node, x.ndim, v.size, x.shape)
    shape = [1] * x.ndim
    shape[axis] = v.size
    return v.reshape(shape)


@register("QuantizeLinear")
class QuantizeLinear(OpDef):
    def fold(self, node, arrays):
        """Constant folding in NumPy (onnx.reference lacks some opset versions), with the
        kernels' arithmetic: float32 division, ties to even, saturation."""
        x, s = np.asarray(arrays[0], np.float32), np.asarray(arrays[1], np.float32)
        zp = arrays[2] if len(arrays) > 2 and arrays[2] is not None else None
        dt = np.dtype(zp.dtype) if zp is not None else _q_output_dtype(node, None)
        ii = np.iinfo(dt)
        z = _per_channel(node, x, zp).astype(np.float32) if zp is not None else np.float32(0)
        with np.errstate(all="ignore"):
            v = np.rint(x / _per_channel(node, x, s)) + z
        return [np.clip(np.nan_to_num(v, nan=ii.max), ii.min, ii.max).astype(dt)]

    def infer(self, node, ins):
        return [(ins[0].shape, _q_output_dtype(node, ins[2] if len(ins) > 2 else None))]

    def lower(self, node, b: PlanBuilder, ins, outs):
        x, scale = ins[0], ins[1]
        zp = ins[2] if len(ins) > 2 else None
        if _dt(x) != np.float32:
            raise UnsupportedModelError(f"{node.describe()}: input type {_dt(x)} is not supported "
                                        "(float32 only)")
        _check_scale(node, scale)
        qdt = _q_output_dtype(node, zp)
        code = _qtype_code(node, qdt)
        _emit_qdq(b, QuantOp.QUANTIZE, node, x, scale, zp, outs[0], qdt, code)


def _emit_qdq(b: PlanBuilder, op: int, node, x, scale, zp, out, out_dtype, code: int) -> None:
    """One QUANTIZE / DEQUANTIZE step: t=[x, scale, zero point (or scale again, unused), y]."""
    outer, C, inner = _channel_layout(node, x.shape, scale.shape)
    y = b.output(out.name, out.shape, out_dtype)
    _qdq_step(b, op, b.value(x.name), b.value(scale.name),
              b.value(zp.name) if zp is not None else None, y, code, outer, C, inner)


def _qdq_step(b: PlanBuilder, op: int, tx, ts, tz, y, code: int, outer: int, C: int,
              inner: int) -> None:
    """The step of _emit_qdq on tensors (tz None: zero point 0)."""
    b.emit(op, [tx, ts, tz if tz is not None else ts, y], sp.params(
        sp.QUANT, level=b.isa, qdtype=code, outer=outer, C=C, inner=inner,
        zp_slot=2 if tz is not None else -1))


@register("DequantizeLinear")
class DequantizeLinear(OpDef):
    def fold(self, node, arrays):
        x = np.asarray(arrays[0])
        s = _per_channel(node, x, np.asarray(arrays[1], np.float32))
        zp = arrays[2] if len(arrays) > 2 and arrays[2] is not None else None
        z = _per_channel(node, x, zp).astype(np.int64) if zp is not None else 0
        return [((x.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32)]

    def infer(self, node, ins):
        return [(ins[0].shape, np.dtype(np.float32))]

    def lower(self, node, b: PlanBuilder, ins, outs):
        x, scale = ins[0], ins[1]
        zp = ins[2] if len(ins) > 2 else None
        _check_scale(node, scale)
        dt = _dt(x)
        if dt == np.int32:
            code = int(DType.I32)
        else:
            code = _qtype_code(node, dt)
        if zp is not None and _dt(zp) != dt:
            raise UnsupportedModelError(f"{node.describe()}: zero point type {_dt(zp)} != {dt}")
        _emit_qdq(b, QuantOp.DEQUANTIZE, node, x, scale, zp, outs[0], np.float32, code)


@register("DynamicQuantizeLinear")
class DynamicQuantizeLinear(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, np.dtype(np.uint8)), ((), np.dtype(np.float32)),
                ((), np.dtype(np.uint8))]

    def lower(self, node, b: PlanBuilder, ins, outs):
        x = ins[0]
        if _dt(x) != np.float32:
            raise UnsupportedModelError(f"{node.describe()}: input type {_dt(x)} is not supported")
        n = int(np.prod(x.shape, dtype=np.int64))
        ys = [b.output(o.name, s, d) for o, (s, d) in zip(outs, self.infer(node, ins))]
        b.emit(QuantOp.DYNQUANT, [b.value(x.name)] + ys, sp.params(
            sp.QUANT, level=b.isa, qdtype=int(DType.U8), outer=1, C=1, inner=n, n=n))


# --------------------------------------------------------------------------------------
# INT8 GEMM lowerings
# --------------------------------------------------------------------------------------

def _zero_point(node, v, what: str, n: Optional[int] = None):
    """A constant zero point as an int64 array (scalar or per channel); None: absent."""
    if v is None:
        return np.zeros(1, np.int64)
    arr = _const(node, v, what).astype(np.int64).reshape(-1)
    if n is not None and arr.size not in (1, n):
        raise UnsupportedModelError(f"{node.describe()}: {what} has {arr.size} values, "
                                    f"expected 1 or {n}")
    return arr


def _activation_zp(node, b, v, a_dt):
    """(za constant, za tensor or None): a runtime scalar zero point is read by the kernel."""
    if v is None:
        return 0, None
    if _dt(v) != a_dt:
        raise UnsupportedModelError(f"{node.describe()}: activation zero point type {_dt(v)} "
                                    f"!= {a_dt}")
    if int(np.prod(v.shape, dtype=np.int64)) != 1:
        raise UnsupportedModelError(f"{node.describe()}: per-row activation zero points are "
                                    "not supported")
    if v.const is not None:
        return int(np.asarray(v.const).reshape(-1)[0]), None
    return 0, b.value(v.name)


def _colinfo(cz, zw, Np, *, ibias=None, mult=None, fbias=None) -> np.ndarray:
    """The 5 x Np per-column table of csrc/q8_gemm.h as int32 (floats by bit pattern)."""
    info = np.zeros((5, Np), np.int32)
    info[1] = cz
    info[4] = zw
    if ibias is not None:
        info[0, :len(ibias)] = ibias
    if mult is not None:
        m = np.zeros(Np, np.float32)
        m[:len(mult)] = mult
        info[2] = m.view(np.int32)
    if fbias is not None:
        f = np.zeros(Np, np.float32)
        f[:len(fbias)] = fbias
        info[3] = f.view(np.int32)
    return info


def _requant_mult(node, a_scale, w_scale, y_scale, n: int) -> np.ndarray:
    a = np.float32(np.asarray(a_scale, np.float32).reshape(-1)[0])
    y = np.float32(np.asarray(y_scale, np.float32).reshape(-1)[0])
    w = np.asarray(w_scale, np.float32).reshape(-1)
    if w.size not in (1, n):
        raise UnsupportedModelError(f"{node.describe()}: {w.size} weight scales for {n} channels")
    w = np.broadcast_to(w, (n,))
    return (a * w / y).astype(np.float32)   # float32 arithmetic, as onnxruntime


def _check_q8(node, *vals):
    for v in vals:
        if v is not None and _dt(v) not in Q8_TYPES:
            raise UnsupportedModelError(f"{node.describe()}: type {_dt(v)} is not supported "
                                        "(uint8 / int8)")


def _matmul_shape(node, a_shape, b_shape):
    if len(b_shape) != 2:
        raise UnsupportedModelError(f"{node.describe()}: only a 2-D constant B is supported")
    K, N = int(b_shape[0]), int(b_shape[1])
    if len(a_shape) == 1:
        if int(a_shape[0]) != K:
            raise UnsupportedModelError(f"{node.describe()}: shapes {a_shape} x {b_shape}")
        return 1, K, N, (N,)
    if int(a_shape[-1]) != K:
        raise UnsupportedModelError(f"{node.describe()}: shapes {tuple(a_shape)} x {tuple(b_shape)}")
    M = int(np.prod(a_shape[:-1], dtype=np.int64))
    return M, K, N, tuple(a_shape[:-1]) + (N,)


def _emit_qgemm(node, b: PlanBuilder, a, a_dt, w: np.ndarray, zw, za, za_t, out, M, K, N, *,
                out_mode, mult=None, ibias=None, zy=0, relu=False, fbias=None):
    if (_conv_cw_enabled() and za_t is None and w.dtype == np.int8
            and not np.any(np.asarray(zw) != 0)):
        # the channels-as-rows kernel (csrc/q8_conv.h), the rows as pixels: sparse INT8 too
        wt = np.ascontiguousarray(np.asarray(w).T)[:, :, None, None]
        _lower_qconv_cw(node, b, a, wt, za, out, out_mode, 1, None, None, None, None, (1, 1),
                        mult=None if mult is None else np.broadcast_to(mult, (N,)),
                        ibias=ibias, zy=zy, fbias=fbias, relu=relu, rows=M)
        return
    packed, cz, zwp = _kq().pack_weights(w, zw)
    Np = cz.shape[0]
    info = _colinfo(cz, zwp, Np, ibias=ibias, mult=mult, fbias=fbias)
    tensors = [b.value(a.name), b.const(packed, name=f"{node.name}_qpacked"),
               b.const(info, name=f"{node.name}_qcols"), out]
    za_slot = -1
    if za_t is not None:
        za_slot = len(tensors)
        tensors.append(za_t)
    b.emit(QuantOp.QGEMM, tensors, sp.params(
        sp.QGEMM, level=b.isa, M=M, N=N, K=K, a_signed=int(a_dt == np.int8), za=za,
        za_slot=za_slot, row_zp=int(bool(np.any(zwp != 0))), out_mode=out_mode, zy=zy,
        relu=int(relu), items=1, sa=0, sc=0, rsa=K, rsc=N, csc=1, ws_slot=-1))


@register("MatMulInteger")
class MatMulInteger(OpDef):
    def infer(self, node, ins):
        if ins[1].shape is None or len(ins[1].shape) < 1:
            raise UnsupportedModelError(f"{node.describe()}: B must have a known shape")
        if len(ins[1].shape) != 2:
            raise UnsupportedModelError(f"{node.describe()}: only a 2-D constant B is supported")
        return [(_matmul_shape(node, ins[0].shape, ins[1].shape)[3], np.dtype(np.int32))]

    def lower(self, node, b, ins, outs):
        a, w = ins[0], ins[1]
        a_zp = ins[2] if len(ins) > 2 else None
        w_zp = ins[3] if len(ins) > 3 else None
        _check_q8(node, a, w)
        M, K, N, _ = _matmul_shape(node, a.shape, w.shape)
        wc = _const(node, w, "B (the weights)")
        zw = _zero_point(node, w_zp, "b_zero_point", N)
        za, za_t = _activation_zp(node, b, a_zp, _dt(a))
        y = b.output(outs[0].name, outs[0].shape, np.int32)
        _emit_qgemm(node, b, a, _dt(a), wc, zw, za, za_t, y, M, K, N, out_mode=OUT_I32)


def _attr_const(node, b, key: str) -> Optional[np.ndarray]:
    """The constant an internal attribute names (set by the QDQ rewrite), or None."""
    name = node.attrs.get(key)
    if not name:
        return None
    v = b.graph_values.get(name)
    if v is None or v.const is None:
        raise UnsupportedModelError(f"{node.describe()}: '{name}' is not a constant")
    return np.asarray(v.const)


def _epilogue(node, b, x_s, w_s, y_s, y_zp, n: int):
    """(out_mode, mult, zy, fbias, relu) of a QLinear* node: requantize to y's type, or, for
    a QDQ rewrite without a QuantizeLinear after it (``_f32_out``), dequantize to fp32
    with the fp32 bias (``_fbias``)."""
    relu = bool(node.attrs.get("_relu", 0))
    if node.attrs.get("_f32_out"):
        one = np.float32(1.0)
        mult = _requant_mult(node, _const(node, x_s, "the input scale"),
                             _const(node, w_s, "the weight scale"), one, n)
        fb = _attr_const(node, b, "_fbias")
        fb = None if fb is None else fb.astype(np.float32).reshape(-1)
        return OUT_F32, mult, 0, fb, relu
    _check_q8(node, y_zp)
    mult = _requant_mult(node, _const(node, x_s, "the input scale"),
                         _const(node, w_s, "the weight scale"), _const(node, y_s, "y_scale"), n)
    zy = int(_const(node, y_zp, "y_zero_point").reshape(-1)[0])
    return (OUT_U8 if _dt(y_zp) == np.uint8 else OUT_S8), mult, zy, None, relu


def _out_dtype(node, y_zp) -> np.dtype:
    return np.dtype(np.float32) if node.attrs.get("_f32_out") else _dt(y_zp)


@register("QLinearMatMul")
class QLinearMatMul(OpDef):
    def infer(self, node, ins):
        if len(ins[3].shape) != 2:
            raise UnsupportedModelError(f"{node.describe()}: only a 2-D constant B is supported")
        return [(_matmul_shape(node, ins[0].shape, ins[3].shape)[3], _out_dtype(node, ins[7]))]

    def lower(self, node, b, ins, outs):
        a, a_s, a_zp, w, w_s, w_zp, y_s, y_zp = (list(ins) + [None] * 8)[:8]
        _check_q8(node, a, w)
        M, K, N, _ = _matmul_shape(node, a.shape, w.shape)
        wc = _const(node, w, "b (the weights)")
        zw = _zero_point(node, w_zp, "b_zero_point", N)
        za, za_t = _activation_zp(node, b, a_zp, _dt(a))
        mode, mult, zy, fbias, relu = _epilogue(node, b, a_s, w_s, y_s, y_zp, N)
        ibias = _attr_const(node, b, "_ibias")
        y = b.output(outs[0].name, outs[0].shape, _out_dtype(node, y_zp))
        _emit_qgemm(node, b, a, _dt(a), wc, zw, za, za_t, y, M, K, N, out_mode=mode, mult=mult,
                    zy=zy, relu=relu, fbias=fbias,
                    ibias=None if ibias is None else ibias.astype(np.int32).reshape(-1))


# --------------------------------------------------------------------------------------
# ConvInteger / QLinearConv
# --------------------------------------------------------------------------------------

def _qconv_geometry(node, x_shape, w_shape):
    from deepsparse_lite.ops.conv import conv_geometry
    if len(x_shape) not in (3, 4) or len(w_shape) != len(x_shape):
        raise UnsupportedModelError(f"{node.describe()}: only 1-D and 2-D convolutions are "
                                    "supported")
    G = int(node.attrs.get("group", 1))
    cin, cout = int(x_shape[1]), int(w_shape[0])
    if G < 1 or cin % G or cout % G or int(w_shape[1]) * G != cin:
        raise UnsupportedModelError(f"{node.describe()}: bad group {G} for {cin} -> {cout}")
    return conv_geometry(node, x_shape, w_shape) + (G,)


def _lower_qconv(node, b, x, w, x_zp, w_zp, out, out_mode, *, mult=None, ibias=None, zy=0,
                 fbias=None, relu=False):
    from deepsparse_lite.ops.gemm import conv_geometry_fields
    _check_q8(node, x, w)
    out_sp, pads, strides, dil, kernel, G = _qconv_geometry(node, x.shape, w.shape)
    wc = _const(node, w, "the weights")
    cout, cin = int(w.shape[0]), int(x.shape[1])
    cog, cig = cout // G, cin // G
    K = cig * int(np.prod(kernel))
    Kp = (K + 3) // 4 * 4
    zw = _zero_point(node, w_zp, "w_zero_point", cout)
    zw = np.broadcast_to(zw, (cout,))
    za, za_t = _activation_zp(node, b, x_zp, _dt(x))
    if za_t is not None:
        raise UnsupportedModelError(f"{node.describe()}: the input zero point must be a constant")
    if (_conv_cw_enabled() and wc.dtype == np.int8 and not np.any(zw != 0)
            and (G == 1 or (cig >= 4 and cog >= 8))):
        _lower_qconv_cw(node, b, x, wc, za, out, out_mode, G, out_sp, pads, strides, dil,
                        kernel, mult=mult, ibias=ibias, zy=zy, fbias=fbias, relu=relu)
        return
    packs, infos = [], []
    for g in range(G):
        wg = wc[g * cog:(g + 1) * cog].reshape(cog, K).T           # (K, cog)
        packed, cz, zwp = _kq().pack_weights(wg, zw[g * cog:(g + 1) * cog])
        packs.append(packed)
        infos.append(_colinfo(cz, zwp, cz.shape[0],
                              ibias=None if ibias is None else ibias[g * cog:(g + 1) * cog],
                              mult=None if mult is None else mult[g * cog:(g + 1) * cog],
                              fbias=None if fbias is None else fbias[g * cog:(g + 1) * cog]))
    row_zp = any(np.any(i[4] != 0) for i in infos)
    P = int(np.prod(out_sp))
    mb = _kq().conv_block_rows(P, Kp)
    ws_bytes = (mb * Kp + 63) // 64 * 64
    ws = b.workspace(ws_bytes * b.max_threads, name="qconv_workspace")
    geo = conv_geometry_fields(int(x.shape[0]), G, cin, x.shape[2:], cout, out_sp, kernel,
                               strides, pads, dil)
    geo.pop("groups")
    b.emit(QuantOp.QCONV, [b.value(x.name), b.const(np.stack(packs), name=f"{node.name}_qpacked"),
                           b.const(np.stack(infos), name=f"{node.name}_qcols"), out, ws],
           sp.params(sp.QGEMM, level=b.isa, M=P, N=cog, K=K, a_signed=int(_dt(x) == np.int8),
                     za=za, za_slot=-1, row_zp=int(row_zp), out_mode=out_mode, zy=zy,
                     relu=int(relu),
                     ws_slot=4, ws_bytes=ws_bytes, ws_threads=b.max_threads, groups=G,
                     Kp=Kp, mb=mb, **geo))


def _conv_cw_enabled() -> bool:
    """DSL_QCONVCW=0 keeps every INT8 conv on the pixel-rows QCONV (for comparisons)."""
    import os
    return os.environ.get("DSL_QCONVCW", "1") != "0"


#: the group-sparse INT8 tile wins below this share of nonzero k-groups (measured: see
#: docs/DESIGN_NOTES.md, "Sparse INT8"); against AMX's dense tiles only below the second
SPARSE_INT8_DENSITY = 0.5
SPARSE_INT8_DENSITY_AMX = 0.15


def _choose_sparse_int8(b, words) -> tuple:
    """(sparse?, listing record) for a QCONVCW weight given as [cog, kg] words per group."""
    total = sum(int(w.size) for w in words)
    nnz = sum(int(np.count_nonzero(w)) for w in words)
    density = nnz / total if total else 1.0
    wsp = sum(int(np.count_nonzero(w.view(np.int8) == 0)) for w in words) / max(4 * total, 1)
    info = {"sparsity": round(wsp, 4), "group_density": round(density, 4)}
    mode = getattr(b, "sparse_mode", "auto") or "auto"
    if mode in ("dense", "sparse"):
        info["why"] = f"forced {mode}"
        return mode == "sparse", info
    amx = int(b.isa) >= 2 and _kq().amx_available()
    limit = SPARSE_INT8_DENSITY_AMX if amx else SPARSE_INT8_DENSITY
    info["why"] = (f"k-groups of 4 nonzero {density:.2f} vs threshold {limit:g}"
                   + (" (AMX dense)" if amx else ""))
    return density <= limit, info


def _lower_qconv_cw(node, b, x, wc, za, out, out_mode, G, out_sp, pads, strides, dil, kernel, *,
                    mult=None, ibias=None, zy=0, fbias=None, relu=False, rows=None):
    """QCONVCW (csrc/q8_conv.h): output channels as rows, pixels as vectors, K in groups of
    4 input channels; int8 weights with a zero point of 0 (a nonzero one takes QCONV).
    ``rows`` = M: a MatMul [M, K] x [K, N] as a 1x1 conv of M pixels on token rows (wc is
    then (N, K, 1, 1))."""
    from deepsparse_lite.ops.gemm import conv_geometry_fields
    if out.nbytes == 0 or (rows is not None and int(rows) == 0):
        # no output pixels (a zero-size batch or token dim): nothing to compute, and
        # q8c_block_pixels divides by the block count, a SIGFPE at P = 0 (found by the
        # fuzzer: bert_tiny-pruned90_quant with input_ids of shape [0, 16])
        return
    cout = int(wc.shape[0])
    cin = int(wc.shape[1]) if rows is not None else int(x.shape[1])
    cog, cig = cout // G, cin // G
    taps = int(np.prod(kernel))
    cig4 = (cig + 3) // 4
    kg = cig4 * taps
    Np = (cog + 15) // 16 * 16
    packs, infos = [], []
    for g in range(G):
        packed, colsum = _kq().pack_conv_cw(wc[g * cog:(g + 1) * cog])
        packs.append(packed)
        cz = np.zeros(Np, np.int32)
        cz[:cog] = colsum
        infos.append(_colinfo(cz, np.zeros(Np, np.int32), Np,
                              ibias=None if ibias is None else ibias[g * cog:(g + 1) * cog],
                              mult=None if mult is None else mult[g * cog:(g + 1) * cog],
                              fbias=None if fbias is None else fbias[g * cog:(g + 1) * cog]))
    if rows is not None:
        images, out_sp = 1, (int(rows),)
        geo = conv_geometry_fields(1, 1, cin, (rows,), cout, out_sp, (1,), (1,), (0,), (1,))
    else:
        images = int(x.shape[0])
        geo = conv_geometry_fields(images, G, cin, x.shape[2:], cout, out_sp, kernel, strides,
                                   pads, dil)
    geo.pop("groups")
    H, W = geo["H"], geo["W"]
    P = int(np.prod(out_sp))
    direct = int(taps == 1 and geo["SH"] == 1 and geo["SW"] == 1 and geo["PH"] == 0
                 and geo["PW"] == 0 and geo["OH"] == H and geo["OW"] == W)
    mb = _kq().conv_cw_block_pixels(P, kg)
    HWp = (H * W + 15) // 16 * 16
    # the interleaved input, then 16 more rows: AMX reads k-groups in 16s (zero weights)
    xi_bytes = (images * G * cig4 + 16) * HWp * 4
    kg16 = (kg + 15) // 16 * 16
    ws_bytes = 0 if direct else ((mb + 15) // 16 * 16 * kg16 * 4 + 63) // 64 * 64
    ws = b.workspace(xi_bytes + ws_bytes * b.max_threads, name="qconvcw_workspace")
    group_words = [_kq().sparse_conv_cw(pk, kg)[:cog] for pk in packs]
    sparse, info = _choose_sparse_int8(b, group_words)
    if sparse:
        rptr, idx, wds = [], [], []
        base = 0
        for words in group_words:
            nz = words != 0
            rptr.append(base + np.concatenate([[0], np.cumsum(nz.sum(axis=1))]))
            ci, gi = np.nonzero(nz)
            idx.append(gi)
            wds.append(words[ci, gi])
            base += int(nz.sum())
        wt = np.concatenate(wds).astype(np.int32) if base else np.zeros(1, np.int32)
        rp = np.concatenate(rptr + idx).astype(np.int32)
        tensors = [b.value(x.name), b.const(wt, name=f"{node.name}_qsparse"),
                   b.const(np.stack(infos), name=f"{node.name}_qcols"), out, ws,
                   b.const(rp, name=f"{node.name}_qrows")]
    else:
        tensors = [b.value(x.name), b.const(np.stack(packs), name=f"{node.name}_qpacked"),
                   b.const(np.stack(infos), name=f"{node.name}_qcols"), out, ws]
    b.emit(QuantOp.QCONVCW, tensors,
           sp.params(sp.QGEMM, level=b.isa, M=P, N=cog, K=cig * taps, a_signed=int(_dt(x) == np.int8),
                     za=za, za_slot=-1, row_zp=0, out_mode=out_mode, zy=zy, relu=int(relu),
                     ws_slot=4, ws_bytes=ws_bytes, ws_threads=b.max_threads, groups=G,
                     Kp=kg * 4, mb=mb, xi_bytes=xi_bytes, direct=direct,
                     cob=min(64, (cog + 7) // 8 * 8), sparse=int(sparse),
                     tokens=int(rows is not None), **geo))
    from deepsparse_lite.ops.sparse import note
    note(b, int8_sparse=bool(sparse), **info)


def _conv_out_shape(node, x_shape, w_shape):
    out_sp = _qconv_geometry(node, x_shape, w_shape)[0]
    return (int(x_shape[0]), int(w_shape[0])) + tuple(int(v) for v in out_sp)


@register("ConvInteger")
class ConvInteger(OpDef):
    def infer(self, node, ins):
        return [(_conv_out_shape(node, ins[0].shape, ins[1].shape), np.dtype(np.int32))]

    def lower(self, node, b, ins, outs):
        x, w = ins[0], ins[1]
        x_zp = ins[2] if len(ins) > 2 else None
        w_zp = ins[3] if len(ins) > 3 else None
        y = b.output(outs[0].name, outs[0].shape, np.int32)
        _lower_qconv(node, b, x, w, x_zp, w_zp, y, OUT_I32)


@register("QLinearConv")
class QLinearConv(OpDef):
    def infer(self, node, ins):
        return [(_conv_out_shape(node, ins[0].shape, ins[3].shape), _out_dtype(node, ins[7]))]

    def lower(self, node, b, ins, outs):
        x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp = (list(ins) + [None] * 8)[:8]
        bias = ins[8] if len(ins) > 8 else None
        cout = int(w.shape[0])
        mode, mult, zy, fbias, relu = _epilogue(node, b, x_s, w_s, y_s, y_zp, cout)
        ibias = None
        if bias is not None:
            ibias = _const(node, bias, "the bias").astype(np.int64).reshape(-1)
            if ibias.size != cout:
                raise UnsupportedModelError(f"{node.describe()}: bias of {ibias.size} for {cout}")
            ibias = ibias.astype(np.int32)
        y = b.output(outs[0].name, outs[0].shape, _out_dtype(node, y_zp))
        _lower_qconv(node, b, x, w, x_zp, w_zp, y, mode, mult=mult, ibias=ibias, zy=zy,
                     fbias=fbias, relu=relu)


@register("com.microsoft::QLinearAdd")
class QLinearAdd(OpDef):
    """onnxruntime's QLinearAdd (also what passes.fuse_qadd makes of DQ -> Add [-> Relu] ->
    Q): same-shape 8-bit inputs of one type, constant per-tensor scales and zero points."""
    def infer(self, node, ins):
        return [(ins[0].shape, _dt(ins[0]))]

    def lower(self, node, b, ins, outs):
        a, a_s, a_zp, bb, b_s, b_zp, y_s, y_zp = (list(ins) + [None] * 8)[:8]
        _check_q8(node, a, bb)
        if bb is None or tuple(a.shape) != tuple(bb.shape):
            raise UnsupportedModelError(f"{node.describe()}: only inputs of one shape are "
                                        "supported (no broadcasting)")
        dt = _dt(a)
        for v in (bb, a_zp, b_zp, y_zp):
            if v is not None and _dt(v) != dt:
                raise UnsupportedModelError(f"{node.describe()}: mixed 8-bit types")
        prm = []
        for sv, zv, what in ((a_s, a_zp, "A"), (b_s, b_zp, "B"), (y_s, y_zp, "C")):
            sc = _const(node, sv, f"{what}_scale").astype(np.float32).reshape(-1)
            zc = _zero_point(node, zv, f"{what}_zero_point")
            if sc.size != 1 or zc.size != 1:
                raise UnsupportedModelError(f"{node.describe()}: per-tensor scales only")
            prm += [float(sc[0]), float(zc[0])]
        n = int(np.prod(a.shape, dtype=np.int64))
        y = b.output(outs[0].name, outs[0].shape, dt)
        b.emit(QuantOp.QADD, [b.value(a.name), b.value(bb.name),
                              b.const(np.array(prm, np.float32), name=f"{node.name}_qadd"), y],
               sp.params(sp.QUANT, level=b.isa, qdtype=_qtype_code(node, dt), outer=1, C=1,
                         inner=n, n=n, zp_slot=int(bool(node.attrs.get("_relu", 0)))))


@register("com.microsoft::QLinearGlobalAveragePool")
class QLinearGlobalAveragePool(OpDef):
    """onnxruntime's QLinearGlobalAveragePool (NCHW): DequantizeLinear, the fp32 mean over
    the spatial dims, QuantizeLinear: three existing steps (within one quantization step of
    onnxruntime's integer-sum kernel)."""
    def infer(self, node, ins):
        x = ins[0]
        if x.shape is None or len(x.shape) < 3:
            raise UnsupportedModelError(f"{node.describe()}: input must be [N, C, spatial...]")
        if int(node.attrs.get("channels_last", 0) or 0):
            raise UnsupportedModelError(f"{node.describe()}: channels_last=1 is not supported")
        return [(tuple(x.shape[:2]) + (1,) * (len(x.shape) - 2), _dt(x))]

    def lower(self, node, b, ins, outs):
        from deepsparse_lite.ops.reduce import RK, emit_reduce
        x, xs, xz, ys, yz = (list(ins) + [None] * 5)[:5]
        _check_q8(node, x, yz)
        for v, what in ((xs, "x_scale"), (ys, "y_scale")):
            _check_scale(node, v)
            if int(np.prod(v.shape, dtype=np.int64)) != 1:
                raise UnsupportedModelError(f"{node.describe()}: {what} must be per tensor")
        code = _qtype_code(node, _dt(x))
        n = int(np.prod(x.shape, dtype=np.int64))
        f = b.temp(tuple(x.shape), np.float32, name=f"{node.name}_f32")
        _qdq_step(b, QuantOp.DEQUANTIZE, b.value(x.name), b.value(xs.name),
                  b.value(xz.name) if xz is not None else None, f, code, 1, 1, n)
        m_shape = tuple(x.shape[:2]) + (1,) * (len(x.shape) - 2)
        m = b.temp(m_shape, np.float32, name=f"{node.name}_mean")
        emit_reduce(b, RK.MEAN, f, m, list(range(2, len(x.shape))), node.describe())
        ydt = _dt(yz) if yz is not None else _dt(x)
        y = b.output(outs[0].name, outs[0].shape, ydt)
        _qdq_step(b, QuantOp.QUANTIZE, m, b.value(ys.name),
                  b.value(yz.name) if yz is not None else None, y, _qtype_code(node, ydt), 1, 1,
                  int(np.prod(m_shape)))


@register("com.microsoft::QGemm")
class QGemm(OpDef):
    """onnxruntime's QGemm: Y = (A - za)(B - zb) a_scale b_scale + C (int32 bias in units of
    a_scale b_scale), requantized when y_scale is given, else fp32; A 2-D, B constant,
    alpha 1, transA 0."""
    def _shape(self, node, ins):
        a, w = ins[0], ins[3]
        if len(a.shape) != 2 or w is None or len(w.shape) != 2:
            raise UnsupportedModelError(f"{node.describe()}: 2-D A and B only")
        if int(node.attrs.get("transA", 0) or 0) or float(node.attrs.get("alpha", 1.0)) != 1.0:
            raise UnsupportedModelError(f"{node.describe()}: transA / alpha are not supported")
        tb = int(node.attrs.get("transB", 0) or 0)
        K, N = (int(w.shape[1]), int(w.shape[0])) if tb else (int(w.shape[0]), int(w.shape[1]))
        if int(a.shape[1]) != K:
            raise UnsupportedModelError(f"{node.describe()}: shapes {a.shape} x {w.shape}")
        return int(a.shape[0]), K, N, tb

    def infer(self, node, ins):
        M, K, N, _ = self._shape(node, ins)
        ys = ins[7] if len(ins) > 7 else None
        yz = ins[8] if len(ins) > 8 else None
        return [((M, N), _dt(yz) if ys is not None and yz is not None else
                 (np.dtype(np.uint8) if ys is not None else np.dtype(np.float32)))]

    def lower(self, node, b, ins, outs):
        a, a_s, a_zp, w, w_s, w_zp, c, y_s, y_zp = (list(ins) + [None] * 9)[:9]
        _check_q8(node, a, w)
        M, K, N, tb = self._shape(node, ins)
        wc = _const(node, w, "B (the weights)")
        if tb:
            wc = np.ascontiguousarray(wc.T)
        zw = _zero_point(node, w_zp, "b_zero_point", N)
        za, za_t = _activation_zp(node, b, a_zp, _dt(a))
        ibias = None
        if c is not None:
            ibias = _const(node, c, "C (the bias)").astype(np.int64).reshape(-1)
            ibias = np.broadcast_to(ibias, (N,)).astype(np.int32)
        if y_s is not None:
            mult = _requant_mult(node, _const(node, a_s, "a_scale"), _const(node, w_s, "b_scale"),
                                 _const(node, y_s, "y_scale"), N)
            ydt = _dt(y_zp) if y_zp is not None else np.dtype(np.uint8)
            zy = int(_const(node, y_zp, "y_zero_point").reshape(-1)[0]) if y_zp is not None else 0
            mode = OUT_U8 if ydt == np.uint8 else OUT_S8
        else:
            mult = _requant_mult(node, _const(node, a_s, "a_scale"), _const(node, w_s, "b_scale"),
                                 np.float32(1.0), N)
            ydt, zy, mode = np.dtype(np.float32), 0, OUT_F32
        y = b.output(outs[0].name, outs[0].shape, ydt)
        _emit_qgemm(node, b, a, _dt(a), wc, zw, za, za_t, y, M, K, N, out_mode=mode, mult=mult,
                    zy=zy, ibias=ibias)


_EWC_TYPES = {"float32": 0, "uint8": 1, "int8": 2}


@register("ai.deepsparse_lite::EltwiseChain")
class EltwiseChain(OpDef):
    """A chain of element-wise ops fused by compiler/passes.py fuse_eltwise_chains: one
    program (csrc/q8_ewchain.h) over the main input and up to 5 float32 operands that are
    scalars, last-axis vectors or of the main input's shape. The program's operand
    patterns are recomputed here from the shapes; the kernel checks the instructions."""
    def infer(self, node, ins):
        dt = node.attrs.get("_out_dtype")
        if dt not in _EWC_TYPES or not ins or ins[0] is None or ins[0].shape is None:
            raise UnsupportedModelError(f"{node.describe()}: not a chain this compiler made")
        return [(tuple(ins[0].shape), np.dtype(dt))]

    def lower(self, node, b, ins, outs):
        from deepsparse_lite.compiler.passes import _ew_pattern, _EWC_MAX_EXT

        words = node.attrs.get("_program")
        in_dt, out_dt = node.attrs.get("_in_dtype"), node.attrs.get("_out_dtype")
        if (not isinstance(words, np.ndarray) or words.dtype != np.int32 or words.ndim != 1
                or in_dt not in _EWC_TYPES or out_dt not in _EWC_TYPES):
            raise UnsupportedModelError(f"{node.describe()}: not a chain this compiler made")
        x = ins[0]
        shape = tuple(x.shape)
        if np.dtype(x.dtype) != np.dtype(in_dt) or len(ins) - 1 > _EWC_MAX_EXT:
            raise UnsupportedModelError(f"{node.describe()}: operand types do not fit the program")
        words = words.copy()
        if words.size < 2 + 2 * _EWC_MAX_EXT or int(words[1]) != len(ins) - 1:
            raise UnsupportedModelError(f"{node.describe()}: malformed program")
        for k, v in enumerate(ins[1:]):
            pat = _ew_pattern(v, shape)
            if pat is None:
                raise UnsupportedModelError(f"{node.describe()}: operand {k + 1} does not broadcast "
                                            f"as a scalar, last-axis vector or same-shape tensor")
            words[2 + 2 * k] = pat
            words[3 + 2 * k] = int(shape[-1]) if shape else 1
        n = int(np.prod(shape, dtype=np.int64))
        y = b.output(outs[0].name, outs[0].shape, np.dtype(out_dt))
        tensors = [b.value(node.inputs[0]), b.const(words, name=f"{node.name}_prog"), y]
        tensors += [b.value(i) for i in node.inputs[1:]]
        b.emit(QuantOp.EWCHAIN, tensors,
               sp.params(sp.QUANT, level=b.isa, qdtype=_EWC_TYPES[in_dt], outer=_EWC_TYPES[out_dt],
                         C=int(words.size), inner=n, n=n, zp_slot=-1))
