"""Elementwise ops: unary math, broadcasting binary arithmetic (incl. Mod, PRelu) /
comparison / logic / bitwise ops and shifts, Where, Cast, and the variadic Sum / Max / Min /
Mean.

Element types: float32, float64, every 8..64-bit integer, bool, and float16 / bfloat16,
which the kernels widen to float32, compute and round back per element (exactly numpy's
float16 and ml_dtypes' bfloat16 arithmetic for single ops). Cast also converts the float8
types (plan.DType). A combination the kernels lack is an UnsupportedModelError naming the
node and the element type.

Everything is decided here at compile time: the kernel variant (by dtype), the function
code and its float parameters, and for broadcasting ops the merged iteration space (size-1
dims dropped, dims contiguous in every operand fused) with each operand's element strides
(0 where it is broadcast). The kernels (kernels/eltwise.pyx, csrc/eltwise*.h) only walk it.

Other families may reuse :func:`emit_unary`, :func:`emit_binary`, :func:`emit_cast` and
:func:`emit_where` for the elementwise pieces of their own lowerings.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from deepsparse_lite.ops.base import (MAX_NDIM, Act, OpDef, UnsupportedModelError,
                                      broadcast_shape, contiguous_strides, emit_contiguous_copy,
                                      merge_dims, op_id, register)
from deepsparse_lite.plan import NP_TO_DTYPE, DType, Family, PlanBuilder, Tensor, dtype_code
from deepsparse_lite import step_params as sp


class EltOp:
    """Sub-op numbers of the eltwise family (kernels/eltwise.pyx)."""
    UNARY_F32 = op_id(Family.ELTWISE, 1)
    UNARY_F64 = op_id(Family.ELTWISE, 2)
    UNARY_INT = op_id(Family.ELTWISE, 3)
    NOT = op_id(Family.ELTWISE, 4)
    BINARY = op_id(Family.ELTWISE, 5)
    WHERE = op_id(Family.ELTWISE, 6)
    CAST = op_id(Family.ELTWISE, 7)


class Fn(Act):
    """Unary function codes: the activation codes, then csrc/dsl_vmath.h's DSL_VF_*, then
    the integer-only ones (csrc/eltwise_cast.h)."""
    EXP = 13
    LOG = 14
    SQRT = 15
    NEG = 16
    ABS = 17
    RECIP = 18
    ERF = 19
    AFFINE = 20     # a * x + b
    FLOOR = 21
    CEIL = 22
    ROUND = 23
    SIGN = 24
    SOFTSIGN = 25
    POW = 26        # x ** a
    BITNOT = 40     # ~x (integers)


class Bin:
    """Binary function codes (csrc/eltwise_binary.h)."""
    ADD, SUB, MUL, DIV, POW, MAX, MIN, PRELU, MOD, FMOD = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    EQ, LT, GT, LE, GE = 20, 21, 22, 23, 24
    AND, OR, XOR = 30, 31, 32
    BITAND, BITOR, BITXOR, SHL, SHR = 40, 41, 42, 43, 44


#: integer unary functions the UNARY_INT kernel has
INT_UNARY = {Fn.NEG, Fn.ABS, Fn.RELU, Fn.SIGN}
_UINTS = {np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64)}
_INTS = _UINTS | {np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64)}
#: float16 / bfloat16: stored narrow, computed in float32 (kernels widen and round back)
_NARROW = {dt for dt, code in NP_TO_DTYPE.items() if code in (DType.F16, DType.BF16)}
_FLOAT = {np.dtype(np.float32), np.dtype(np.float64)} | _NARROW
_NUMERIC = _FLOAT | _INTS
_BOOL = np.dtype(np.bool_)

_ARITH_FNS = {Bin.ADD, Bin.SUB, Bin.MUL, Bin.DIV, Bin.POW, Bin.MAX, Bin.MIN, Bin.PRELU, Bin.MOD,
              Bin.FMOD, Bin.EQ, Bin.LT, Bin.GT, Bin.LE, Bin.GE}


def binary_supported(fn: int, dt) -> bool:
    """Whether the BINARY kernel has function ``fn`` for operands of dtype ``dt``."""
    dt = np.dtype(dt)
    if dt == _BOOL:
        return fn in (Bin.AND, Bin.OR, Bin.XOR, Bin.EQ)
    if dt in _FLOAT:
        return fn in _ARITH_FNS
    if dt in _INTS:
        return fn in _ARITH_FNS or fn in (Bin.BITAND, Bin.BITOR, Bin.BITXOR) or \
            (dt in _UINTS and fn in (Bin.SHL, Bin.SHR))
    return False


# --------------------------------------------------------------------------------------
# Emission helpers
# --------------------------------------------------------------------------------------

def broadcast_layout(out_shape: Sequence[int], in_shapes: Sequence[Sequence[int]]):
    """Merged iteration space of a broadcasting op: (shape, [element strides per input])."""
    out_shape = tuple(int(d) for d in out_shape)
    r = len(out_shape)
    sets = []
    for s in in_shapes:
        s = (1,) * (r - len(s)) + tuple(int(d) for d in s)
        cs = contiguous_strides(s, 1)
        sets.append(tuple(0 if s[d] == 1 else cs[d] for d in range(r)))
    shp, merged = merge_dims(out_shape, *sets, contiguous_strides(out_shape, 1))
    if len(shp) > MAX_NDIM:
        raise UnsupportedModelError(
            f"broadcasting {list(in_shapes)} -> {out_shape} needs {len(shp)} dims after merging "
            f"(max {MAX_NDIM})")
    return shp, merged[:-1]


def _walk_params(out_size: int, shp, strides, **fields) -> np.ndarray:
    """A dsl_eltwise_params record for a broadcasting walk over ``shp`` (merged dims) with
    one element-stride set per input."""
    flat = [0] * (3 * MAX_NDIM)
    for k, st in enumerate(strides):
        flat[MAX_NDIM * k:MAX_NDIM * k + len(st)] = [int(v) for v in st]
    return sp.params(sp.ELTWISE, ndim=len(shp), n=int(out_size), shape=shp, strides=flat, **fields)


def _where(b: PlanBuilder) -> str:
    return f"node '{b.current_node}'" if b.current_node else "a step"


def emit_unary(b: PlanBuilder, fn: int, x: Tensor, y: Tensor, a: float = 0.0, c: float = 0.0) -> None:
    """y = fn(x) elementwise (same shape and dtype). float16 / bfloat16 are computed in
    float32 by the UNARY_F32 kernel and rounded back."""
    n = x.size
    if n == 0:
        return
    dt = np.dtype(x.dtype)
    if (dt == np.float32 or dt in _NARROW) and fn != Fn.BITNOT:
        b.emit(EltOp.UNARY_F32, [x, y], sp.params(sp.ELTWISE, fn=int(fn), dtype=dtype_code(dt),
                                                  level=b.isa, n=n, a=a, b=c))
    elif dt == np.float64 and fn != Fn.BITNOT:
        b.emit(EltOp.UNARY_F64, [x, y], sp.params(sp.ELTWISE, fn=int(fn), dtype=int(DType.F64),
                                                  n=n, a=a, b=c))
    elif dt in _INTS and (fn in INT_UNARY or fn == Fn.BITNOT):
        b.emit(EltOp.UNARY_INT, [x, y], sp.params(sp.ELTWISE, fn=int(fn), dtype=dtype_code(dt), n=n))
    else:
        raise UnsupportedModelError(f"{_where(b)}: unary function {fn} is not implemented for "
                                    f"element type {dt}")


def emit_binary(b: PlanBuilder, fn: int, x0: Tensor, x1: Tensor, y: Tensor) -> None:
    """y = fn(x0, x1) with numpy broadcasting; x0 and x1 share a dtype."""
    dt = np.dtype(x0.dtype)
    if not binary_supported(fn, dt) or np.dtype(x1.dtype) != dt:
        raise UnsupportedModelError(f"{_where(b)}: binary function {fn} is not implemented for "
                                    f"element types {dt} and {np.dtype(x1.dtype)}")
    if y.size == 0:
        return
    shp, strides = broadcast_layout(y.shape, [x0.shape, x1.shape])
    b.emit(EltOp.BINARY, [x0, x1, y], _walk_params(y.size, shp, strides, fn=int(fn),
                                                   dtype=dtype_code(x0.dtype), level=b.isa))


def emit_where(b: PlanBuilder, cond: Tensor, x: Tensor, z: Tensor, y: Tensor) -> None:
    if y.size == 0:
        return
    shp, strides = broadcast_layout(y.shape, [cond.shape, x.shape, z.shape])
    b.emit(EltOp.WHERE, [cond, x, z, y], _walk_params(y.size, shp, strides,
                                                      esz=np.dtype(x.dtype).itemsize))


def emit_cast(b: PlanBuilder, x: Tensor, y: Tensor, saturate: bool = True) -> None:
    """y = x converted to y's dtype (ONNX Cast; ``saturate``: its float8 saturation)."""
    if x.size == 0:
        return
    b.emit(EltOp.CAST, [x, y], sp.params(sp.ELTWISE, dtype=dtype_code(x.dtype),
                                         out_dtype=dtype_code(y.dtype), saturate=int(bool(saturate)),
                                         level=b.isa, n=x.size))


