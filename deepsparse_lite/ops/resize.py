"""Resize (opsets 10..21) and Upsample (opsets 7..9): nearest, linear and cubic.

Everything the reference implementation (onnx.reference op_resize) computes per output
coordinate is decided here, once, in float64 with the reference's own formulas: the output
size, the source coordinate of each output index under the coordinate transformation mode,
and from it a table of source offsets (nearest) or of neighbour indices and weights
(linear). The kernels (kernels/data.pyx sub-ops 5 and 6) only follow the tables.

Table kernels: nearest on any axes with nearest_mode round_prefer_floor /
round_prefer_ceil / floor / ceil; linear (f32) on the last two axes; coordinate modes
half_pixel, asymmetric, align_corners, pytorch_half_pixel, half_pixel_symmetric,
tf_half_pixel_for_nn; scales or sizes (constant), opset-18 axes and
keep_aspect_ratio_policy. Resize-10 and Upsample use onnxruntime's legacy rules (asymmetric
coordinates; nearest truncates when upsampling and rounds up when downsampling).

Interpolation matrices (f32): resizing one axis is a linear map, out = A @ in (+ a
constant: tf_crop_and_resize's extrapolation_value on the rows whose source lies outside),
with A [out, in] built here from the reference's coefficient rules (cubic with
cubic_coeff_a, exclude_outside, antialias for linear and cubic, edge clamping). Cubic,
tf_crop_and_resize (constant roi, any mode), antialiased downsampling, exclude_outside and
linear on any other axes run as one GEMM per resized axis with A as a constant operand:
the last axis as X[rows, in] @ A^T (packed weights, extrapolation as the column bias),
another axis as A @ X[outer][in, inner] (the constant-left 1x1-conv form, row bias).
A is dense: the GEMM multiplies its zeros too (a fallback, not a fast path).
"""
from __future__ import annotations

import math

import numpy as np

from deepsparse_lite.plan import MAX_NDIM, Family
from deepsparse_lite import step_params as sp
from deepsparse_lite.ops.base import (OpDef, UnsupportedModelError, contiguous_strides, emit_copy,
                                      ints_attr, normalize_axis, op_id, register)

RESIZE_NEAREST = op_id(Family.DATA, 5)
RESIZE_LINEAR = op_id(Family.DATA, 6)


