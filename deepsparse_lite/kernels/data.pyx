"""Data-movement kernels (family 1): strided copy, fill, gather, resize.

Most data-movement ops are lowered to COPY (ops/datamove.py computes merged byte strides at
compile time): Transpose, Slice, Concat (one COPY per input), Split, Expand and Tile (zero
source strides), Pad (FILL + COPY; edge / reflect / wrap as COPYs with zero or negative
source strides inside the output), DepthToSpace, SpaceToDepth. Only index-driven ops have
their own kernels.

Sub-ops (op = 100 + sub). Strides and offsets are in bytes; arrays of 8 are zero-padded:

  1 COPY            t=[src, dst]
                    i[0] ndim (1..8), i[1] esz, i[2:10] shape, i[10:18] src strides,
                    i[18:26] dst strides, i[26] src byte offset, i[27] dst byte offset,
                    i[28] ISA level the plan was compiled for (>= 1: AVX2 transpose tiles)
  2 FILL            t=[dst]
                    i[0] nbytes, i[1] esz, i[2] bit pattern of the value, i[3] dst byte offset
  3 GATHER          t=[data, indices, dst]; data as [outer, axis_len, inner], dst as
                    [outer, n_idx, inner]
                    i[0] outer, i[1] axis_len, i[2] inner bytes, i[3] n_idx,
                    i[4] index dtype (DSL_I32 / DSL_I64)
                    -> DSL_ERR_INDEX_RANGE if an index is outside [-axis_len, axis_len)
  4 GATHER_ELEMENTS t=[data, indices, dst]; dst and indices share one shape
                    i[0] ndim, i[1] esz, i[2] index dtype, i[3] axis, i[4] axis_len,
                    i[5:13] output shape, i[13:21] data strides
                    -> DSL_ERR_INDEX_RANGE on an out-of-range index
  5 RESIZE_NEAREST  t=[src, dst, table (int64 const)]
                    i[0] ndim, i[1] esz, i[2:10] output shape, i[10:18] start of each dim's
                    table in `table` (elements); table entries are source byte offsets
  6 RESIZE_LINEAR   t=[src, dst, itab (int64 const), wtab (f32 const), workspace]; f32 only,
                    src [outer, H, W] -> dst [outer, OH, OW]
                    i[0] outer, i[1] H, i[2] W, i[3] OH, i[4] OW, i[5] workspace floats per
                    thread (>= 2*OW: two cached W-interpolated rows), i[6] threads covered
                    itab = [y0[OH], y1[OH], x0[OW], x1[OW]], wtab = [wy0, wy1, wx0, wx1]

COPY takes a blocked-transpose path (8x8 tiles, AVX2 when the plan's i[28] and the CPU allow)
when the innermost destination dim is contiguous, its source stride is not, and another dim
is contiguous in the source: the [1,S,H,D] -> [1,H,D,S] attention transposes. Otherwise rows
(all dims but the last) are split across threads, or, when there are fewer rows than
threads, each row is cut into per-thread segments.

Threads: every kernel asks dsl_threads_for(bytes moved, 64 KiB, nt), so small steps stay on
the calling thread. Index errors: GATHER checks all indices before reading anything;
GATHER_ELEMENTS checks each index before its read and counts failures across threads.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from cython.parallel cimport prange

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_ERR_INDEX_RANGE, DSL_I32, DSL_I64,
                                          DSL_FORM_AVX2, DSL_KV_TRANSPOSE, dsl_kv_form, dsl_hit,
                                          dsl_threads_for, dsl_chunk_lo)

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
DEF SUB_COPY = 1
DEF SUB_FILL = 2
DEF SUB_GATHER = 3
DEF SUB_GATHER_ELEMENTS = 4
DEF SUB_RESIZE_NEAREST = 5
DEF SUB_RESIZE_LINEAR = 6


cdef int copy_transpose(const char* src, char* dst, int ndim, int64_t esz, const int64_t* shape,
                        const int64_t* ss, const int64_t* ds, int bdim, int level,
                        const dsl_exec* x) noexcept nogil:
    """Tiled copy: dim ndim-1 is contiguous in dst, dim bdim is contiguous in src."""
    cdef int64_t oshape[8]
    cdef int64_t oss[8]
    cdef int64_t ods[8]
    cdef int nouter = 0, d, c, nth
    cdef int64_t nitems = 1, nbands
    cdef int form = dsl_kv_form(DSL_KV_TRANSPOSE, level, x.cap)
    cdef int use_avx2 = form == DSL_FORM_AVX2
    cdef int nt = x.nt
    dsl_hit(x, DSL_KV_TRANSPOSE, form)
    for d in range(ndim - 1):
        if d != bdim:
            oshape[nouter] = shape[d]
            oss[nouter] = ss[d]
            ods[nouter] = ds[d]
            nitems *= shape[d]
            nouter += 1
    nbands = (shape[bdim] + 7) // 8
    nitems *= nbands
    nth = dsl_threads_for(nitems * 8 * shape[ndim - 1] * esz, COPY_MIN_BYTES_PER_THREAD, nt)
    if nth > nitems:
        nth = <int>nitems
    if nth <= 1:
        dsl_copy_transpose_items(src, dst, esz, nouter, oshape, oss, ods, shape[bdim], ds[bdim],
                                 shape[ndim - 1], ss[ndim - 1], 0, nitems, use_avx2)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        dsl_copy_transpose_items(src, dst, esz, nouter, oshape, oss, ods, shape[bdim], ds[bdim],
                                 shape[ndim - 1], ss[ndim - 1], dsl_chunk_lo(nitems, c, nth),
                                 dsl_chunk_lo(nitems, c + 1, nth), use_avx2)
    return DSL_OK


cdef int copy_nd(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int nt = x.nt
    cdef int ndim = <int>s.i[0]
    cdef int64_t esz = s.i[1]
    cdef const int64_t* shape = &s.i[2]
    cdef const int64_t* ss = &s.i[10]
    cdef const int64_t* ds = &s.i[18]
    cdef const char* src = p[s.t[0]] + s.i[26]
    cdef char* dst = p[s.t[1]] + s.i[27]
    cdef int64_t outer = 1, total, nitems
    cdef int d, c, nth, bdim
    if ndim < 1 or ndim > 8 or esz < 1:
        return DSL_ERR_BAD_PARAM
    for d in range(ndim - 1):
        outer *= shape[d]
    total = outer * shape[ndim - 1] * esz
    if total == 0:
        return DSL_OK
    # Transposed innermost pair: tile it so both sides read/write whole cache lines.
    if (ndim >= 2 and ds[ndim - 1] == esz and ss[ndim - 1] != esz and ss[ndim - 1] != 0
            and shape[ndim - 1] >= 8):
        bdim = -1
        for d in range(ndim - 1):
            if ss[d] == esz and shape[d] >= 8:
                bdim = d
        if bdim >= 0:
            return copy_transpose(src, dst, ndim, esz, shape, ss, ds, bdim, <int>s.i[28], x)
    nth = dsl_threads_for(total, COPY_MIN_BYTES_PER_THREAD, nt)
    if nth <= 1:
        dsl_copy_rows(src, dst, ndim, esz, shape, ss, ds, 0, outer)
        return DSL_OK
    if outer < nth:
        # fewer (long) rows than threads: cut every row into nth segments
        nitems = outer * nth
        for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
            dsl_copy_row_segments(src, dst, ndim, esz, shape, ss, ds, nth,
                                  dsl_chunk_lo(nitems, c, nth), dsl_chunk_lo(nitems, c + 1, nth))
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        dsl_copy_rows(src, dst, ndim, esz, shape, ss, ds,
                      dsl_chunk_lo(outer, c, nth), dsl_chunk_lo(outer, c + 1, nth))
    return DSL_OK


cdef int fill(const dsl_step* s, char** p, int nt) noexcept nogil:
    cdef int64_t nbytes = s.i[0], esz = s.i[1], k
    cdef int64_t bits = s.i[2]
    cdef char* dst = p[s.t[0]] + s.i[3]
    cdef uint32_t v32
    cdef uint64_t v64
    if bits == 0 or esz == 1:
        memset(dst, <int>(bits & 0xff), <size_t>nbytes)
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


cdef int gather(const dsl_step* s, char** p, int nt) noexcept nogil:
    cdef const char* data = p[s.t[0]]
    cdef const char* idx = p[s.t[1]]
    cdef char* dst = p[s.t[2]]
    cdef int64_t outer = s.i[0], axis_len = s.i[1], inner = s.i[2], n_idx = s.i[3]
    cdef int is64 = s.i[4] == DSL_I64
    cdef int64_t rows = outer * n_idx
    cdef int c, nth
    if s.i[4] != DSL_I64 and s.i[4] != DSL_I32:
        return DSL_ERR_BAD_PARAM
    if rows == 0 or inner == 0:
        return DSL_OK
    # Check every index before any element is read: n_idx is small next to the copy.
    if dsl_gather_check(idx, n_idx, is64, axis_len):
        return DSL_ERR_INDEX_RANGE
    nth = dsl_threads_for(rows * inner, COPY_MIN_BYTES_PER_THREAD, nt)
    if nth > rows:
        nth = <int>rows
    if nth <= 1:
        dsl_gather_rows(data, idx, dst, is64, n_idx, axis_len, inner, 0, rows)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        dsl_gather_rows(data, idx, dst, is64, n_idx, axis_len, inner,
                        dsl_chunk_lo(rows, c, nth), dsl_chunk_lo(rows, c + 1, nth))
    return DSL_OK


cdef int gather_elements(const dsl_step* s, char** p, int nt) noexcept nogil:
    cdef const char* data = p[s.t[0]]
    cdef const char* idx = p[s.t[1]]
    cdef char* dst = p[s.t[2]]
    cdef int ndim = <int>s.i[0]
    cdef int64_t esz = s.i[1]
    cdef int is64 = s.i[2] == DSL_I64
    cdef int axis = <int>s.i[3]
    cdef int64_t axis_len = s.i[4]
    cdef const int64_t* shape = &s.i[5]
    cdef const int64_t* ds = &s.i[13]
    cdef int64_t rows = 1, bad = 0
    cdef int d, c, nth
    if ndim < 1 or ndim > 8 or axis < 0 or axis >= ndim:
        return DSL_ERR_BAD_PARAM
    if s.i[2] != DSL_I64 and s.i[2] != DSL_I32:
        return DSL_ERR_BAD_PARAM
    for d in range(ndim - 1):
        rows *= shape[d]
    if rows * shape[ndim - 1] == 0:
        return DSL_OK
    nth = dsl_threads_for(rows * shape[ndim - 1] * 4, COPY_MIN_BYTES_PER_THREAD, nt)
    if nth > rows:
        nth = <int>rows
    if nth <= 1:
        bad = dsl_gather_elements_rows(data, idx, dst, ndim, esz, is64, axis, axis_len, shape, ds,
                                       0, rows)
    else:
        for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
            bad += dsl_gather_elements_rows(data, idx, dst, ndim, esz, is64, axis, axis_len, shape,
                                            ds, dsl_chunk_lo(rows, c, nth),
                                            dsl_chunk_lo(rows, c + 1, nth))
    return DSL_ERR_INDEX_RANGE if bad else DSL_OK


cdef int resize_nearest(const dsl_step* s, char** p, int nt) noexcept nogil:
    cdef const char* src = p[s.t[0]]
    cdef char* dst = p[s.t[1]]
    cdef const int64_t* tab = <const int64_t*>p[s.t[2]]
    cdef int ndim = <int>s.i[0]
    cdef int64_t esz = s.i[1]
    cdef const int64_t* oshape = &s.i[2]
    cdef const int64_t* toff = &s.i[10]
    cdef int64_t rows = 1
    cdef int d, c, nth
    if ndim < 1 or ndim > 8:
        return DSL_ERR_BAD_PARAM
    for d in range(ndim - 1):
        rows *= oshape[d]
    if rows * oshape[ndim - 1] == 0:
        return DSL_OK
    nth = dsl_threads_for(rows * oshape[ndim - 1] * esz, COPY_MIN_BYTES_PER_THREAD, nt)
    if nth > rows:
        nth = <int>rows
    if nth <= 1:
        dsl_resize_nearest_rows(src, dst, ndim, esz, oshape, tab, toff, 0, rows)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        dsl_resize_nearest_rows(src, dst, ndim, esz, oshape, tab, toff,
                                dsl_chunk_lo(rows, c, nth), dsl_chunk_lo(rows, c + 1, nth))
    return DSL_OK


cdef int resize_linear(const dsl_step* s, char** p, int nt) noexcept nogil:
    cdef const float* src = <const float*>p[s.t[0]]
    cdef float* dst = <float*>p[s.t[1]]
    cdef const int64_t* itab = <const int64_t*>p[s.t[2]]
    cdef const float* wtab = <const float*>p[s.t[3]]
    cdef float* ws = <float*>p[s.t[4]]
    cdef int64_t outer = s.i[0], H = s.i[1], W = s.i[2], OH = s.i[3], OW = s.i[4]
    cdef int64_t ws_stride = s.i[5]
    cdef int64_t rows = outer * OH
    cdef int c, nth
    if ws_stride < 2 * OW or s.i[6] < 1:
        return DSL_ERR_BAD_PARAM
    if rows * OW == 0:
        return DSL_OK
    # ~3 loads and 4 flops per output element: count it as 16 bytes of copy work.
    nth = dsl_threads_for(rows * OW * 16, COPY_MIN_BYTES_PER_THREAD, nt)
    if nth > rows:
        nth = <int>rows
    if nth > s.i[6]:  # one cached-row workspace per thread
        nth = <int>s.i[6]
    if nth <= 1:
        f32_resize_bilinear_rows(src, dst, H, W, OH, OW, itab, itab + 2 * OH, wtab, wtab + 2 * OH,
                                 ws, 0, rows)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        f32_resize_bilinear_rows(src, dst, H, W, OH, OW, itab, itab + 2 * OH, wtab, wtab + 2 * OH,
                                 ws + c * ws_stride, dsl_chunk_lo(rows, c, nth),
                                 dsl_chunk_lo(rows, c + 1, nth))
    return DSL_OK


cdef int run_data(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int sub = s.op % 100, nt = x.nt
    if sub == SUB_COPY:
        return copy_nd(s, p, x)
    if sub == SUB_FILL:
        return fill(s, p, nt)
    if sub == SUB_GATHER:
        return gather(s, p, nt)
    if sub == SUB_GATHER_ELEMENTS:
        return gather_elements(s, p, nt)
    if sub == SUB_RESIZE_NEAREST:
        return resize_nearest(s, p, nt)
    if sub == SUB_RESIZE_LINEAR:
        return resize_linear(s, p, nt)
    return DSL_ERR_UNKNOWN_OP