def _as_dtype(b: PlanBuilder, node, v, dtype) -> Tensor:
    """The tensor of Value ``v`` as ``dtype``: itself, a converted constant (the original is
    then never materialised), or the output of a cast step."""
    dtype = np.dtype(dtype)
    if np.dtype(v.dtype) == dtype:
        return b.value(v.name)
    if v.is_const:
        return b.const(np.asarray(v.const).astype(dtype), name=f"{v.name}_as_{dtype.name}")
    t = b.value(v.name)
    out = b.temp(t.shape, dtype, name=f"{node.name}_cast")
    emit_cast(b, t, out)
    return out


def _attr_float(node, key, default):
    v = node.attrs.get(key, default)
    return float(v)


def _np_dtype_of(onnx_type: int) -> np.dtype:
    from onnx import helper
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(int(onnx_type)))
    except Exception:
        raise UnsupportedModelError(f"Cast to ONNX type {onnx_type} is not supported") from None


# --------------------------------------------------------------------------------------
# Unary ops
# --------------------------------------------------------------------------------------

_FLT_MAX = 3.4028234663852886e38


def _unary_fn(node, ins):
    """(fn, a, b) of a unary op (Clip's bounds must be constants here)."""
    t = node.op_type
    simple = {"Relu": Fn.RELU, "Sigmoid": Fn.SIGMOID, "Tanh": Fn.TANH, "HardSwish": Fn.HARD_SWISH,
              "Softplus": Fn.SOFTPLUS, "Erf": Fn.ERF, "Exp": Fn.EXP, "Log": Fn.LOG,
              "Sqrt": Fn.SQRT, "Neg": Fn.NEG, "Abs": Fn.ABS, "Reciprocal": Fn.RECIP,
              "Floor": Fn.FLOOR, "Ceil": Fn.CEIL, "Round": Fn.ROUND, "Sign": Fn.SIGN,
              "Softsign": Fn.SOFTSIGN}
    if t in simple:
        return simple[t], 0.0, 0.0
    if t == "LeakyRelu":
        return Fn.LEAKY_RELU, _attr_float(node, "alpha", 0.01), 0.0
    if t == "HardSigmoid":
        return Fn.HARD_SIGMOID, _attr_float(node, "alpha", 0.2), _attr_float(node, "beta", 0.5)
    if t == "Elu":
        return Fn.ELU, _attr_float(node, "alpha", 1.0), 0.0
    if t == "Selu":
        return (Fn.SELU, _attr_float(node, "alpha", 1.67326319217681884765625),
                _attr_float(node, "gamma", 1.05070102214813232421875))
    if t == "Gelu":
        approx = node.attrs.get("approximate", "none")
        if approx not in ("none", "tanh"):
            raise UnsupportedModelError(f"{node.describe()}: approximate='{approx}'")
        return (Fn.GELU_TANH if approx == "tanh" else Fn.GELU_ERF), 0.0, 0.0
    if t == "Clip":
        lo, hi = _clip_bounds(node, ins)
        return Fn.CLIP, lo, hi
    raise UnsupportedModelError(f"{node.describe()}: not a unary op")


