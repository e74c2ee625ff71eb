/* The parameters of every step, as typed records: one C struct per sub-op (or per family
 * where the sub-ops share a layout), mirrored field by field by a NumPy structured dtype in
 * deepsparse_lite/step_params.py. A lowering fills a record by field name; a kernel reads
 * `(const dsl_<x>_params*)s->params`. Adding or reordering a field changes both sides by
 * name, never an index, and tests/test_step_params.py compares every struct's size, every
 * field's offset, size and count, and every code table between C and Python.
 *
 * Each struct is written once as an X-macro list of fields,
 *     F(type, name)          one field
 *     A(type, name, count)   a fixed-size array
 * from which both the struct and its field table (dsl_params_layouts() in
 * kernels/abi.pyx) are generated, so they cannot disagree.
 *
 * Conventions: sizes and strides are int64; "level" is the plan's ISA level (0 generic,
 * 1 avx2, 2 avx512) the step was compiled for (packing / kernel form); tensor "slots" index
 * the step's t[] (-1: absent).
 */
#ifndef DSL_PARAMS_H
#define DSL_PARAMS_H
#include <stddef.h>
#include <stdint.h>

#define DSL_PARAM_BYTES 608
#define DSL_MAX_NDIM 8

/* Kernel ids: family * 100 + sub-op (the ops' *Op classes mirror them; a test checks). */
#define DSL_OPS(X)                                                                            \
    X(COPY, 101) X(FILL, 102) X(GATHER, 103) X(GATHER_ELEMENTS, 104) X(RESIZE_NEAREST, 105)   \
    X(RESIZE_LINEAR, 106)                                                                     \
    X(UNARY_F32, 201) X(UNARY_F64, 202) X(UNARY_INT, 203) X(NOT, 204) X(BINARY, 205)          \
    X(WHERE, 206) X(CAST, 207)                                                                \
    X(REDUCE, 301) X(ARG, 302) X(TOPK, 303) X(SOFTMAX, 304) X(LAYERNORM, 305) X(AFFINE, 306)  \
    X(BN_PREP, 307) X(LRN, 308) X(INSTNORM, 309)                                              \
    X(POOL2D, 401) X(MAXPOOL2D_IDX, 402)                                                      \
    X(GEMM, 501) X(MATMUL, 502) X(CONV, 503) X(DWCONV, 504) X(CONVT, 505) X(WINO, 506)        \
    X(SPMM_GEMM, 601) X(SPMM_CONV, 602)                                                       \
    X(QUANTIZE, 701) X(DEQUANTIZE, 702) X(DYNQUANT, 703) X(QGEMM, 704) X(QCONV, 705) X(QCONVCW, 706) X(QADD, 707) X(EWCHAIN, 708)
#define DSL_OP_ENUM(name, value) DSL_OP_##name = value,
enum { DSL_OPS(DSL_OP_ENUM) DSL_OP_END_ };

