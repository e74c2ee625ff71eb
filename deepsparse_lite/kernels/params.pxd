# Cython view of the step parameter records of csrc/dsl_params.h (the C header is the
# definition; deepsparse_lite/step_params.py mirrors it for the lowerings).
from libc.stdint cimport int64_t

cdef extern from "dsl_params.h" nogil:
    enum:
        DSL_OP_COPY
        DSL_OP_FILL
        DSL_OP_GATHER
        DSL_OP_GATHER_ELEMENTS
        DSL_OP_RESIZE_NEAREST
        DSL_OP_RESIZE_LINEAR
        DSL_OP_UNARY_F32
        DSL_OP_UNARY_F64
        DSL_OP_UNARY_INT
        DSL_OP_NOT
        DSL_OP_BINARY
        DSL_OP_WHERE
        DSL_OP_CAST
        DSL_OP_REDUCE
        DSL_OP_ARG
        DSL_OP_TOPK
        DSL_OP_SOFTMAX
        DSL_OP_LAYERNORM
        DSL_OP_AFFINE
        DSL_OP_BN_PREP
        DSL_OP_LRN
        DSL_OP_INSTNORM
        DSL_OP_POOL2D
        DSL_OP_MAXPOOL2D_IDX
        DSL_OP_GEMM
        DSL_OP_MATMUL
        DSL_OP_CONV
        DSL_OP_DWCONV
        DSL_OP_CONVT
        DSL_OP_WINO
        DSL_OP_SPMM_GEMM
        DSL_OP_SPMM_CONV
        DSL_OP_QUANTIZE
        DSL_OP_DEQUANTIZE
        DSL_OP_DYNQUANT
        DSL_OP_QGEMM
        DSL_OP_QCONV
        DSL_OP_QCONVCW
        DSL_OP_QADD
        DSL_OP_EWCHAIN
    ctypedef struct dsl_copy_params:
        int64_t ndim
        int64_t esz
        int64_t shape[8]
        int64_t src_strides[8]
        int64_t dst_strides[8]
        int64_t src_offset
        int64_t dst_offset
        int64_t level
    ctypedef struct dsl_fill_params:
        int64_t nbytes
        int64_t esz
        int64_t bits
        int64_t dst_offset
    ctypedef struct dsl_gather_params:
        int64_t outer
        int64_t axis_len
        int64_t inner_bytes
        int64_t n_idx
        int64_t index_dtype
    ctypedef struct dsl_gather_elements_params:
        int64_t ndim
        int64_t esz
        int64_t index_dtype
        int64_t axis
        int64_t axis_len
        int64_t shape[8]
        int64_t data_strides[8]
    ctypedef struct dsl_resize_nearest_params:
        int64_t ndim
        int64_t esz
        int64_t out_shape[8]
        int64_t table_start[8]
    ctypedef struct dsl_resize_linear_params:
        int64_t outer
        int64_t H
        int64_t W
        int64_t OH
        int64_t OW
        int64_t ws_floats
        int64_t ws_threads
    ctypedef struct dsl_eltwise_params:
        int64_t fn
        int64_t dtype
        int64_t out_dtype
        int64_t saturate
        int64_t esz
        int64_t level
        int64_t ndim
        int64_t n
        int64_t shape[8]
        int64_t strides[24]
        float a
        float b
    ctypedef struct dsl_reduce_params:
        int64_t kind
        int64_t dtype
        int64_t outer
        int64_t n
        int64_t inner
        int64_t level
        float scale
    ctypedef struct dsl_arg_params:
        int64_t is_min
        int64_t dtype
        int64_t outer
        int64_t n
        int64_t inner
        int64_t select_last
        int64_t level
    ctypedef struct dsl_topk_params:
        int64_t dtype
        int64_t outer
        int64_t n
        int64_t inner
        int64_t k
        int64_t largest
    ctypedef struct dsl_softmax_params:
        int64_t log
        int64_t outer
        int64_t n
        int64_t inner
        int64_t level
    ctypedef struct dsl_layernorm_params:
        int64_t outer
        int64_t n
        int64_t has_bias
        int64_t has_mean
        int64_t has_inv_std
        int64_t level
        float epsilon
    ctypedef struct dsl_affine_params:
        int64_t outer
        int64_t C
        int64_t inner
        int64_t level
    ctypedef struct dsl_bn_prep_params:
        int64_t C
        float epsilon
    ctypedef struct dsl_lrn_params:
        int64_t N
        int64_t C
        int64_t inner
        int64_t size
        float alpha
        float beta
        float bias
    ctypedef struct dsl_instnorm_params:
        int64_t rows
        int64_t n
        int64_t C
        int64_t level
        float epsilon
    ctypedef struct dsl_pool_params:
        int64_t avg
        int64_t planes
        int64_t H
        int64_t W
        int64_t OH
        int64_t OW
        int64_t KH
        int64_t KW
        int64_t SH
        int64_t SW
        int64_t pad_top
        int64_t pad_left
        int64_t DH
        int64_t DW
        int64_t Wp
        int64_t level
        int64_t ws_threads
        int64_t ws_stride
        int64_t storage_order
        int64_t q8
    ctypedef struct dsl_gemm_params:
        int64_t level
        int64_t M
        int64_t N
        int64_t K
        int64_t mc
        int64_t kc
        int64_t nc
        int64_t act
        int64_t bias_mode
        int64_t bias_slot
        int64_t d_slot
        int64_t rsd
        int64_t csd
        int64_t ws_slot
        int64_t ws_bytes
        int64_t ws_threads
        int64_t rsa
        int64_t csa
        int64_t rsb
        int64_t csb
        int64_t rsc
        int64_t nb
        int64_t batch[4]
        int64_t sa[4]
        int64_t sb[4]
        int64_t sc[4]
        int64_t sd[4]
        int64_t images
        int64_t groups
        int64_t Cin
        int64_t H
        int64_t W
        int64_t Cout
        int64_t OH
        int64_t OW
        int64_t KH
        int64_t KW
        int64_t SH
        int64_t SW
        int64_t PH
        int64_t PW
        int64_t DH
        int64_t DW
        int64_t direct
        int64_t co_chunk
        int64_t nchunks
        int64_t col_floats
        int64_t pixel_rows
        int64_t co_parts
        int64_t bf16
        float alpha
        float beta
        float act_a
        float act_b
        int64_t ex_slot
        int64_t ex_bias_slot
        int64_t ex_act
        int64_t ex_rows
        int64_t ex_cb
        float ex_act_a
        float ex_act_b
    ctypedef struct dsl_spmm_params:
        int64_t level
        int64_t R
        int64_t K
        int64_t np
        int64_t nnz
        int64_t off_vals
        int64_t off_cols
        int64_t act
        int64_t bias_slot
        int64_t d_slot
        int64_t ws_slot
        int64_t ws_bytes
        int64_t ws_threads
        int64_t rsa
        int64_t csa
        int64_t rsc
        int64_t rsd
        int64_t csd
        int64_t images
        int64_t Cin
        int64_t H
        int64_t W
        int64_t OH
        int64_t OW
        int64_t KH
        int64_t KW
        int64_t SH
        int64_t SW
        int64_t PH
        int64_t PW
        int64_t DH
        int64_t DW
        int64_t direct
        int64_t off_offs
        int64_t pad_bytes
        float beta
        float act_a
        float act_b
    ctypedef struct dsl_quant_params:
        int64_t level
        int64_t qdtype
        int64_t outer
        int64_t C
        int64_t inner
        int64_t zp_slot
        int64_t n
    ctypedef struct dsl_qgemm_params:
        int64_t level
        int64_t M
        int64_t N
        int64_t K
        int64_t a_signed
        int64_t za
        int64_t za_slot
        int64_t row_zp
        int64_t out_mode
        int64_t zy
        int64_t relu
        int64_t items
        int64_t sa
        int64_t sc
        int64_t rsa
        int64_t rsc
        int64_t csc
        int64_t ws_slot
        int64_t ws_bytes
        int64_t ws_threads
        int64_t images
        int64_t groups
        int64_t Cin
        int64_t H
        int64_t W
        int64_t Cout
        int64_t OH
        int64_t OW
        int64_t KH
        int64_t KW
        int64_t SH
        int64_t SW
        int64_t PH
        int64_t PW
        int64_t DH
        int64_t DW
        int64_t Kp
        int64_t mb
        int64_t xi_bytes
        int64_t direct
        int64_t cob
        int64_t sparse
        int64_t tokens