def _clip_bounds(node, ins):
    if node.opset < 11:
        return _attr_float(node, "min", -_FLT_MAX), _attr_float(node, "max", _FLT_MAX)
    out = []
    for k, default in ((1, -np.inf), (2, np.inf)):
        v = ins[k] if len(ins) > k else None
        out.append(default if v is None else float(np.asarray(v.const).reshape(-1)[0]))
    return out[0], out[1]


@register("Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
          "Softplus", "Erf", "Gelu", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Floor",
          "Ceil", "Round", "Sign", "Softsign")
class Unary(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        fn, a, c = _unary_fn(node, ins)
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], outs[0].shape, outs[0].dtype)
        dt = np.dtype(ins[0].dtype)
        if not (dt in _FLOAT or (dt in _INTS and fn in INT_UNARY)):
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        emit_unary(b, fn, x, y, a, c)


@register("Clip")
class Clip(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], outs[0].shape, outs[0].dtype)
        dt = np.dtype(ins[0].dtype)
        bounds = [ins[k] if len(ins) > k else None for k in (1, 2)] if node.opset >= 11 else [None, None]
        const_bounds = all(v is None or v.is_const for v in bounds)
        if dt in _FLOAT and const_bounds:
            lo, hi = _clip_bounds(node, ins)
            emit_unary(b, Fn.CLIP, x, y, lo, hi)
            return
        if dt not in _NUMERIC:
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        # integer types or runtime bounds: Max(x, min) then Min(., max), numpy's clip order
        if node.opset < 11:
            lo, hi = _clip_bounds(node, ins)
            bounds_t = [b.const(np.array(lo, dt)), b.const(np.array(hi, dt))]
        else:
            bounds_t = [None if v is None else _as_dtype(b, node, v, dt)
                        for v in bounds]
        steps = [(Bin.MAX, bounds_t[0]), (Bin.MIN, bounds_t[1])]
        steps = [(f, t) for f, t in steps if t is not None]
        if not steps:
            emit_contiguous_copy(b, x, y)
            return
        cur = x
        for k, (f, t) in enumerate(steps):
            dst = y if k == len(steps) - 1 else b.temp(y.shape, dt, name=f"{node.name}_clip")
            emit_binary(b, f, cur, t, dst)
            cur = dst