def _str_attr(node, key, default):
    v = node.attr(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


class _ResizeSpec:
    """Everything Resize decides at compile time (mirrors onnx.reference's op_resize)."""

    def __init__(self, node, ins):
        x = ins[0]
        rank = x.rank
        self.rank = rank
        self.in_shape = tuple(x.shape)
        mode = _str_attr(node, "mode", "nearest")
        legacy = node.op_type == "Upsample" or node.opset < 11
        if mode in ("bilinear", "trilinear"):  # Upsample-7 names
            mode = "linear"
        if mode not in ("nearest", "linear", "cubic"):
            raise UnsupportedModelError(f"{node.describe()}: resize mode {mode!r} is not supported")
        self.mode = mode
        if legacy:
            # Resize-10 and Upsample: asymmetric coordinates; nearest truncates when
            # upsampling and rounds up when downsampling (onnxruntime's legacy behaviour)
            self.ctm = "asymmetric"
            self.nearest_mode = None
            self.policy = "stretch"
            if mode == "cubic":
                raise UnsupportedModelError(f"{node.describe()}: cubic needs Resize-11 or later")
            if node.op_type == "Upsample" and node.opset < 9:
                scales = [float(s) for s in node.attr("scales")]
            else:
                k = 1
                if ins[k] is None or ins[k].const is None:
                    raise UnsupportedModelError(f"{node.describe()}: scales must be constant")
                scales = [float(s) for s in np.asarray(ins[k].const, np.float32).reshape(-1)]
            sizes, axes = None, None
        else:
            self.ctm = _str_attr(node, "coordinate_transformation_mode", "half_pixel")
            self.nearest_mode = _str_attr(node, "nearest_mode", "round_prefer_floor")
            self.policy = _str_attr(node, "keep_aspect_ratio_policy", "stretch")
            if int(node.attr("antialias", 0) or 0) and mode == "nearest":
                raise UnsupportedModelError(f"{node.describe()}: antialias with nearest")
            scales = sizes = None
            if len(ins) > 2 and ins[2] is not None:
                if ins[2].const is None:
                    raise UnsupportedModelError(f"{node.describe()}: scales must be constant")
                if ins[2].const.size:
                    scales = [float(s) for s in np.asarray(ins[2].const, np.float32).reshape(-1)]
            if len(ins) > 3 and ins[3] is not None:
                if ins[3].const is None:
                    raise UnsupportedModelError(f"{node.describe()}: sizes must be constant")
                if ins[3].const.size:
                    sizes = [int(s) for s in np.asarray(ins[3].const).reshape(-1)]
            axes = ints_attr(node, "axes") if node.opset >= 18 else None
            if scales is None and sizes is None:
                raise UnsupportedModelError(f"{node.describe()}: needs scales or sizes")
        roi = None
        if not legacy and self.ctm == "tf_crop_and_resize":
            if len(ins) < 2 or ins[1] is None or ins[1].const is None or ins[1].const.size == 0:
                raise UnsupportedModelError(f"{node.describe()}: tf_crop_and_resize needs a constant roi")
            roi = [float(v) for v in np.asarray(ins[1].const, np.float64).reshape(-1)]
        if axes is not None:
            axes = [normalize_axis(a, rank, node) for a in axes]
        else:
            axes = list(range(rank))
        n_ax = len(axes)
        if scales is not None and len(scales) != n_ax or sizes is not None and len(sizes) != n_ax:
            raise UnsupportedModelError(f"{node.describe()}: scales/sizes length != axes")
        full_scales = [1.0] * rank
        if sizes is not None:
            out = list(x.shape)
            for i, a in enumerate(axes):
                out[a] = sizes[i]
            full_scales = [out[i] / x.shape[i] if x.shape[i] else 1.0 for i in range(rank)]
            if self.policy != "stretch":
                pick = min if self.policy == "not_larger" else max
                s = pick(full_scales[a] for a in axes)
                full_scales = [s if i in axes else 1.0 for i in range(rank)]
                out = [int(s * x.shape[i] + 0.5) if i in axes else x.shape[i] for i in range(rank)]
        else:
            for i, a in enumerate(axes):
                full_scales[a] = scales[i]
            out = [int(np.float64(s) * n) for s, n in zip(full_scales, x.shape)]
        if roi is not None:   # [starts, ends] of the resized axes -> per dim (start, end)
            if len(roi) != 2 * n_ax:
                raise UnsupportedModelError(f"{node.describe()}: roi of {len(roi)} values for {n_ax} axes")
            full_roi = [(0.0, 1.0)] * rank
            for i, a in enumerate(axes):
                full_roi[a] = (roi[i], roi[n_ax + i])
            roi = full_roi
        self.roi = roi
        if min(out) < 0 or min(full_scales) < 0:
            raise UnsupportedModelError(f"{node.describe()}: scales {full_scales} / output shape "
                                        f"{out} (must not be negative)")
        self.scales = full_scales
        self.out_shape = tuple(out)
        self.resized = [d for d in range(rank)
                        if not (math.isclose(full_scales[d], 1.0) and out[d] == x.shape[d]
                                and (roi is None or (math.isclose(roi[d][0], 0.0)
                                                     and math.isclose(roi[d][1], 1.0))))]
        self.antialias = int(node.attr("antialias", 0) or 0) if not legacy else 0
        self.cubic_a = float(node.attr("cubic_coeff_a", -0.75))
        self.exclude_outside = int(node.attr("exclude_outside", 0) or 0) if not legacy else 0
        self.extrapolation = float(node.attr("extrapolation_value", 0.0))
        # the per-axis interpolation-matrix path (MatMuls with constant operands) for what
        # the table kernels do not do: cubic, tf_crop_and_resize, antialiased downsampling,
        # exclude_outside, linear on more than the last two dims
        self.matrix = (mode == "cubic" or roi is not None
                       or (mode == "linear" and (
                           (self.antialias and any(full_scales[d] < 1.0 for d in self.resized))
                           or self.exclude_outside or any(d < rank - 2 for d in self.resized))))
        if (mode != "nearest" or self.matrix) and np.dtype(x.dtype) != np.float32:
            raise UnsupportedModelError(f"{node.describe()}: {mode} resize needs float32, got "
                                        f"{np.dtype(x.dtype)}")
        self.legacy = legacy

    def x_ori(self, d):
        """Source coordinate of every output index along dim d (float64, as the reference)."""
        n_in, n_out, scale = self.in_shape[d], self.out_shape[d], float(self.scales[d])
        out_w = scale * n_in
        y = np.arange(n_out, dtype=np.float64)
        ctm = self.ctm
        if ctm == "align_corners":
            return np.zeros(n_out) if out_w == 1 else y * (n_in - 1) / (out_w - 1)
        if ctm == "asymmetric":
            return y / scale
        if ctm == "pytorch_half_pixel":
            return np.full(n_out, -0.5) if out_w == 1 else (y + 0.5) / scale - 0.5
        if ctm == "half_pixel":
            return (y + 0.5) / scale - 0.5
        if ctm == "half_pixel_symmetric":
            adjustment = n_out / out_w
            center = n_in / 2
            offset = center * (1 - adjustment)
            return offset + (y + 0.5) / scale - 0.5
        if ctm == "tf_half_pixel_for_nn":
            return (y + 0.5) / scale
        if ctm == "tf_crop_and_resize":
            r0, r1 = self.roi[d]
            if out_w == 1:
                x = np.full(n_out, (r1 - r0) * (n_in - 1) / 2)
            else:
                x = y * (r1 - r0) * (n_in - 1) / (out_w - 1)
            return x + r0 * (n_in - 1)
        raise UnsupportedModelError(f"coordinate_transformation_mode {ctm!r} is not supported")

    def nearest_index(self, d):
        n_in = self.in_shape[d]
        if d not in self.resized:
            return np.arange(self.out_shape[d], dtype=np.int64)
        x = self.x_ori(d)
        fl = np.floor(x)
        ratio = x - fl
        if self.legacy:
            down = self.scales[d] < 1.0
            idx = np.ceil(x) if down else fl
        else:
            m = self.nearest_mode
            if m == "round_prefer_floor":
                up = ratio > 0.5
            elif m == "round_prefer_ceil":
                up = ratio >= 0.5
            elif m == "floor":
                up = np.zeros_like(ratio, dtype=bool)
            elif m == "ceil":
                up = np.ones_like(ratio, dtype=bool)
            else:
                raise UnsupportedModelError(f"nearest_mode {m!r} is not supported")
            idx = np.where(x == fl, x, np.where(up, fl + 1, fl))
        return np.clip(idx, 0, n_in - 1).astype(np.int64)

    def linear_tables(self, d):
        """(i0, i1, w0, w1) along dim d: out = w0 * in[i0] + w1 * in[i1]."""
        n_in, n_out = self.in_shape[d], self.out_shape[d]
        if d not in self.resized:
            i = np.arange(n_out, dtype=np.int64)
            return i, i, np.ones(n_out), np.zeros(n_out)
        x = self.x_ori(d)
        fl = np.floor(x)
        integer = x == fl
        ratio = np.where(integer, 1.0, x - fl)
        # an integer coordinate k takes the pair (k-1, k) with weights (0, 1), like the reference
        i0 = np.where(integer, fl - 1, fl)
        i0 = np.clip(i0, 0, n_in - 1).astype(np.int64)
        i1 = np.clip(np.where(integer, fl, fl + 1), 0, n_in - 1).astype(np.int64)
        return i0, i1, 1.0 - ratio, ratio


    def _coeffs(self, ratio: float, scale: float) -> np.ndarray:
        """onnx.reference's coefficient functions (op_resize._*_coeffs*)."""
        mode, a = self.mode, self.cubic_a
        if mode == "nearest":
            if float(ratio).is_integer():
                return np.array([0.0, 1.0])
            m = self.nearest_mode
            if m == "round_prefer_floor":
                return np.array([ratio <= 0.5, ratio > 0.5], np.float64)
            if m == "round_prefer_ceil":
                return np.array([ratio < 0.5, ratio >= 0.5], np.float64)
            if m == "floor":
                return np.array([1.0, 0.0])
            if m == "ceil":
                return np.array([0.0, 1.0])
            raise UnsupportedModelError(f"nearest_mode {m!r} is not supported")
        if mode == "linear":
            if not self.antialias:
                return np.array([1 - ratio, ratio])
            sc = min(scale, 1.0)
            start = int(np.floor(-1 / sc) + 1)
            args = (np.arange(start, start + 2 - 2 * start) - ratio) * sc
            c = np.clip(1 - np.abs(args), 0, 1)
            return c / c.sum()
        if not self.antialias:
            r = ratio
            return np.array([((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                             ((a + 2) * r - (a + 3)) * r * r + 1,
                             ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
                             ((a * ((1 - r) + 1) - 5 * a) * ((1 - r) + 1) + 8 * a) * ((1 - r) + 1) - 4 * a])
        sc = min(scale, 1.0)

        def k(x):
            x = abs(x)
            if x <= 1:
                return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
            return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a if x < 2 else 0.0
        i0 = int(np.floor(-2 / sc) + 1)
        c = np.array([k(sc * (i - ratio)) for i in range(i0, 2 - i0)])
        return c / c.sum()

    def axis_matrix(self, d):
        """(A [out, in] float64, bias [out] or None): resizing dim d is out = A @ in + bias
        (bias: the extrapolation value on tf_crop_and_resize's outside rows), with the
        neighbour choice, edge clamping and exclude_outside of onnx.reference."""
        n_in, n_out, scale = self.in_shape[d], self.out_shape[d], float(self.scales[d])
        x = self.x_ori(d)
        # x lies in (x_int, x_int + 1] (an integer x takes the pair below it, ratio 1), and
        # every coefficient set is even-sized and centred there: indices x_int + 1 - n/2 ...
        # (onnx.reference finds them from round(x + pad), which picks the wrong window when
        # x is an integer plus an ulp below the rounding of x + pad: half_pixel_symmetric)
        xi = np.floor(x)
        integer = x == xi
        ratios = np.where(integer, 1.0, x - xi)
        xi = np.where(integer, xi - 1, xi).astype(np.int64)
        coeffs = np.stack([self._coeffs(float(r), scale) for r in ratios]).astype(np.float64)
        n = coeffs.shape[1]
        idx = xi[:, None] + (1 - n // 2) + np.arange(n)[None, :]
        if self.exclude_outside:
            coeffs = np.where((idx < 0) | (idx >= n_in), 0.0, coeffs)
            tot = coeffs.sum(axis=1, keepdims=True)
            coeffs = coeffs / np.where(tot == 0, 1.0, tot)
        A = np.zeros((n_out, n_in))
        np.add.at(A, (np.repeat(np.arange(n_out), n), np.clip(idx, 0, n_in - 1).reshape(-1)),
                  coeffs.reshape(-1))
        bias = None
        if self.roi is not None:
            outside = (x < 0) | (x > n_in - 1)
            if outside.any():
                A[outside] = 0.0
                bias = np.where(outside, self.extrapolation, 0.0)
        return A, bias


@register("Resize", "Upsample")
class Resize(OpDef):
    def infer(self, node, ins):
        return [(_ResizeSpec(node, ins).out_shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        spec = _ResizeSpec(node, ins)
        x = ins[0]
        src = b.value(x.name)
        dst = b.output(outs[0].name, outs[0].shape, outs[0].dtype)
        esz = np.dtype(x.dtype).itemsize
        if _numel(spec.out_shape) == 0:
            return
        if not spec.resized:
            emit_copy(b, src, dst, (_numel(x.shape),), (esz,), (esz,))
            return
        if spec.matrix:
            self._matrix(b, spec, src, dst)
        elif spec.mode == "nearest":
            self._nearest(b, spec, src, dst, esz)
        else:
            self._linear(b, spec, src, dst)

    @staticmethod
    def _nearest(b, spec, src, dst, esz):
        ss = contiguous_strides(spec.in_shape, esz)
        # merge runs of untouched dims into one identity dim (fewer, longer tables)
        dims = []  # (out_size, table of source byte offsets)
        run = 1
        for d in range(spec.rank):
            if d not in spec.resized:
                run *= spec.out_shape[d]
                if d + 1 < spec.rank and (d + 1) not in spec.resized:
                    continue
                dims.append((run, np.arange(run, dtype=np.int64) * ss[d]))
                run = 1
            else:
                dims.append((spec.out_shape[d], spec.nearest_index(d) * ss[d]))
        if len(dims) > MAX_NDIM:
            raise UnsupportedModelError(f"resize of rank {spec.rank} > {MAX_NDIM}")
        table = np.concatenate([t for _, t in dims]).astype(np.int64)
        starts = np.cumsum([0] + [len(t) for _, t in dims[:-1]]).tolist()
        b.emit(RESIZE_NEAREST, [src, dst, b.const(table, name="resize_nearest_table")], sp.params(
            sp.RESIZE_NEAREST, ndim=len(dims), esz=esz, out_shape=[n for n, _ in dims],
            table_start=starts))

    @staticmethod
    def _linear(b, spec, src, dst):
        rank = spec.rank
        if rank >= 2:
            H, W = spec.in_shape[-2], spec.in_shape[-1]
            OH, OW = spec.out_shape[-2], spec.out_shape[-1]
            y0, y1, wy0, wy1 = spec.linear_tables(rank - 2)
        else:
            H = OH = 1
            W, OW = spec.in_shape[-1], spec.out_shape[-1]
            y0 = y1 = np.zeros(1, np.int64)
            wy0, wy1 = np.ones(1), np.zeros(1)
        x0, x1, wx0, wx1 = spec.linear_tables(rank - 1)
        outer = _numel(spec.in_shape[:-2]) if rank >= 2 else 1
        itab = np.concatenate([y0, y1, x0, x1]).astype(np.int64)
        wtab = np.concatenate([wy0, wy1, wx0, wx1]).astype(np.float32)
        itab_t = b.const(itab, name="resize_linear_idx")
        wtab_t = b.const(wtab, name="resize_linear_w")
        stride = (2 * OW + 15) // 16 * 16  # floats; 64-byte aligned per-thread slices
        ws = b.workspace(stride * 4 * b.max_threads, name="resize_linear_rows")
        b.emit(RESIZE_LINEAR, [src, dst, itab_t, wtab_t, ws], sp.params(
            sp.RESIZE_LINEAR, outer=outer, H=H, W=W, OH=OH, OW=OW, ws_floats=stride,
            ws_threads=b.max_threads))

    @staticmethod
    def _matrix(b, spec, src, dst):
        """One GEMM per resized axis with the constant interpolation matrix: the last axis
        as X[rows, in] @ A^T (packed weights), any other as A @ X[outer][in, inner] (the
        constant-left 1x1-conv form); most-shrinking axes first (least work after them)."""
        from deepsparse_lite.ops.gemm import emit_const_left, emit_packed_gemm

        cur = list(spec.in_shape)
        order = sorted(spec.resized, key=lambda d: (spec.out_shape[d] / spec.in_shape[d], d))
        for k, d in enumerate(order):
            A, bias = spec.axis_matrix(d)
            A = A.astype(np.float32)
            bias = None if bias is None else bias.astype(np.float32)
            outer, n_in, inner = _numel(cur[:d]), cur[d], _numel(cur[d + 1:])
            cur[d] = spec.out_shape[d]
            out = dst if k == len(order) - 1 else b.temp(tuple(cur), np.float32, name="resize_axis")
            if inner == 1:
                emit_packed_gemm(b, src, np.ascontiguousarray(A.T), out, outer, rsa=n_in, csa=1,
                                 bias=bias, allow_bf16=False)
            else:
                emit_const_left(b, A, src, out, (outer, n_in, inner), bias=bias)
            src = out