#define DSL_DECL_F(type, name) type name;
#define DSL_DECL_A(type, name, count) type name[count];
#define DSL_DEFINE_PARAMS(tname, FIELDS)                                                      \
    typedef struct { FIELDS(DSL_DECL_F, DSL_DECL_A) } tname;                                  \
    _Static_assert(sizeof(tname) <= DSL_PARAM_BYTES, #tname " does not fit a step");

/* ---- family 1: data movement (kernels/data.pyx) --------------------------------------- */

/* COPY: an N-d strided copy; strides and offsets in bytes, arrays zero padded */
#define DSL_COPY_FIELDS(F, A)                                                                 \
    F(int64_t, ndim) F(int64_t, esz) A(int64_t, shape, DSL_MAX_NDIM)                          \
    A(int64_t, src_strides, DSL_MAX_NDIM) A(int64_t, dst_strides, DSL_MAX_NDIM)               \
    F(int64_t, src_offset) F(int64_t, dst_offset) F(int64_t, level)
DSL_DEFINE_PARAMS(dsl_copy_params, DSL_COPY_FIELDS)

/* FILL: nbytes of dst (from dst_offset) set to the esz-byte pattern `bits` */
#define DSL_FILL_FIELDS(F, A) F(int64_t, nbytes) F(int64_t, esz) F(int64_t, bits) F(int64_t, dst_offset)
DSL_DEFINE_PARAMS(dsl_fill_params, DSL_FILL_FIELDS)

/* GATHER: data as [outer, axis_len, inner bytes] -> dst [outer, n_idx, inner bytes] */
#define DSL_GATHER_FIELDS(F, A)                                                               \
    F(int64_t, outer) F(int64_t, axis_len) F(int64_t, inner_bytes) F(int64_t, n_idx)          \
    F(int64_t, index_dtype)
DSL_DEFINE_PARAMS(dsl_gather_params, DSL_GATHER_FIELDS)

/* GATHER_ELEMENTS: dst and indices share `shape`; data_strides in bytes */
#define DSL_GATHER_ELEMENTS_FIELDS(F, A)                                                      \
    F(int64_t, ndim) F(int64_t, esz) F(int64_t, index_dtype) F(int64_t, axis)                 \
    F(int64_t, axis_len) A(int64_t, shape, DSL_MAX_NDIM) A(int64_t, data_strides, DSL_MAX_NDIM)
DSL_DEFINE_PARAMS(dsl_gather_elements_params, DSL_GATHER_ELEMENTS_FIELDS)

/* RESIZE_NEAREST: per output dim, a table of source byte offsets starting at table_start */
#define DSL_RESIZE_NEAREST_FIELDS(F, A)                                                       \
    F(int64_t, ndim) F(int64_t, esz) A(int64_t, out_shape, DSL_MAX_NDIM)                      \
    A(int64_t, table_start, DSL_MAX_NDIM)
DSL_DEFINE_PARAMS(dsl_resize_nearest_params, DSL_RESIZE_NEAREST_FIELDS)

/* RESIZE_LINEAR: f32 [outer, H, W] -> [outer, OH, OW]; ws_floats per thread (>= 2 OW),
 * ws_threads: how many threads the workspace covers */
#define DSL_RESIZE_LINEAR_FIELDS(F, A)                                                        \
    F(int64_t, outer) F(int64_t, H) F(int64_t, W) F(int64_t, OH) F(int64_t, OW)               \
    F(int64_t, ws_floats) F(int64_t, ws_threads)
DSL_DEFINE_PARAMS(dsl_resize_linear_params, DSL_RESIZE_LINEAR_FIELDS)

/* ---- family 2: elementwise (kernels/eltwise.pyx, csrc/eltwise.h) ---------------------- */

/* One layout for the family. Broadcasting steps walk `shape` (ndim merged dims, n
 * elements) with per-input element strides strides[k * 8 + d] (0 on broadcast dims).
 * fn: unary / binary function code; dtype: operand dtype (CAST: source); out_dtype: CAST's
 * destination; saturate: CAST's float8 saturation (ONNX `saturate`, 0 / 1); esz: WHERE's
 * element size; a, b: a unary function's float attributes. */
#define DSL_ELTWISE_FIELDS(F, A)                                                              \
    F(int64_t, fn) F(int64_t, dtype) F(int64_t, out_dtype) F(int64_t, saturate)               \
    F(int64_t, esz) F(int64_t, level)                                                         \
    F(int64_t, ndim) F(int64_t, n) A(int64_t, shape, DSL_MAX_NDIM)                            \
    A(int64_t, strides, 3 * DSL_MAX_NDIM) F(float, a) F(float, b)
DSL_DEFINE_PARAMS(dsl_eltwise_params, DSL_ELTWISE_FIELDS)

/* ---- family 3: reductions and normalisations (kernels/reduce.pyx) --------------------- */
/* Every op is normalised to a contiguous [outer, n, inner] layout (n: the reduced extent). */

#define DSL_REDUCE_FIELDS(F, A)                                                               \
    F(int64_t, kind) F(int64_t, dtype) F(int64_t, outer) F(int64_t, n) F(int64_t, inner)      \
    F(int64_t, level) F(float, scale)
DSL_DEFINE_PARAMS(dsl_reduce_params, DSL_REDUCE_FIELDS)

#define DSL_ARG_FIELDS(F, A)                                                                  \
    F(int64_t, is_min) F(int64_t, dtype) F(int64_t, outer) F(int64_t, n) F(int64_t, inner)    \
    F(int64_t, select_last) F(int64_t, level)
DSL_DEFINE_PARAMS(dsl_arg_params, DSL_ARG_FIELDS)

#define DSL_TOPK_FIELDS(F, A)                                                                 \
    F(int64_t, dtype) F(int64_t, outer) F(int64_t, n) F(int64_t, inner) F(int64_t, k)         \
    F(int64_t, largest)
DSL_DEFINE_PARAMS(dsl_topk_params, DSL_TOPK_FIELDS)

#define DSL_SOFTMAX_FIELDS(F, A)                                                              \
    F(int64_t, log) F(int64_t, outer) F(int64_t, n) F(int64_t, inner) F(int64_t, level)
DSL_DEFINE_PARAMS(dsl_softmax_params, DSL_SOFTMAX_FIELDS)

/* absent optional outputs / bias: their has_* flag is 0 (the slot holds any tensor) */
#define DSL_LAYERNORM_FIELDS(F, A)                                                            \
    F(int64_t, outer) F(int64_t, n) F(int64_t, has_bias) F(int64_t, has_mean)                 \
    F(int64_t, has_inv_std) F(int64_t, level) F(float, epsilon)
DSL_DEFINE_PARAMS(dsl_layernorm_params, DSL_LAYERNORM_FIELDS)

/* AFFINE: y[o, c, j] = x[o, c, j] * ab[c] + ab[C + c] */
#define DSL_AFFINE_FIELDS(F, A) F(int64_t, outer) F(int64_t, C) F(int64_t, inner) F(int64_t, level)
DSL_DEFINE_PARAMS(dsl_affine_params, DSL_AFFINE_FIELDS)

#define DSL_BN_PREP_FIELDS(F, A) F(int64_t, C) F(float, epsilon)
DSL_DEFINE_PARAMS(dsl_bn_prep_params, DSL_BN_PREP_FIELDS)

#define DSL_LRN_FIELDS(F, A)                                                                  \
    F(int64_t, N) F(int64_t, C) F(int64_t, inner) F(int64_t, size)                            \
    F(float, alpha) F(float, beta) F(float, bias)
DSL_DEFINE_PARAMS(dsl_lrn_params, DSL_LRN_FIELDS)

#define DSL_INSTNORM_FIELDS(F, A)                                                             \
    F(int64_t, rows) F(int64_t, n) F(int64_t, C) F(int64_t, level) F(float, epsilon)
DSL_DEFINE_PARAMS(dsl_instnorm_params, DSL_INSTNORM_FIELDS)

/* ---- family 4: pooling (kernels/pool.pyx) ---------------------------------------------- */

/* POOL2D and MAXPOOL2D_IDX. Wp = (OW - 1) * SW + (KW - 1) * DW + 1: row buffer floats;
 * ws_threads row buffers of ws_stride floats (>= Wp + 1) in the workspace (POOL2D);
 * storage_order: MaxPool's Indices layout (MAXPOOL2D_IDX) */
#define DSL_POOL_FIELDS(F, A)                                                                 \
    F(int64_t, avg) F(int64_t, planes) F(int64_t, H) F(int64_t, W) F(int64_t, OH)             \
    F(int64_t, OW) F(int64_t, KH) F(int64_t, KW) F(int64_t, SH) F(int64_t, SW)                \
    F(int64_t, pad_top) F(int64_t, pad_left) F(int64_t, DH) F(int64_t, DW) F(int64_t, Wp)     \
    F(int64_t, level) F(int64_t, ws_threads) F(int64_t, ws_stride) F(int64_t, storage_order)    \
    F(int64_t, q8)
DSL_DEFINE_PARAMS(dsl_pool_params, DSL_POOL_FIELDS)

/* ---- family 5: GEMM, MatMul, Conv (kernels/gemm.pyx) ---------------------------------- */

/* One layout for the family: the GEMM header, then each sub-op's own fields.
 *   Y = act(alpha * A·B + bias + beta * D); mc/kc/nc: cache blocking (mc % MR == 0,
 *   nc % NR == 0); bias_mode 0 none / 1 per column / 2 per row; bias_slot, d_slot,
 *   ws_slot: t[] slots (-1 absent); ws_bytes per thread, for ws_threads threads.
 *   GEMM:   rsa, csa, rsc               MATMUL: rsa, csa, rsb, csb, rsc, nb batch dims of
 *   batch[], with per-operand batch strides sa / sb / sc / sd (0 = broadcast)
 *   CONV / DWCONV / CONVT: the NCHW geometry (1-D as H = 1); direct: 1x1 stride 1 unpadded
 *   (CONV reads X as B); pixel_rows: CONV with the pixels as the tile's rows, W^T packed as
 *   B (f32_conv_pixel_rows); CONVT: co_chunk output channels per work item, nchunks per group,
 *   col_floats: its column buffer at the front of each thread's workspace.
 *   bf16: GEMM (B) / CONV (A) with the constant operand in csrc/bf16_gemm.h's bfloat16
 *   layout, the other rounded to bfloat16 when packed, mc / nc multiples of 32 (the
 *   precision="bf16" option).
 *   DWCONV with ex_rows > 0: a 1x1 conv fused in front (compiler/passes.py fuse_expand_dw):
 *   t[0] is its input [images][K][H][W], t[ex_slot] its weights packed as A (pack_a, M =
 *   the depthwise channels, K its input channels), t[ex_bias_slot] (-1 absent) its bias,
 *   ex_act / ex_act_a / ex_act_b its activation, mc / kc / nc its blocking; work items are
 *   (image, band of ex_rows output rows, block of ex_cb channels, a multiple of MR), each
 *   computing its expanded rows into the thread's workspace: [dw padded plane][ex_cb x
 *   band rows x W expanded floats][GEMM B panel]. */
#define DSL_GEMM_FIELDS(F, A)                                                                 \
    F(int64_t, level) F(int64_t, M) F(int64_t, N) F(int64_t, K)                               \
    F(int64_t, mc) F(int64_t, kc) F(int64_t, nc) F(int64_t, act) F(int64_t, bias_mode)        \
    F(int64_t, bias_slot) F(int64_t, d_slot) F(int64_t, rsd) F(int64_t, csd)                  \
    F(int64_t, ws_slot) F(int64_t, ws_bytes) F(int64_t, ws_threads)                           \
    F(int64_t, rsa) F(int64_t, csa) F(int64_t, rsb) F(int64_t, csb) F(int64_t, rsc)           \
    F(int64_t, nb) A(int64_t, batch, 4) A(int64_t, sa, 4) A(int64_t, sb, 4) A(int64_t, sc, 4) \
    A(int64_t, sd, 4)                                                                         \
    F(int64_t, images) F(int64_t, groups) F(int64_t, Cin) F(int64_t, H) F(int64_t, W)         \
    F(int64_t, Cout) F(int64_t, OH) F(int64_t, OW) F(int64_t, KH) F(int64_t, KW)              \
    F(int64_t, SH) F(int64_t, SW) F(int64_t, PH) F(int64_t, PW) F(int64_t, DH) F(int64_t, DW) \
    F(int64_t, direct) F(int64_t, co_chunk) F(int64_t, nchunks) F(int64_t, col_floats)        \
    F(int64_t, pixel_rows) F(int64_t, co_parts) F(int64_t, bf16) F(float, alpha)             \
    F(float, beta) F(float, act_a) F(float, act_b)                                            \
    F(int64_t, ex_slot) F(int64_t, ex_bias_slot) F(int64_t, ex_act) F(int64_t, ex_rows)       \
    F(int64_t, ex_cb) F(float, ex_act_a) F(float, ex_act_b)
DSL_DEFINE_PARAMS(dsl_gemm_params, DSL_GEMM_FIELDS)

/* ---- family 6: sparse-weight GEMM and Conv (kernels/sparse.pyx, csrc/f32_spmm.h) ------ */

/* One layout for the family: Y = act(W·X + bias + beta * D) with W constant, CSR by output
 * row r in one byte blob (t[1]): R + 1 int32 row starts at 0, nnz float values at
 * off_vals, nnz uint16 columns at off_cols. bias_slot / d_slot / ws_slot: t[] slots (-1
 * absent); ws_bytes per thread, for ws_threads threads.
 *   SPMM_GEMM: t=[A, W, Y]; np tokens, A[t*rsa + k*csa], Y[t*rsc + r],
 *              D[t*rsd + r*csd] (strides may be 0)
 *   SPMM_CONV: t=[X, W, Y]; per image the NCHW geometry (1-D as H = 1), np = OH*OW;
 *              direct: 1 = 1x1 stride 1 unpadded (X read in place); 2 = stride 1 undilated
 *              k x k by shifted windows of a zero-padded copy (f32_spmm.h SHIFT: int32
 *              window offsets per nonzero at off_offs; the copy takes the first pad_bytes of
 *              the workspace, the threads' ws_bytes after it); 0 = im2col. D like Y */
#define DSL_SPMM_FIELDS(F, A)                                                                 \
    F(int64_t, level) F(int64_t, R) F(int64_t, K) F(int64_t, np) F(int64_t, nnz)              \
    F(int64_t, off_vals) F(int64_t, off_cols) F(int64_t, act) F(int64_t, bias_slot)           \
    F(int64_t, d_slot) F(int64_t, ws_slot) F(int64_t, ws_bytes) F(int64_t, ws_threads)        \
    F(int64_t, rsa) F(int64_t, csa) F(int64_t, rsc) F(int64_t, rsd) F(int64_t, csd)           \
    F(int64_t, images) F(int64_t, Cin) F(int64_t, H) F(int64_t, W) F(int64_t, OH)             \
    F(int64_t, OW) F(int64_t, KH) F(int64_t, KW) F(int64_t, SH) F(int64_t, SW) F(int64_t, PH) \
    F(int64_t, PW) F(int64_t, DH) F(int64_t, DW) F(int64_t, direct) F(int64_t, off_offs)     \
    F(int64_t, pad_bytes) F(float, beta) F(float, act_a) F(float, act_b)
DSL_DEFINE_PARAMS(dsl_spmm_params, DSL_SPMM_FIELDS)

/* ---- family 7: quantization and INT8 GEMM / Conv (kernels/quant.pyx) ------------------ */

/* QUANTIZE t=[x f32, scale f32, zp | -, y]; DEQUANTIZE t=[x, scale, zp | -, y f32]: data as
 * [outer, C, inner], scale / zp per channel c (C = 1: per tensor); zp_slot -1: zero point 0;
 * in_dtype / out_dtype: the quantized side's type code (U8, I8; DEQUANTIZE also I32).
 * DYNQUANT t=[x f32, y u8, y_scale f32, y_zp u8]: n elements.
 * QADD t=[a, b, prm f32[6] (sa, za, sb, zb, sy, zy), y]: n elements of one type (qdtype),
 * zp_slot = 1: Relu before the requantization (QLinearAdd; csrc/q8_quant.h).
 * EWCHAIN t=[x, program int32[C], y, ext...]: n elements; qdtype / outer: x's / y's type
 * (0 f32, 1 u8, 2 s8; csrc/q8_ewchain.h). */
#define DSL_QUANT_FIELDS(F, A)                                                                \
    F(int64_t, level) F(int64_t, qdtype) F(int64_t, outer) F(int64_t, C) F(int64_t, inner)    \
    F(int64_t, zp_slot) F(int64_t, n)
DSL_DEFINE_PARAMS(dsl_quant_params, DSL_QUANT_FIELDS)

/* QGEMM t=[A, Bpacked, colinfo, Y, (za), (ws)]; QCONV t=[X, Bpacked, colinfo, Y, (za), (ws)].
 * C[m, n] = sum_k (A - za)(B - zw[n]) (csrc/q8_gemm.h) then the epilogue out_mode (0 int32,
 * 1 fp32, 2 u8, 3 s8; zy, relu). colinfo: 5 rows of Np = ceil(N/16)*16 4-byte values
 * (int32 ibias, int32 cz, f32 mult, f32 fbias, int32 zw), per group for QCONV.
 * za: the activation zero point, from za_slot (a u8 / s8 tensor of one element) or za
 * (za_slot -1), a_signed: int8 activations. QGEMM: items GEMMs with A / Y item strides sa /
 * sc (elements; B shared), rsa, rsc, csc. QCONV: NCHW geometry, groups; M = OH*OW pixels,
 * N = Cout/groups, K = Cin/groups*KH*KW padded to Kp (a multiple of 4); each thread's
 * workspace (ws_bytes, ws_threads) holds mb column rows of Kp bytes.
 * QCONVCW t=[X, Wpacked, colinfo, Y, ws]: the channels-as-rows conv of csrc/q8_conv.h; K
 * in groups of 4 input channels (Kp = 4 * ceil(Cin/groups / 4) * KH * KW); ws holds the
 * interleaved input (xi_bytes) then ws_threads blocks of ws_bytes (the im2col of mb pixels;
 * none when direct: a 1x1 stride-1 unpadded conv reads the interleaved input in place);
 * cob: output channels per work unit (a multiple of 8). sparse: t[1] holds one int32 weight word
 * per nonzero k-group and t[5] = [groups][Cout/groups + 1] row pointers then the k-group
 * indices (csrc/q8_conv.h's group-sparse tile). tokens: X is [images][pixels][Cin] and Y
 * [images][pixels][Cout] (a MatMul's rows as a 1x1 conv's pixels; groups 1, direct). */
#define DSL_QGEMM_FIELDS(F, A)                                                                \
    F(int64_t, level) F(int64_t, M) F(int64_t, N) F(int64_t, K) F(int64_t, a_signed)          \
    F(int64_t, za) F(int64_t, za_slot) F(int64_t, row_zp) F(int64_t, out_mode) F(int64_t, zy) \
    F(int64_t, relu) F(int64_t, items) F(int64_t, sa) F(int64_t, sc) F(int64_t, rsa)          \
    F(int64_t, rsc) F(int64_t, csc) F(int64_t, ws_slot) F(int64_t, ws_bytes)                  \
    F(int64_t, ws_threads) F(int64_t, images) F(int64_t, groups) F(int64_t, Cin) F(int64_t, H) \
    F(int64_t, W) F(int64_t, Cout) F(int64_t, OH) F(int64_t, OW) F(int64_t, KH) F(int64_t, KW) \
    F(int64_t, SH) F(int64_t, SW) F(int64_t, PH) F(int64_t, PW) F(int64_t, DH) F(int64_t, DW) \
    F(int64_t, Kp) F(int64_t, mb) F(int64_t, xi_bytes) F(int64_t, direct) F(int64_t, cob) F(int64_t, sparse) F(int64_t, tokens)
DSL_DEFINE_PARAMS(dsl_qgemm_params, DSL_QGEMM_FIELDS)

/* ---- the struct table (kernels/abi.pyx exposes it to the tests) ------------------------ */
#define DSL_PARAM_STRUCTS(X)                                                                  \
    X(dsl_copy_params, DSL_COPY_FIELDS)                                                       \
    X(dsl_fill_params, DSL_FILL_FIELDS)                                                       \
    X(dsl_gather_params, DSL_GATHER_FIELDS)                                                   \
    X(dsl_gather_elements_params, DSL_GATHER_ELEMENTS_FIELDS)                                 \
    X(dsl_resize_nearest_params, DSL_RESIZE_NEAREST_FIELDS)                                   \
    X(dsl_resize_linear_params, DSL_RESIZE_LINEAR_FIELDS)                                     \
    X(dsl_eltwise_params, DSL_ELTWISE_FIELDS)                                                 \
    X(dsl_reduce_params, DSL_REDUCE_FIELDS)                                                   \
    X(dsl_arg_params, DSL_ARG_FIELDS)                                                         \
    X(dsl_topk_params, DSL_TOPK_FIELDS)                                                       \
    X(dsl_softmax_params, DSL_SOFTMAX_FIELDS)                                                 \
    X(dsl_layernorm_params, DSL_LAYERNORM_FIELDS)                                             \
    X(dsl_affine_params, DSL_AFFINE_FIELDS)                                                   \
    X(dsl_bn_prep_params, DSL_BN_PREP_FIELDS)                                                 \
    X(dsl_lrn_params, DSL_LRN_FIELDS)                                                         \
    X(dsl_instnorm_params, DSL_INSTNORM_FIELDS)                                               \
    X(dsl_pool_params, DSL_POOL_FIELDS)                                                       \
    X(dsl_gemm_params, DSL_GEMM_FIELDS)                                                       \
    X(dsl_spmm_params, DSL_SPMM_FIELDS)                                                     \
    X(dsl_quant_params, DSL_QUANT_FIELDS)                                                     \
    X(dsl_qgemm_params, DSL_QGEMM_FIELDS)

#define DSL_PARAMS_OF(type, step) ((const type*)(const void*)(step)->params)
#endif