@register("Not")
class Not(OpDef):
    def infer(self, node, ins):
        if np.dtype(ins[0].dtype) != _BOOL:
            raise UnsupportedModelError(f"{node.describe()}: input must be bool")
        return [(ins[0].shape, _BOOL)]

    def lower(self, node, b, ins, outs):
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], outs[0].shape, _BOOL)
        if x.size:
            b.emit(EltOp.NOT, [x, y], sp.params(sp.ELTWISE, dtype=int(DType.BOOL), n=x.size))


# --------------------------------------------------------------------------------------
# Binary ops
# --------------------------------------------------------------------------------------

_ARITH = {"Add": Bin.ADD, "Sub": Bin.SUB, "Mul": Bin.MUL, "Div": Bin.DIV, "Pow": Bin.POW}
_CMP = {"Equal": Bin.EQ, "Less": Bin.LT, "Greater": Bin.GT, "LessOrEqual": Bin.LE,
        "GreaterOrEqual": Bin.GE}
_LOGIC = {"And": Bin.AND, "Or": Bin.OR, "Xor": Bin.XOR}


def _operand_dtype(node, a, c) -> np.dtype:
    """The dtype two operands are computed in. ONNX requires equal types; a constant of
    another type is converted to the runtime operand's type at compile time."""
    da, dc = np.dtype(a.dtype), np.dtype(c.dtype)
    if da == dc or c.is_const:
        return da
    if a.is_const:
        return dc
    raise UnsupportedModelError(f"{node.describe()}: operand types {da} and {dc} differ")


def _common_operands(node, b, ins, dtype=None):
    """Tensors of the two operands, both in ``dtype`` (default: :func:`_operand_dtype`)."""
    a, c = ins[0], ins[1]
    if dtype is None:
        dtype = _operand_dtype(node, a, c)
    ta = _as_dtype(b, node, a, dtype)
    tc = _as_dtype(b, node, c, dtype)
    return ta, tc, np.dtype(dtype)


