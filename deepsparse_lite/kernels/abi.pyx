"""The binary interface between the compiler (Python) and the kernels (C), as data: the
layout of every step parameter record (csrc/dsl_params.h) and every code table the two
sides share. tests/test_step_params.py compares them with deepsparse_lite/step_params.py
and the Python code classes, so a field added on one side only, or a renumbered code,
is a test failure instead of wrong numbers."""
from libc.stdint cimport int64_t

cdef extern from *:
    """
    #include "dsl_plan.h"
    #include "dsl_params.h"
    #include "dsl_cpu.h"
    #include "dsl_act.h"
    #include "dsl_vmath.h"
    #include "eltwise_binary.h"
    #include "eltwise_cast.h"
    #include "reduce_f32.h"
    #include "f32_gemm.h"

    typedef struct { const char* name; int64_t offset, size, count, is_float; } dsl_field_info;
    typedef struct { const char* name; int64_t size; const dsl_field_info* fields; int64_t nfields; } dsl_struct_info;

    #define DSL_IS_FLOAT(type) _Generic((type)0, float: 1, double: 1, default: 0)
    #define DSL_TAB_F(type, name) {#name, (int64_t)offsetof(DSL_TAB_T, name), (int64_t)sizeof(type), 1, DSL_IS_FLOAT(type)},
    #define DSL_TAB_A(type, name, count) {#name, (int64_t)offsetof(DSL_TAB_T, name), (int64_t)sizeof(type), count, DSL_IS_FLOAT(type)},
    #define DSL_TAB_T dsl_copy_params
    static const dsl_field_info dsl_copy_params_fields[] = { DSL_COPY_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_fill_params
    static const dsl_field_info dsl_fill_params_fields[] = { DSL_FILL_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_gather_params
    static const dsl_field_info dsl_gather_params_fields[] = { DSL_GATHER_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_gather_elements_params
    static const dsl_field_info dsl_gather_elements_params_fields[] = { DSL_GATHER_ELEMENTS_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_resize_nearest_params
    static const dsl_field_info dsl_resize_nearest_params_fields[] = { DSL_RESIZE_NEAREST_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_resize_linear_params
    static const dsl_field_info dsl_resize_linear_params_fields[] = { DSL_RESIZE_LINEAR_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_eltwise_params
    static const dsl_field_info dsl_eltwise_params_fields[] = { DSL_ELTWISE_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_reduce_params
    static const dsl_field_info dsl_reduce_params_fields[] = { DSL_REDUCE_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_arg_params
    static const dsl_field_info dsl_arg_params_fields[] = { DSL_ARG_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_topk_params
    static const dsl_field_info dsl_topk_params_fields[] = { DSL_TOPK_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_softmax_params
    static const dsl_field_info dsl_softmax_params_fields[] = { DSL_SOFTMAX_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_layernorm_params
    static const dsl_field_info dsl_layernorm_params_fields[] = { DSL_LAYERNORM_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_affine_params
    static const dsl_field_info dsl_affine_params_fields[] = { DSL_AFFINE_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_bn_prep_params
    static const dsl_field_info dsl_bn_prep_params_fields[] = { DSL_BN_PREP_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_lrn_params
    static const dsl_field_info dsl_lrn_params_fields[] = { DSL_LRN_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_instnorm_params
    static const dsl_field_info dsl_instnorm_params_fields[] = { DSL_INSTNORM_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_pool_params
    static const dsl_field_info dsl_pool_params_fields[] = { DSL_POOL_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_spmm_params
    static const dsl_field_info dsl_spmm_params_fields[] = { DSL_SPMM_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_gemm_params
    static const dsl_field_info dsl_gemm_params_fields[] = { DSL_GEMM_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_quant_params
    static const dsl_field_info dsl_quant_params_fields[] = { DSL_QUANT_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    #define DSL_TAB_T dsl_qgemm_params
    static const dsl_field_info dsl_qgemm_params_fields[] = { DSL_QGEMM_FIELDS(DSL_TAB_F, DSL_TAB_A) };
    #undef DSL_TAB_T
    /* every struct of DSL_PARAM_STRUCTS must have a table above (else this does not compile) */
    #define DSL_TAB_ENTRY(tname, FIELDS) {#tname, (int64_t)sizeof(tname), tname##_fields, \
                                          (int64_t)(sizeof(tname##_fields) / sizeof(dsl_field_info))},
    static const dsl_struct_info dsl_param_structs[] = { DSL_PARAM_STRUCTS(DSL_TAB_ENTRY) };
    static const int64_t dsl_n_param_structs = sizeof(dsl_param_structs) / sizeof(dsl_struct_info);

    typedef struct { const char* table; const char* name; int64_t value; } dsl_code;
    #define DSL_CODE_OP(name, value) {"op", #name, value},
    static const dsl_code dsl_codes[] = {
        DSL_OPS(DSL_CODE_OP)
        {"act", "NONE", DSL_ACT_NONE}, {"act", "RELU", DSL_ACT_RELU},
        {"act", "LEAKY_RELU", DSL_ACT_LEAKY_RELU}, {"act", "CLIP", DSL_ACT_CLIP},
        {"act", "SIGMOID", DSL_ACT_SIGMOID}, {"act", "TANH", DSL_ACT_TANH},
        {"act", "HARD_SIGMOID", DSL_ACT_HARD_SIGMOID}, {"act", "HARD_SWISH", DSL_ACT_HARD_SWISH},
        {"act", "GELU_ERF", DSL_ACT_GELU_ERF}, {"act", "GELU_TANH", DSL_ACT_GELU_TANH},
        {"act", "ELU", DSL_ACT_ELU}, {"act", "SELU", DSL_ACT_SELU}, {"act", "SOFTPLUS", DSL_ACT_SOFTPLUS},
        {"fn", "EXP", DSL_VF_EXP}, {"fn", "LOG", DSL_VF_LOG}, {"fn", "SQRT", DSL_VF_SQRT},
        {"fn", "NEG", DSL_VF_NEG}, {"fn", "ABS", DSL_VF_ABS}, {"fn", "RECIP", DSL_VF_RECIP},
        {"fn", "ERF", DSL_VF_ERF}, {"fn", "AFFINE", DSL_VF_AFFINE}, {"fn", "FLOOR", DSL_VF_FLOOR},
        {"fn", "CEIL", DSL_VF_CEIL}, {"fn", "ROUND", DSL_VF_ROUND}, {"fn", "SIGN", DSL_VF_SIGN},
        {"fn", "SOFTSIGN", DSL_VF_SOFTSIGN}, {"fn", "POW", DSL_VF_POW},
        {"fn", "BITNOT", DSL_IUN_BITNOT},
        {"bin", "ADD", DSL_BIN_ADD}, {"bin", "SUB", DSL_BIN_SUB}, {"bin", "MUL", DSL_BIN_MUL},
        {"bin", "DIV", DSL_BIN_DIV}, {"bin", "POW", DSL_BIN_POW}, {"bin", "MAX", DSL_BIN_MAX},
        {"bin", "MIN", DSL_BIN_MIN}, {"bin", "PRELU", DSL_BIN_PRELU}, {"bin", "MOD", DSL_BIN_MOD},
        {"bin", "FMOD", DSL_BIN_FMOD}, {"bin", "EQ", DSL_BIN_EQ}, {"bin", "LT", DSL_BIN_LT},
        {"bin", "GT", DSL_BIN_GT}, {"bin", "LE", DSL_BIN_LE}, {"bin", "GE", DSL_BIN_GE},
        {"bin", "AND", DSL_BIN_AND}, {"bin", "OR", DSL_BIN_OR}, {"bin", "XOR", DSL_BIN_XOR},
        {"bin", "BITAND", DSL_BIN_BITAND}, {"bin", "BITOR", DSL_BIN_BITOR},
        {"bin", "BITXOR", DSL_BIN_BITXOR}, {"bin", "SHL", DSL_BIN_SHL}, {"bin", "SHR", DSL_BIN_SHR},
        {"rk", "SUM", DSL_RK_SUM}, {"rk", "MEAN", DSL_RK_MEAN}, {"rk", "MAX", DSL_RK_MAX},
        {"rk", "MIN", DSL_RK_MIN}, {"rk", "PROD", DSL_RK_PROD}, {"rk", "L2", DSL_RK_L2},
        {"rk", "L1", DSL_RK_L1}, {"rk", "SUMSQ", DSL_RK_SUMSQ}, {"rk", "LOGSUM", DSL_RK_LOGSUM},
        {"rk", "LOGSUMEXP", DSL_RK_LOGSUMEXP},
        {"dtype", "F32", DSL_F32}, {"dtype", "U8", DSL_U8}, {"dtype", "I8", DSL_I8},
        {"dtype", "U16", DSL_U16}, {"dtype", "I16", DSL_I16},
        {"dtype", "I32", DSL_I32}, {"dtype", "I64", DSL_I64}, {"dtype", "BOOL", DSL_BOOL},
        {"dtype", "F16", DSL_F16}, {"dtype", "F64", DSL_F64}, {"dtype", "U32", DSL_U32},
        {"dtype", "U64", DSL_U64}, {"dtype", "BF16", DSL_BF16},
        {"dtype", "F8E4M3FN", DSL_F8E4M3FN}, {"dtype", "F8E4M3FNUZ", DSL_F8E4M3FNUZ},
        {"dtype", "F8E5M2", DSL_F8E5M2}, {"dtype", "F8E5M2FNUZ", DSL_F8E5M2FNUZ},
        {"err", "OK", DSL_OK}, {"err", "UNKNOWN_OP", DSL_ERR_UNKNOWN_OP},
        {"err", "INDEX_RANGE", DSL_ERR_INDEX_RANGE}, {"err", "BAD_PARAM", DSL_ERR_BAD_PARAM},
        {"err", "NO_MEMORY", DSL_ERR_NO_MEMORY},
        {"family", "MISC", DSL_FAM_MISC}, {"family", "DATA", DSL_FAM_DATA},
        {"family", "ELTWISE", DSL_FAM_ELTWISE}, {"family", "REDUCE", DSL_FAM_REDUCE},
        {"family", "POOL", DSL_FAM_POOL}, {"family", "GEMM", DSL_FAM_GEMM},
        {"family", "SPARSE", DSL_FAM_SPARSE},
        {"family", "QUANT", DSL_FAM_QUANT},
        {"bias", "NONE", F32_GEMM_BIAS_NONE}, {"bias", "COL", F32_GEMM_BIAS_COL},
        {"bias", "ROW", F32_GEMM_BIAS_ROW},
        {"isa", "GENERIC", DSL_ISA_GENERIC}, {"isa", "AVX2", DSL_ISA_AVX2}, {"isa", "AVX512", DSL_ISA_AVX512},
    };
    static const int64_t dsl_n_codes = sizeof(dsl_codes) / sizeof(dsl_code);
    static int64_t dsl_step_params_offset(void) { return (int64_t)offsetof(dsl_step, params); }

    /* the vector primitives of each form, run by tests/test_simd.py */
    #define DSL_SIMD_TEMPLATE "dsl_simd_selftest_tmpl.h"
    #include "dsl_simd_forms.h"
    #ifdef DSL_SIMD_X86
    static int dsl_simd_selftest(int form, const float* a, const float* b, const float* c,
                                 int64_t n, float* out, float* scal) {
        switch (form) {
        case DSL_FORM_AVX2: dsl_simd_selftest__avx2(a, b, c, n, out, scal); return 8;
        case DSL_FORM_AVX512: dsl_simd_selftest__avx512(a, b, c, n, out, scal); return 16;
        case DSL_FORM_AVX512_ON_AVX2: dsl_simd_selftest__avx512_on_avx2(a, b, c, n, out, scal); return 16;
        default: return 0;
        }
    }
    #else
    static int dsl_simd_selftest(int form, const float* a, const float* b, const float* c,
                                 int64_t n, float* out, float* scal) { return 0; }
    #endif
    static int64_t dsl_step_size(void) { return (int64_t)sizeof(dsl_step); }
    static int64_t dsl_dtype_size_of(int64_t code) { return dsl_dtype_size((int)code); }
    """
    ctypedef struct dsl_field_info:
        const char* name
        int64_t offset, size, count, is_float
    ctypedef struct dsl_struct_info:
        const char* name
        int64_t size
        const dsl_field_info* fields
        int64_t nfields
    ctypedef struct dsl_code:
        const char* table
        const char* name
        int64_t value
    const dsl_struct_info* dsl_param_structs
    const int64_t dsl_n_param_structs
    const dsl_code* dsl_codes
    const int64_t dsl_n_codes
    int64_t dsl_step_params_offset()
    int dsl_simd_selftest(int form, const float* a, const float* b, const float* c, int64_t n,
                          float* out, float* scal) nogil
    int dsl_isa_hardware()
    int64_t dsl_step_size()
    int64_t dsl_dtype_size_of(int64_t code)
    int DSL_PARAM_BYTES


