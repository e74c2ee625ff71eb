"""Data-movement kernels (family 1): strided copy, fill, gather, pad, resize.

Sub-ops (op = 100 + sub):
  1 COPY   t=[src, dst]  i: ndim, esz, shape[8], src_strides[8] (bytes), dst_strides[8] (bytes),
                            src_byte_offset, dst_byte_offset          (i[0..27])
  2 FILL   t=[dst]       i: nbytes, esz, bit pattern of the value, dst_byte_offset
"""
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from cython.parallel cimport prange

from deepsparse_lite.kernels.dsl cimport (dsl_step, DSL_OK, DSL_ERR_UNKNOWN_OP, DSL_ERR_BAD_PARAM,
                                          dsl_threads_for, dsl_chunk_lo)

cdef extern from "dsl_copy.h" nogil:
    void dsl_copy_rows(const char* src, char* dst, int ndim, int64_t esz, const int64_t* shape,
                       const int64_t* ss, const int64_t* ds, int64_t lo, int64_t hi)

DEF COPY_MIN_BYTES_PER_THREAD = 65536


cdef int copy_nd(const dsl_step* s, char** p, int nt) noexcept nogil:
    cdef int ndim = <int>s.i[0]
    cdef int64_t esz = s.i[1]
    cdef const int64_t* shape = &s.i[2]
    cdef const int64_t* ss = &s.i[10]
    cdef const int64_t* ds = &s.i[18]
    cdef const char* src = p[s.t[0]] + s.i[26]
    cdef char* dst = p[s.t[1]] + s.i[27]
    cdef int64_t outer = 1, total
    cdef int d, c, nth
    if ndim < 1 or ndim > 8:
        return DSL_ERR_BAD_PARAM
    for d in range(ndim - 1):
        outer *= shape[d]
    total = outer * shape[ndim - 1] * esz
    if total == 0:
        return DSL_OK
    nth = dsl_threads_for(total, COPY_MIN_BYTES_PER_THREAD, nt)
    if nth > outer:
        nth = <int>outer
    if nth <= 1:
        dsl_copy_rows(src, dst, ndim, esz, shape, ss, ds, 0, outer)
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


cdef int run_data(const dsl_step* s, char** p, int nt) noexcept nogil:
    cdef int sub = s.op % 100
    if sub == 1:
        return copy_nd(s, p, nt)
    if sub == 2:
        return fill(s, p, nt)
    return DSL_ERR_UNKNOWN_OP