@register("Add", "Sub", "Mul", "Div", "Pow")
class Arith(OpDef):
    def infer(self, node, ins):
        dt = ins[0].dtype if node.op_type == "Pow" else _operand_dtype(node, ins[0], ins[1])
        return [(broadcast_shape(ins[0].shape, ins[1].shape), dt)]

    def lower(self, node, b, ins, outs):
        fn = _ARITH[node.op_type]
        out_dt = np.dtype(outs[0].dtype)
        y = b.output(node.outputs[0], outs[0].shape, out_dt)
        if fn == Bin.POW:
            self._lower_pow(node, b, ins, y)
            return
        x0, x1, dt = _common_operands(node, b, ins, out_dt)
        if dt not in _NUMERIC:
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        emit_binary(b, fn, x0, x1, y)

    def _lower_pow(self, node, b, ins, y):
        base, ex = ins[0], ins[1]
        bt = np.dtype(base.dtype)
        xb = b.value(base.name)
        # float32 base, one constant exponent: a unary step with the x^2 / sqrt / 1/x fast paths
        if (bt == np.float32 and ex.is_const and np.asarray(ex.const).size == 1
                and tuple(y.shape) == tuple(base.shape)):
            e = float(np.asarray(ex.const).reshape(-1)[0])
            emit_unary(b, Fn.POW, xb, y, e, 0.0)
            return
        # the reference computes np.power(base, exponent).astype(base.dtype): numpy's type
        # promotion picks the type the power is computed in (float32 ** int64 is float64)
        try:
            ct = np.result_type(bt, np.dtype(ex.dtype))
        except TypeError:
            ct = None
        if bt not in _NUMERIC or ct not in _NUMERIC:
            raise UnsupportedModelError(f"{node.describe()}: element types {bt} ** "
                                        f"{np.dtype(ex.dtype)} are not supported")
        if ct == bt:
            emit_binary(b, Bin.POW, xb, _as_dtype(b, node, ex, bt), y)
            return
        xbc = _as_dtype(b, node, base, ct)
        xec = _as_dtype(b, node, ex, ct)
        tmp = b.temp(y.shape, ct, name=f"{node.name}_pow")
        emit_binary(b, Bin.POW, xbc, xec, tmp)
        emit_cast(b, tmp, y)


@register("Mod")
class Mod(OpDef):
    def infer(self, node, ins):
        return [(broadcast_shape(ins[0].shape, ins[1].shape), _operand_dtype(node, ins[0], ins[1]))]

    def lower(self, node, b, ins, outs):
        dt = np.dtype(outs[0].dtype)
        x0, x1, dt = _common_operands(node, b, ins, dt)
        if dt not in _NUMERIC:
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        fn = Bin.FMOD if int(node.attrs.get("fmod", 0)) else Bin.MOD
        y = b.output(node.outputs[0], outs[0].shape, dt)
        emit_binary(b, fn, x0, x1, y)


@register("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual")
class Compare(OpDef):
    def infer(self, node, ins):
        return [(broadcast_shape(ins[0].shape, ins[1].shape), _BOOL)]

    def lower(self, node, b, ins, outs):
        fn = _CMP[node.op_type]
        x0, x1, dt = _common_operands(node, b, ins)
        ok = dt in _NUMERIC or (dt == _BOOL and fn == Bin.EQ)
        if not ok:
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        y = b.output(node.outputs[0], outs[0].shape, _BOOL)
        emit_binary(b, fn, x0, x1, y)


@register("And", "Or", "Xor")
class Logic(OpDef):
    def infer(self, node, ins):
        return [(broadcast_shape(ins[0].shape, ins[1].shape), _BOOL)]

    def lower(self, node, b, ins, outs):
        x0, x1, dt = _common_operands(node, b, ins, _BOOL)
        y = b.output(node.outputs[0], outs[0].shape, _BOOL)
        emit_binary(b, _LOGIC[node.op_type], x0, x1, y)


