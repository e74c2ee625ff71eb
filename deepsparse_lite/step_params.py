"""Typed parameter records of the plan's steps: the NumPy mirror of csrc/dsl_params.h.

Each C struct there has a structured dtype here with the same fields in the same order
(``align=True`` gives C's offsets); ``tests/test_step_params.py`` checks every size, offset
and count against the C side. A lowering builds a record by field name::

    b.emit(ReduceOp.SOFTMAX, [x, y], params(SOFTMAX, log=0, outer=8, n=128, inner=1, level=b.isa))

Unknown field names raise (a typo is an error, not a silently shifted parameter); array
fields take any shorter sequence and are zero padded; fields not given are zero.

This module sits below the ops and the compiler (it imports nothing of the package).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

PARAM_BYTES = 608   # DSL_PARAM_BYTES
MAX_NDIM = 8        # DSL_MAX_NDIM

I64, F32 = "<i8", "<f4"


def _struct(*fields) -> np.dtype:
    out = []
    for f in fields:
        name, typ = f[0], f[1]
        out.append((name, typ, (f[2],)) if len(f) > 2 else (name, typ))
    dt = np.dtype(out, align=True)
    assert dt.itemsize <= PARAM_BYTES, dt
    return dt


def _ints(*names):
    return [(n, I64) for n in names]


# ---- family 1: data movement -----------------------------------------------------------
COPY = _struct(*_ints("ndim", "esz"), ("shape", I64, MAX_NDIM), ("src_strides", I64, MAX_NDIM),
               ("dst_strides", I64, MAX_NDIM), *_ints("src_offset", "dst_offset", "level"))
FILL = _struct(*_ints("nbytes", "esz", "bits", "dst_offset"))
GATHER = _struct(*_ints("outer", "axis_len", "inner_bytes", "n_idx", "index_dtype"))
GATHER_ELEMENTS = _struct(*_ints("ndim", "esz", "index_dtype", "axis", "axis_len"),
                          ("shape", I64, MAX_NDIM), ("data_strides", I64, MAX_NDIM))
RESIZE_NEAREST = _struct(*_ints("ndim", "esz"), ("out_shape", I64, MAX_NDIM),
                         ("table_start", I64, MAX_NDIM))
RESIZE_LINEAR = _struct(*_ints("outer", "H", "W", "OH", "OW", "ws_floats", "ws_threads"))

# ---- family 2: elementwise ---------------------------------------------------------------
ELTWISE = _struct(*_ints("fn", "dtype", "out_dtype", "saturate", "esz", "level", "ndim", "n"),
                  ("shape", I64, MAX_NDIM), ("strides", I64, 3 * MAX_NDIM), ("a", F32), ("b", F32))

# ---- family 3: reductions and normalisations ---------------------------------------------
REDUCE = _struct(*_ints("kind", "dtype", "outer", "n", "inner", "level"), ("scale", F32))
ARG = _struct(*_ints("is_min", "dtype", "outer", "n", "inner", "select_last", "level"))
TOPK = _struct(*_ints("dtype", "outer", "n", "inner", "k", "largest"))
SOFTMAX = _struct(*_ints("log", "outer", "n", "inner", "level"))
LAYERNORM = _struct(*_ints("outer", "n", "has_bias", "has_mean", "has_inv_std", "level"),
                    ("epsilon", F32))
AFFINE = _struct(*_ints("outer", "C", "inner", "level"))
BN_PREP = _struct(*_ints("C"), ("epsilon", F32))
LRN = _struct(*_ints("N", "C", "inner", "size"), ("alpha", F32), ("beta", F32), ("bias", F32))
INSTNORM = _struct(*_ints("rows", "n", "C", "level"), ("epsilon", F32))

# ---- family 4: pooling --------------------------------------------------------------------
POOL = _struct(*_ints("avg", "planes", "H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "pad_top",
                      "pad_left", "DH", "DW", "Wp", "level", "ws_threads", "ws_stride",
                      "storage_order", "q8"))

# ---- family 5: GEMM / MatMul / Conv -------------------------------------------------------
GEMM = _struct(*_ints("level", "M", "N", "K", "mc", "kc", "nc", "act", "bias_mode", "bias_slot",
                      "d_slot", "rsd", "csd", "ws_slot", "ws_bytes", "ws_threads",
                      "rsa", "csa", "rsb", "csb", "rsc", "nb"),
               ("batch", I64, 4), ("sa", I64, 4), ("sb", I64, 4), ("sc", I64, 4), ("sd", I64, 4),
               *_ints("images", "groups", "Cin", "H", "W", "Cout", "OH", "OW", "KH", "KW", "SH",
                      "SW", "PH", "PW", "DH", "DW", "direct", "co_chunk", "nchunks", "col_floats",
                      "pixel_rows", "co_parts", "bf16"),
               ("alpha", F32), ("beta", F32), ("act_a", F32), ("act_b", F32),
               *_ints("ex_slot", "ex_bias_slot", "ex_act", "ex_rows", "ex_cb"),
               ("ex_act_a", F32), ("ex_act_b", F32))

# ---- family 6: sparse-weight GEMM / Conv ------------------------------------------------
SPMM = _struct(*_ints("level", "R", "K", "np", "nnz", "off_vals", "off_cols", "act", "bias_slot",
                      "d_slot", "ws_slot", "ws_bytes", "ws_threads", "rsa", "csa", "rsc", "rsd",
                      "csd", "images", "Cin", "H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "PH",
                      "PW", "DH", "DW", "direct", "off_offs", "pad_bytes"),
               ("beta", F32), ("act_a", F32), ("act_b", F32))

# ---- family 7: quantization, INT8 GEMM / Conv -------------------------------------------
QUANT = _struct(*_ints("level", "qdtype", "outer", "C", "inner", "zp_slot", "n"))
QGEMM = _struct(*_ints("level", "M", "N", "K", "a_signed", "za", "za_slot", "row_zp", "out_mode",
                       "zy", "relu", "items", "sa", "sc", "rsa", "rsc", "csc", "ws_slot",
                       "ws_bytes", "ws_threads", "images", "groups", "Cin", "H", "W", "Cout",
                       "OH", "OW", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "Kp", "mb",
                       "xi_bytes", "direct", "cob", "sparse", "tokens"))

#: C struct name -> dtype (what the layout test walks)
STRUCTS: Dict[str, np.dtype] = {
    "dsl_copy_params": COPY, "dsl_fill_params": FILL, "dsl_gather_params": GATHER,
    "dsl_gather_elements_params": GATHER_ELEMENTS, "dsl_resize_nearest_params": RESIZE_NEAREST,
    "dsl_resize_linear_params": RESIZE_LINEAR, "dsl_eltwise_params": ELTWISE,
    "dsl_reduce_params": REDUCE, "dsl_arg_params": ARG, "dsl_topk_params": TOPK,
    "dsl_softmax_params": SOFTMAX, "dsl_layernorm_params": LAYERNORM, "dsl_affine_params": AFFINE,
    "dsl_bn_prep_params": BN_PREP, "dsl_lrn_params": LRN, "dsl_instnorm_params": INSTNORM,
    "dsl_pool_params": POOL, "dsl_gemm_params": GEMM, "dsl_spmm_params": SPMM,
    "dsl_quant_params": QUANT, "dsl_qgemm_params": QGEMM,
}


def params(dtype: np.dtype, /, **fields) -> np.ndarray:
    """A zeroed record of ``dtype`` with ``fields`` set (arrays zero padded). (``dtype`` is
    positional-only: several records have a field named ``dtype``.)"""
    rec = np.zeros((), dtype=dtype)
    for name, value in fields.items():
        if name not in dtype.names:
            raise ValueError(f"step parameter record has no field '{name}' "
                             f"(fields: {', '.join(dtype.names)})")
        sub = dtype.fields[name][0]
        if sub.shape:
            vals = np.asarray(list(value), dtype=sub.base)
            if vals.size > sub.shape[0]:
                raise ValueError(f"field '{name}' holds {sub.shape[0]} values, got {vals.size}")
            arr = np.zeros(sub.shape, dtype=sub.base)
            arr[:vals.size] = vals
            rec[name] = arr
        else:
            rec[name] = value
    return rec


def view(step: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The parameter record of one STEP_DTYPE step as a writable ``dtype`` record (tests
    and tools read or corrupt fields by name)."""
    raw = step["params"]
    return raw[:dtype.itemsize].view(dtype)[0:1].reshape(())
