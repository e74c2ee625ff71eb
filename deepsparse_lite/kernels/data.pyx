"""Data-movement kernels (family 1): strided copy, fill, gather, resize.

Most data-movement ops are lowered to COPY (ops/datamove.py computes merged byte strides at
compile time): Transpose, Slice, Concat (one COPY per input), Split, Expand and Tile (zero
source strides), Pad (FILL + COPY; edge / reflect / wrap as COPYs with zero or negative
source strides inside the output), DepthToSpace, SpaceToDepth. Only index-driven ops have
their own kernels.

Sub-ops and their parameter records (csrc/dsl_params.h; strides and offsets in bytes,
arrays of 8 zero padded):

  COPY            t=[src, dst]  dsl_copy_params: ndim (1..8), esz, shape, src_strides,
                  dst_strides, src_offset, dst_offset, level (>= 1: AVX2 transpose tiles)
  FILL            t=[dst]  dsl_fill_params: nbytes, esz (1, 2, 4, 8), bits (the value's bit pattern),
                  dst_offset
  GATHER          t=[data, indices, dst]  dsl_gather_params: data as [outer, axis_len,
                  inner_bytes], dst as [outer, n_idx, inner_bytes], index_dtype (I32 / I64)
                  -> DSL_ERR_INDEX_RANGE if an index is outside [-axis_len, axis_len)
  GATHER_ELEMENTS t=[data, indices, dst]  dsl_gather_elements_params: ndim, esz,
                  index_dtype, axis, axis_len, shape (of dst and indices), data_strides
                  -> DSL_ERR_INDEX_RANGE on an out-of-range index
  RESIZE_NEAREST  t=[src, dst, table (int64 const)]  dsl_resize_nearest_params: ndim, esz,
                  out_shape, table_start (each dim's table in `table`, elements); table
                  entries are source byte offsets
  RESIZE_LINEAR   t=[src, dst, itab (int64 const), wtab (f32 const), workspace]; f32 only,
                  src [outer, H, W] -> dst [outer, OH, OW]  dsl_resize_linear_params: outer,
                  H, W, OH, OW, ws_floats per thread (>= 2*OW: two cached W-interpolated
                  rows), ws_threads covered; itab = [y0[OH], y1[OH], x0[OW], x1[OW]],
                  wtab = [wy0, wy1, wx0, wx1]

COPY takes a blocked-transpose path (8x8 tiles, AVX2 when the plan's level and the CPU allow)
when the innermost destination dim is contiguous, its source stride is not, and another dim
is contiguous in the source: the [1,S,H,D] -> [1,H,D,S] attention transposes. Otherwise rows
(all dims but the last) are split across threads, or, when there are fewer rows than
threads, each row is cut into per-thread segments.

Threads: every kernel asks dsl_threads_for(bytes moved, 64 KiB, nt), so small steps stay on
the calling thread. Index errors: GATHER checks all indices before reading anything;
GATHER_ELEMENTS checks each index before its read and counts failures across threads.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_ERR_INDEX_RANGE, DSL_I32, DSL_I64,
                                          DSL_FORM_AVX2, DSL_KV_TRANSPOSE, dsl_kv_form, dsl_hit,
                                          dsl_threads_for, run_ranges)
from deepsparse_lite.kernels.params cimport (dsl_copy_params, dsl_fill_params, dsl_gather_params,
                                             dsl_gather_elements_params, dsl_resize_nearest_params,
                                             dsl_resize_linear_params, DSL_OP_COPY, DSL_OP_FILL,
                                             DSL_OP_GATHER, DSL_OP_GATHER_ELEMENTS,
                                             DSL_OP_RESIZE_NEAREST, DSL_OP_RESIZE_LINEAR)
cdef extern from "dsl_copy.h" nogil:
    void dsl_copy_rows(const char* src, char* dst, int ndim, int64_t esz, const int64_t* shape,
                       const int64_t* ss, const int64_t* ds, int64_t lo, int64_t hi)
    void dsl_copy_row_segments(const char* src, char* dst, int ndim, int64_t esz,
                               const int64_t* shape, const int64_t* ss, const int64_t* ds,
                               int64_t nseg, int64_t lo, int64_t hi)
    void dsl_copy_transpose_items(const char* src, char* dst, int64_t esz, int nouter,
                                  const int64_t* oshape, const int64_t* oss, const int64_t* ods,
                                  int64_t nB, int64_t dB, int64_t nA, int64_t sA, int64_t lo,
                                  int64_t hi, int use_avx2)

cdef extern from "dsl_data.h" nogil:
    int dsl_gather_check(const char* idx, int64_t n, int is64, int64_t axis_len)
    void dsl_gather_rows(const char* data, const char* idx, char* dst, int is64, int64_t n_idx,
                         int64_t axis_len, int64_t inner_bytes, int64_t lo, int64_t hi)
    int64_t dsl_gather_elements_rows(const char* data, const char* idx, char* dst, int ndim,
                                     int64_t esz, int is64, int axis, int64_t axis_len,
                                     const int64_t* shape, const int64_t* ds, int64_t lo,
                                     int64_t hi)
    void dsl_resize_nearest_rows(const char* src, char* dst, int ndim, int64_t esz,
                                 const int64_t* oshape, const int64_t* tab, const int64_t* toff,
                                 int64_t lo, int64_t hi)
    void f32_resize_bilinear_rows(const float* src, float* dst, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW, const int64_t* iy, const int64_t* ix,
                                  const float* wy, const float* wx, float* ws, int64_t lo,
                                  int64_t hi)

DEF COPY_MIN_BYTES_PER_THREAD = 65536


cdef inline int threads_for_rows(int64_t bytes, int64_t rows, int nt) noexcept nogil:
    cdef int nth = dsl_threads_for(bytes, COPY_MIN_BYTES_PER_THREAD, nt)
    return <int>rows if nth > rows else nth


# ---- COPY ---------------------------------------------------------------------------------

cdef struct copy_ctx:
    const char* src
    char* dst
    int ndim
    int64_t esz
    const int64_t* shape
    const int64_t* ss
    const int64_t* ds
    int64_t nseg            # row segments per row (rows shorter than the thread count)
    # transpose tiles
    int nouter
    int64_t oshape[8]
    int64_t oss[8]
    int64_t ods[8]
    int bdim
    int use_avx2


cdef int64_t copy_rows_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const copy_ctx* x = <const copy_ctx*>vctx
    dsl_copy_rows(x.src, x.dst, x.ndim, x.esz, x.shape, x.ss, x.ds, lo, hi)
    return 0


cdef int64_t copy_segments_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const copy_ctx* x = <const copy_ctx*>vctx
    dsl_copy_row_segments(x.src, x.dst, x.ndim, x.esz, x.shape, x.ss, x.ds, x.nseg, lo, hi)
    return 0


cdef int64_t copy_transpose_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const copy_ctx* x = <const copy_ctx*>vctx
    dsl_copy_transpose_items(x.src, x.dst, x.esz, x.nouter, x.oshape, x.oss, x.ods,
                             x.shape[x.bdim], x.ds[x.bdim], x.shape[x.ndim - 1],
                             x.ss[x.ndim - 1], lo, hi, x.use_avx2)
    return 0


cdef int copy_transpose(copy_ctx* ctx, int level, const dsl_exec* x) noexcept nogil:
    """Tiled copy: dim ndim-1 is contiguous in dst, dim bdim is contiguous in src."""
    cdef int d, nth, form = dsl_kv_form(DSL_KV_TRANSPOSE, level, x.cap)
    cdef int64_t nitems = 1
    ctx.use_avx2 = form == DSL_FORM_AVX2
    dsl_hit(x, DSL_KV_TRANSPOSE, form)
    ctx.nouter = 0
    for d in range(ctx.ndim - 1):
        if d != ctx.bdim:
            ctx.oshape[ctx.nouter] = ctx.shape[d]
            ctx.oss[ctx.nouter] = ctx.ss[d]
            ctx.ods[ctx.nouter] = ctx.ds[d]
            nitems *= ctx.shape[d]
            ctx.nouter += 1
    nitems *= (ctx.shape[ctx.bdim] + 7) // 8
    nth = threads_for_rows(nitems * 8 * ctx.shape[ctx.ndim - 1] * ctx.esz, nitems, x.nt)
    run_ranges(x, copy_transpose_range, ctx, nitems, nth)
    return DSL_OK


cdef int copy_nd(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef const dsl_copy_params* q = <const dsl_copy_params*>s.params
    cdef copy_ctx ctx
    cdef int64_t outer = 1, total
    cdef int d, nth
    ctx.ndim = <int>q.ndim
    ctx.esz = q.esz
    ctx.shape = q.shape
    ctx.ss = q.src_strides
    ctx.ds = q.dst_strides
    ctx.src = p[s.t[0]] + q.src_offset
    ctx.dst = p[s.t[1]] + q.dst_offset
    if ctx.ndim < 1 or ctx.ndim > 8 or ctx.esz < 1:
        return DSL_ERR_BAD_PARAM
    for d in range(ctx.ndim - 1):
        outer *= ctx.shape[d]
    total = outer * ctx.shape[ctx.ndim - 1] * ctx.esz
    if total == 0:
        return DSL_OK
    # Transposed innermost pair: tile it so both sides read/write whole cache lines.
    if (ctx.ndim >= 2 and ctx.ds[ctx.ndim - 1] == ctx.esz and ctx.ss[ctx.ndim - 1] != ctx.esz
            and ctx.ss[ctx.ndim - 1] != 0 and ctx.shape[ctx.ndim - 1] >= 8):
        ctx.bdim = -1
        for d in range(ctx.ndim - 1):
            if ctx.ss[d] == ctx.esz and ctx.shape[d] >= 8:
                ctx.bdim = d
        if ctx.bdim >= 0:
            return copy_transpose(&ctx, <int>q.level, x)
    nth = dsl_threads_for(total, COPY_MIN_BYTES_PER_THREAD, x.nt)
    if nth > 1 and outer < nth:
        # fewer (long) rows than threads: cut every row into nth segments
        ctx.nseg = nth
        run_ranges(x, copy_segments_range, &ctx, outer * nth, nth)
    else:
        run_ranges(x, copy_rows_range, &ctx, outer, nth)
    return DSL_OK


# ---- FILL ---------------------------------------------------------------------------------

cdef int fill(const dsl_step* s, char** p) noexcept nogil:
    cdef const dsl_fill_params* q = <const dsl_fill_params*>s.params
    cdef int64_t nbytes = q.nbytes, esz = q.esz, k
    cdef int64_t bits = q.bits
    cdef char* dst = p[s.t[0]] + q.dst_offset
    cdef uint16_t v16
    cdef uint32_t v32
    cdef uint64_t v64
    if bits == 0 or esz == 1:
        memset(dst, <int>(bits & 0xff), <size_t>nbytes)
    elif esz == 2:   # float16, bfloat16, int16, uint16
        v16 = <uint16_t>bits
        for k in range(nbytes // 2):
            (<uint16_t*>dst)[k] = v16
    elif esz == 4:
        v32 = <uint32_t>bits
        for k in range(nbytes // 4):
            (<uint32_t*>dst)[k] = v32
    elif esz == 8:
        v64 = <uint64_t>bits
        for k in range(nbytes // 8):
            (<uint64_t*>dst)[k] = v64
    else:
        return DSL_ERR_BAD_PARAM
    return DSL_OK


# ---- GATHER / GATHER_ELEMENTS ---------------------------------------------------------------

cdef struct gather_ctx:
    const dsl_step* s
    const char* data
    const char* idx
    char* dst
    int is64


cdef int64_t gather_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const gather_ctx* x = <const gather_ctx*>vctx
    cdef const dsl_gather_params* q = <const dsl_gather_params*>x.s.params
    dsl_gather_rows(x.data, x.idx, x.dst, x.is64, q.n_idx, q.axis_len, q.inner_bytes, lo, hi)
    return 0


cdef int gather(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int nt = x.nt
    cdef const dsl_gather_params* q = <const dsl_gather_params*>s.params
    cdef gather_ctx ctx
    cdef int64_t rows = q.outer * q.n_idx
    if q.index_dtype != DSL_I64 and q.index_dtype != DSL_I32:
        return DSL_ERR_BAD_PARAM
    ctx.s = s
    ctx.data = p[s.t[0]]
    ctx.idx = p[s.t[1]]
    ctx.dst = p[s.t[2]]
    ctx.is64 = q.index_dtype == DSL_I64
    if rows == 0 or q.inner_bytes == 0:
        return DSL_OK
    # Check every index before any element is read: n_idx is small next to the copy.
    if dsl_gather_check(ctx.idx, q.n_idx, ctx.is64, q.axis_len):
        return DSL_ERR_INDEX_RANGE
    run_ranges(x, gather_range, &ctx, rows, threads_for_rows(rows * q.inner_bytes, rows, nt))
    return DSL_OK


cdef int64_t gather_elements_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const gather_ctx* x = <const gather_ctx*>vctx
    cdef const dsl_gather_elements_params* q = <const dsl_gather_elements_params*>x.s.params
    return dsl_gather_elements_rows(x.data, x.idx, x.dst, <int>q.ndim, q.esz, x.is64, <int>q.axis,
                                    q.axis_len, q.shape, q.data_strides, lo, hi)


cdef int gather_elements(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int nt = x.nt
    cdef const dsl_gather_elements_params* q = <const dsl_gather_elements_params*>s.params
    cdef gather_ctx ctx
    cdef int64_t rows = 1
    cdef int d
    if q.ndim < 1 or q.ndim > 8 or q.axis < 0 or q.axis >= q.ndim:
        return DSL_ERR_BAD_PARAM
    if q.index_dtype != DSL_I64 and q.index_dtype != DSL_I32:
        return DSL_ERR_BAD_PARAM
    for d in range(<int>q.ndim - 1):
        rows *= q.shape[d]
    if rows * q.shape[q.ndim - 1] == 0:
        return DSL_OK
    ctx.s = s
    ctx.data = p[s.t[0]]
    ctx.idx = p[s.t[1]]
    ctx.dst = p[s.t[2]]
    ctx.is64 = q.index_dtype == DSL_I64
    # every index is checked before its read; the bad ones are counted across threads
    if run_ranges(x, gather_elements_range, &ctx, rows,
                  threads_for_rows(rows * q.shape[q.ndim - 1] * 4, rows, nt)):
        return DSL_ERR_INDEX_RANGE
    return DSL_OK


# ---- RESIZE ---------------------------------------------------------------------------------

cdef struct resize_ctx:
    const dsl_step* s
    const char* src
    char* dst
    const int64_t* itab
    const float* wtab
    float* ws


cdef int64_t resize_nearest_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const resize_ctx* x = <const resize_ctx*>vctx
    cdef const dsl_resize_nearest_params* q = <const dsl_resize_nearest_params*>x.s.params
    dsl_resize_nearest_rows(x.src, x.dst, <int>q.ndim, q.esz, q.out_shape, x.itab, q.table_start,
                            lo, hi)
    return 0


cdef int resize_nearest(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int nt = x.nt
    cdef const dsl_resize_nearest_params* q = <const dsl_resize_nearest_params*>s.params
    cdef resize_ctx ctx
    cdef int64_t rows = 1
    cdef int d
    if q.ndim < 1 or q.ndim > 8:
        return DSL_ERR_BAD_PARAM
    for d in range(<int>q.ndim - 1):
        rows *= q.out_shape[d]
    if rows * q.out_shape[q.ndim - 1] == 0:
        return DSL_OK
    ctx.s = s
    ctx.src = p[s.t[0]]
    ctx.dst = p[s.t[1]]
    ctx.itab = <const int64_t*>p[s.t[2]]
    run_ranges(x, resize_nearest_range, &ctx, rows,
               threads_for_rows(rows * q.out_shape[q.ndim - 1] * q.esz, rows, nt))
    return DSL_OK


cdef int64_t resize_linear_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const resize_ctx* x = <const resize_ctx*>vctx
    cdef const dsl_resize_linear_params* q = <const dsl_resize_linear_params*>x.s.params
    f32_resize_bilinear_rows(<const float*>x.src, <float*>x.dst, q.H, q.W, q.OH, q.OW, x.itab,
                             x.itab + 2 * q.OH, x.wtab, x.wtab + 2 * q.OH,
                             x.ws + chunk * q.ws_floats, lo, hi)
    return 0


cdef int resize_linear(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int nt = x.nt
    cdef const dsl_resize_linear_params* q = <const dsl_resize_linear_params*>s.params
    cdef resize_ctx ctx
    cdef int64_t rows = q.outer * q.OH
    cdef int nth
    if q.ws_floats < 2 * q.OW or q.ws_threads < 1:
        return DSL_ERR_BAD_PARAM
    if rows * q.OW == 0:
        return DSL_OK
    # ~3 loads and 4 flops per output element: count it as 16 bytes of copy work.
    nth = threads_for_rows(rows * q.OW * 16, rows, nt)
    if nth > q.ws_threads:  # one cached-row workspace per thread
        nth = <int>q.ws_threads
    ctx.s = s
    ctx.src = p[s.t[0]]
    ctx.dst = p[s.t[1]]
    ctx.itab = <const int64_t*>p[s.t[2]]
    ctx.wtab = <const float*>p[s.t[3]]
    ctx.ws = <float*>p[s.t[4]]
    run_ranges(x, resize_linear_range, &ctx, rows, nth)
    return DSL_OK


cdef int run_data(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    if s.op == DSL_OP_COPY:
        return copy_nd(s, p, x)
    if s.op == DSL_OP_FILL:
        return fill(s, p)
    if s.op == DSL_OP_GATHER:
        return gather(s, p, x)
    if s.op == DSL_OP_GATHER_ELEMENTS:
        return gather_elements(s, p, x)
    if s.op == DSL_OP_RESIZE_NEAREST:
        return resize_nearest(s, p, x)
    if s.op == DSL_OP_RESIZE_LINEAR:
        return resize_linear(s, p, x)
    return DSL_ERR_UNKNOWN_OP