def _prelu_slope_shape(x_shape, slope_shape):
    """Shape the slope broadcasts as: numpy rules, or (like the ONNX reference) a 1-D slope
    of size d placed on the one axis of x whose size is d (e.g. [C] against [N, C, H, W])."""
    try:
        if tuple(np.broadcast_shapes(tuple(x_shape), tuple(slope_shape))) == tuple(x_shape):
            return tuple(slope_shape)
    except ValueError:
        pass
    if len(slope_shape) == 1 and list(x_shape).count(slope_shape[0]) == 1:
        return tuple(d if d == slope_shape[0] else 1 for d in x_shape)
    return None


@register("PRelu")
class PRelu(OpDef):
    def infer(self, node, ins):
        x, slope = ins
        if _prelu_slope_shape(x.shape, slope.shape) is None:
            raise UnsupportedModelError(
                f"{node.describe()}: slope {slope.shape} does not broadcast to {x.shape}")
        return [(x.shape, x.dtype)]

    def lower(self, node, b, ins, outs):
        x0, x1, dt = _common_operands(node, b, ins, ins[0].dtype)
        if dt not in _NUMERIC:
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        shape = _prelu_slope_shape(ins[0].shape, ins[1].shape)
        if tuple(shape) != tuple(x1.shape):
            x1 = b.view(x1, shape)
        y = b.output(node.outputs[0], outs[0].shape, dt)
        emit_binary(b, Bin.PRELU, x0, x1, y)


# --------------------------------------------------------------------------------------
# Variadic ops: a chain of binary steps, left to right like the reference
# --------------------------------------------------------------------------------------

@register("Sum", "Max", "Min", "Mean")
class Variadic(OpDef):
    FN = {"Sum": Bin.ADD, "Mean": Bin.ADD, "Max": Bin.MAX, "Min": Bin.MIN}

    def infer(self, node, ins):
        ins = [v for v in ins if v is not None]
        if not ins:
            raise UnsupportedModelError(f"{node.describe()}: needs at least one input")
        return [(broadcast_shape(*[v.shape for v in ins]), ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        vals = [v for v in ins if v is not None]
        dt = np.dtype(outs[0].dtype)
        if dt not in _NUMERIC or (node.op_type == "Mean" and dt not in _FLOAT):
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        y = b.output(node.outputs[0], outs[0].shape, dt)
        tensors = [_as_dtype(b, node, v, dt) for v in vals]
        mean = node.op_type == "Mean" and len(vals) > 1
        if len(tensors) == 1:
            src = tensors[0]
            if tuple(src.shape) == tuple(y.shape):
                emit_contiguous_copy(b, src, y)
            else:   # cannot happen (one input): keep a guard anyway
                raise UnsupportedModelError(f"{node.describe()}: shape mismatch")
            return
        fn = self.FN[node.op_type]
        acc = tensors[0]
        for k, t in enumerate(tensors[1:], start=1):
            shape = broadcast_shape(acc.shape, t.shape)
            last = k == len(tensors) - 1
            dst = y if (last and not mean) else b.temp(shape, dt, name=f"{node.name}_acc{k}")
            emit_binary(b, fn, acc, t, dst)
            acc = dst
        if mean:   # divide like the reference (res / n), not multiply by 1/n
            emit_binary(b, Bin.DIV, acc, b.const(np.array(len(vals), dt)), y)


# --------------------------------------------------------------------------------------
# Where, Cast
# --------------------------------------------------------------------------------------

@register("Where")
class Where(OpDef):
    def infer(self, node, ins):
        c, x, z = ins
        return [(broadcast_shape(c.shape, x.shape, z.shape), x.dtype)]

    def lower(self, node, b, ins, outs):
        c, x, z = ins
        dt = np.dtype(outs[0].dtype)
        tc = _as_dtype(b, node, c, _BOOL)
        tx = _as_dtype(b, node, x, dt)
        tz = _as_dtype(b, node, z, dt)
        y = b.output(node.outputs[0], outs[0].shape, dt)
        emit_where(b, tc, tx, tz, y)


@register("Cast", "CastLike")
class Cast(OpDef):
    def _target(self, node, ins):
        if node.op_type == "CastLike":
            return np.dtype(ins[1].dtype)
        return _np_dtype_of(node.attrs.get("to", 1))

    def infer(self, node, ins):
        return [(ins[0].shape, self._target(node, ins))]

    def lower(self, node, b, ins, outs):
        from deepsparse_lite.ops.shape import alias

        dt = np.dtype(outs[0].dtype)
        src = np.dtype(ins[0].dtype)
        for d in (src, dt):
            dtype_code(d)   # raises NotImplementedError for types the kernels lack
        if src == dt:
            alias(b, node.inputs[0], node.outputs[0], outs[0].shape, dt)
            return
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], outs[0].shape, dt)
        # opset 19+: float8 destinations saturate (to +-max) unless saturate=0
        emit_cast(b, x, y, saturate=bool(int(node.attrs.get("saturate", 1))))


