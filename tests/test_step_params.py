"""The compiler/kernel binary interface: every step parameter record and code table agrees
between C (csrc/dsl_params.h and the kernel headers, read through kernels/abi.pyx) and
Python (deepsparse_lite/step_params.py and the ops' code classes)."""
import numpy as np
import pytest

from deepsparse_lite import step_params as sp
from deepsparse_lite.kernels import abi
from deepsparse_lite.plan import STEP_DTYPE, DType, Err, Family

C_LAYOUTS = abi.param_layouts()


def test_step_record_layout():
    size, params_offset, param_bytes = abi.step_layout()
    assert STEP_DTYPE.itemsize == size
    assert STEP_DTYPE.fields["params"][1] == params_offset
    assert params_offset % 8 == 0
    assert sp.PARAM_BYTES == param_bytes == STEP_DTYPE.fields["params"][0].itemsize


def test_every_c_struct_has_a_python_mirror_and_back():
    assert set(C_LAYOUTS) == set(sp.STRUCTS)


@pytest.mark.parametrize("name", sorted(sp.STRUCTS))
def test_param_struct_layout_matches_c(name):
    size, fields = C_LAYOUTS[name]
    dt = sp.STRUCTS[name]
    assert dt.itemsize == size, f"{name}: numpy {dt.itemsize} bytes, C {size}"
    assert list(dt.names) == [f[0] for f in fields], f"{name}: field order/names differ"
    for fname, offset, esize, count, is_float in fields:
        sub, off = dt.fields[fname][:2]
        assert off == offset, f"{name}.{fname}: offset {off} != C {offset}"
        assert sub.base.itemsize == esize, f"{name}.{fname}: element size"
        assert (sub.shape[0] if sub.shape else 1) == count, f"{name}.{fname}: count"
        assert (sub.base.kind == "f") == is_float, f"{name}.{fname}: int/float"


def test_params_builder_rejects_unknown_fields_and_overflow():
    with pytest.raises(ValueError, match="no field 'levl'"):
        sp.params(sp.SOFTMAX, levl=1)
    with pytest.raises(ValueError, match="holds 8 values"):
        sp.params(sp.COPY, shape=list(range(9)))
    rec = sp.params(sp.COPY, ndim=2, shape=[3, 4])
    assert list(rec["shape"]) == [3, 4, 0, 0, 0, 0, 0, 0] and rec["esz"] == 0


def test_view_reads_and_writes_a_steps_record():
    step = np.zeros((), STEP_DTYPE)
    step["params"][:sp.SOFTMAX.itemsize] = np.frombuffer(
        sp.params(sp.SOFTMAX, log=1, n=7).tobytes(), np.uint8)
    v = sp.view(step, sp.SOFTMAX)
    assert v["log"] == 1 and v["n"] == 7
    v["n"] = 9
    assert sp.view(step, sp.SOFTMAX)["n"] == 9


def _public(cls):
    return {k: int(v) for k, v in vars(cls).items() if k.isupper() and isinstance(v, int)}


def test_code_tables_match_c():
    from deepsparse_lite.ops.base import Act, DataOp
    from deepsparse_lite.ops.datamove import GATHER, GATHER_ELEMENTS
    from deepsparse_lite.ops.elementwise import Bin, EltOp, Fn
    from deepsparse_lite.ops.gemm import BIAS_COL, BIAS_NONE, BIAS_ROW, GemmOp
    from deepsparse_lite.ops.pool import PoolOp
    from deepsparse_lite.ops.quant import QuantOp
    from deepsparse_lite.ops.reduce import RK, ReduceOp
    from deepsparse_lite.ops.resize import RESIZE_LINEAR, RESIZE_NEAREST
    from deepsparse_lite.ops.sparse import SparseOp

    c = abi.code_tables()
    ops = {**_public(DataOp), "GATHER": GATHER, "GATHER_ELEMENTS": GATHER_ELEMENTS,
           "RESIZE_NEAREST": RESIZE_NEAREST, "RESIZE_LINEAR": RESIZE_LINEAR, **_public(EltOp),
           **_public(ReduceOp), **_public(PoolOp), **_public(GemmOp), **_public(SparseOp),
           **_public(QuantOp)}
    assert ops == c["op"]
    assert _public(Act) == c["act"]
    assert {k: v for k, v in _public(Fn).items() if k not in _public(Act)} == c["fn"]
    assert _public(Bin) == c["bin"]
    assert _public(RK) == c["rk"]
    assert {d.name: int(d) for d in DType} == c["dtype"]
    assert {e.name: int(e) for e in Err} == c["err"]
    assert {f.name: int(f) for f in Family} == c["family"]
    assert {"NONE": BIAS_NONE, "COL": BIAS_COL, "ROW": BIAS_ROW} == c["bias"]
    from deepsparse_lite.cpu import _X86_ORDER
    assert {n.upper(): k for k, n in enumerate(_X86_ORDER)} == c["isa"]


ONNX_NAMES = {"F32": "FLOAT", "U8": "UINT8", "I8": "INT8", "U16": "UINT16", "I16": "INT16",
              "I32": "INT32", "I64": "INT64", "BOOL": "BOOL", "F16": "FLOAT16", "F64": "DOUBLE",
              "U32": "UINT32", "U64": "UINT64", "BF16": "BFLOAT16", "F8E4M3FN": "FLOAT8E4M3FN",
              "F8E4M3FNUZ": "FLOAT8E4M3FNUZ", "F8E5M2": "FLOAT8E5M2", "F8E5M2FNUZ": "FLOAT8E5M2FNUZ"}


def test_dtype_codes_are_onnx_numbering_with_numpy_sizes():
    import onnx

    from deepsparse_lite.plan import DTYPE_TO_NP, NP_TO_DTYPE

    assert {d.name: int(d) for d in DType} == {k: getattr(onnx.TensorProto, v) for k, v in ONNX_NAMES.items()}
    for dt, code in NP_TO_DTYPE.items():
        assert abi.dtype_size(int(code)) == dt.itemsize, dt
        assert DTYPE_TO_NP[int(code)] == dt
    assert abi.dtype_size(0) == 0 and abi.dtype_size(8) == 0   # UNDEFINED, STRING


def test_kernel_forms_and_variants_are_consistent():
    from deepsparse_lite import kernels

    assert kernels.FORMS == ("generic", "avx2", "avx512", "avx512_on_avx2")
    reach = kernels.reachable_variants(0)
    assert all(f == "generic" for _, f in reach)
    if kernels.top_isa_level() >= 1:
        assert ("gemm_tile", "avx512_on_avx2") in kernels.reachable_variants(1)
        assert not any(f == "avx512" for _, f in kernels.reachable_variants(1))