def param_layouts():
    """{struct name: (sizeof, [(field, offset, element size, count, is_float), ...])}"""
    cdef int64_t k, j
    out = {}
    for k in range(dsl_n_param_structs):
        st = dsl_param_structs[k]
        out[st.name.decode()] = (int(st.size), [
            (st.fields[j].name.decode(), int(st.fields[j].offset), int(st.fields[j].size),
             int(st.fields[j].count), bool(st.fields[j].is_float)) for j in range(st.nfields)])
    return out


def code_tables():
    """{table: {name: value}} of every code shared with Python (op ids, activations, ...)."""
    cdef int64_t k
    out = {}
    for k in range(dsl_n_codes):
        out.setdefault(dsl_codes[k].table.decode(), {})[dsl_codes[k].name.decode()] = int(dsl_codes[k].value)
    return out


SELFTEST_OPS = 39   # rows of per-lane results; row 39.. holds the masked-tail rows


def simd_selftest(int form, a, b, c):
    """Run every vector primitive of kernel ``form`` (1 avx2, 2 avx512, 3 avx512_on_avx2)
    over float32 arrays a, b, c of one length n (a multiple of 16, >= 272). Returns (lanes,
    out[40, n], scal[n // lanes, 4]): see csrc/dsl_simd_selftest_tmpl.h."""
    import numpy as np
    cdef int need = 2 if form == 2 else 1
    if form not in (1, 2, 3):
        raise ValueError(f"no vector form {form}")
    if dsl_isa_hardware() < need:
        raise ValueError(f"kernel form {form} cannot run on this CPU")
    cdef const float[::1] av = np.ascontiguousarray(a, np.float32)
    cdef const float[::1] bv = np.ascontiguousarray(b, np.float32)
    cdef const float[::1] cv = np.ascontiguousarray(c, np.float32)
    cdef int64_t n = av.shape[0]
    if bv.shape[0] != n or cv.shape[0] != n or n % 16 or n < 17 * 16:
        raise ValueError("a, b, c need one length, a multiple of 16 and at least 272")
    out = np.full((SELFTEST_OPS + 1, n), np.nan, np.float32)
    scal = np.full((n // 8, 4), np.nan, np.float32)
    cdef float[:, ::1] ov = out
    cdef float[:, ::1] sv = scal
    cdef int lanes
    with nogil:
        lanes = dsl_simd_selftest(form, &av[0], &bv[0], &cv[0], n, &ov[0, 0], &sv[0, 0])
    return lanes, out, scal[: n // lanes]


def step_layout():
    """(sizeof(dsl_step), offsetof(dsl_step, params), DSL_PARAM_BYTES)"""
    return int(dsl_step_size()), int(dsl_step_params_offset()), int(DSL_PARAM_BYTES)


def dtype_size(int64_t code):
    """Bytes per element of dtype ``code`` as the kernels see it (0: unknown code)."""
    return int(dsl_dtype_size_of(code))