# --------------------------------------------------------------------------------------
# Bitwise ops and shifts (integers)
# --------------------------------------------------------------------------------------

_BITWISE = {"BitwiseAnd": Bin.BITAND, "BitwiseOr": Bin.BITOR, "BitwiseXor": Bin.BITXOR}


@register("BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitShift")
class Bitwise(OpDef):
    def _fn(self, node):
        if node.op_type != "BitShift":
            return _BITWISE[node.op_type]
        direction = node.attrs.get("direction", "")
        direction = direction.decode() if isinstance(direction, bytes) else str(direction)
        if direction not in ("LEFT", "RIGHT"):
            raise UnsupportedModelError(f"{node.describe()}: direction must be LEFT or RIGHT, "
                                        f"got {direction!r}")
        return Bin.SHL if direction == "LEFT" else Bin.SHR

    def infer(self, node, ins):
        self._fn(node)
        return [(broadcast_shape(ins[0].shape, ins[1].shape), _operand_dtype(node, ins[0], ins[1]))]

    def lower(self, node, b, ins, outs):
        fn = self._fn(node)
        x0, x1, dt = _common_operands(node, b, ins, outs[0].dtype)
        if not binary_supported(fn, dt):
            kinds = "unsigned integers" if fn in (Bin.SHL, Bin.SHR) else "integers"
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported "
                                        f"({kinds} only)")
        y = b.output(node.outputs[0], outs[0].shape, dt)
        emit_binary(b, fn, x0, x1, y)


@register("BitwiseNot")
class BitwiseNot(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        dt = np.dtype(ins[0].dtype)
        if dt not in _INTS:
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported "
                                        f"(integers only)")
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], outs[0].shape, dt)
        emit_unary(b, Fn.BITNOT, x, y)


# --------------------------------------------------------------------------------------
# IsNaN / IsInf: compositions of the compare and unary kernels
# --------------------------------------------------------------------------------------

@register("IsNaN", "IsInf")
class FloatClass(OpDef):
    def infer(self, node, ins):
        if np.dtype(ins[0].dtype) not in _FLOAT:
            raise UnsupportedModelError(f"{node.describe()}: input must be a float tensor "
                                        f"(float16/32/64 or bfloat16), got {np.dtype(ins[0].dtype)}")
        return [(ins[0].shape, _BOOL)]

    def lower(self, node, b, ins, outs):
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], outs[0].shape, _BOOL)
        if not x.size:
            return
        if node.op_type == "IsNaN":  # NaN is the one value not equal to itself
            eq = b.temp(x.shape, _BOOL)
            emit_binary(b, Bin.EQ, x, x, eq)
            b.emit(EltOp.NOT, [eq, y], sp.params(sp.ELTWISE, dtype=int(DType.BOOL), n=x.size))
            return
        pos = int(node.attrs.get("detect_positive", 1))
        neg = int(node.attrs.get("detect_negative", 1))
        if not pos and not neg:
            from deepsparse_lite.ops.base import emit_fill
            emit_fill(b, y, False)
            return
        src = x
        if pos and neg:
            src = b.temp(x.shape, x.dtype)
            emit_unary(b, Fn.ABS, x, src)
        inf = b.const(np.array(np.inf if pos else -np.inf, dtype=x.dtype))
        emit_binary(b, Bin.EQ, src, inf, y)
