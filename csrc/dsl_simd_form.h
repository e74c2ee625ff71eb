/* Binds the vector primitives to one kernel form. No include guard on purpose: a header
 * that instantiates a template sets DSL_SIMD_FORM (a DSL_FORM_* of dsl_cpu.h), includes
 * this file, then the template; every name below is redefined on each inclusion.
 *
 *   VM_SFX(name)   name + the form's suffix (__generic, __avx2, __avx512, __avx512_on_avx2)
 *   VM_TARGET      the form's function attribute        VM_LEN   lanes
 *   VF VI VM       float vector, int32 vector, comparison mask
 *   VF_LOAD/STORE(p[, v])        unaligned             VF_LOAD_N/STORE_N(p[, v], n)  lanes [0, n)
 *   VF_SET1(c) VF_ZERO() VF_BCAST(p)=set1(*p)          VI_SET1(c)
 *   VF_ADD SUB MUL DIV MIN MAX (MIN/MAX return the 2nd operand if either is NaN, as x86)
 *   VF_FMA(a,b,c)=a*b+c  VF_FNMA=c-a*b  VF_FMS=a*b-c   VF_SQRT VF_ABS VF_ROUND(half even)
 *   VF_FLOOR VF_CEIL     VF_AND OR XOR  VF_ANDNOT(a,b)=~a&b
 *   VF_TO_I (round to nearest) VI_TO_F VF_AS_I VI_AS_F VI_ADD SUB AND OR SLLI SRLI SRAI
 *   M_LT LE GT GE EQ ISNAN (ordered) M_OR M_AND M_ALL   VF_BLEND(m, a, b) = m ? b : a
 *   VF_HSUM HMAX HMIN (-> float)  VF_LOAD_EVEN(p) = p[0], p[2], ... (reads 2*VM_LEN floats)
 *   VF_EXP(v)      the one vector exp (dsl_vmath_impl.h's dsl_v_exp of the same form;
 *                  expf in the scalar form): include dsl_vmath.h before using it.
 */
#include "dsl_simd.h"

#undef VM_SFX
#undef VM_TARGET
#undef VM_LEN
#undef VF
#undef VI
#undef VM
#undef VF_LOAD
#undef VF_STORE
#undef VF_LOAD_N
#undef VF_STORE_N
#undef VF_SET1
#undef VF_ZERO
#undef VF_BCAST
#undef VF_ADD
#undef VF_SUB
#undef VF_MUL
#undef VF_DIV
#undef VF_FMA
#undef VF_FNMA
#undef VF_FMS
#undef VF_MIN
#undef VF_MAX
#undef VF_SQRT
#undef VF_ABS
#undef VF_AND
#undef VF_OR
#undef VF_XOR
#undef VF_ANDNOT
#undef VF_ROUND
#undef VF_FLOOR
#undef VF_CEIL
#undef VF_TO_I
#undef VI_TO_F
#undef VF_AS_I
#undef VI_AS_F
#undef VI_SET1
#undef VI_ADD
#undef VI_SUB
#undef VI_AND
#undef VI_OR
#undef VI_SLLI
#undef VI_SRLI
#undef VI_SRAI
#undef M_LT
#undef M_LE
#undef M_GT
#undef M_GE
#undef M_EQ
#undef M_ISNAN
#undef M_OR
#undef M_AND
#undef M_ALL
#undef VF_BLEND
#undef VF_HSUM
#undef VF_HMAX
#undef VF_HMIN
#undef VF_LOAD_EVEN
#undef VF_EXP

#if DSL_SIMD_FORM == DSL_FORM_GENERIC
/* ---- scalar: one lane of plain C (libm) ---- */
#define VM_SFX(name) name##__generic
#define VM_TARGET
#define VM_LEN 1
#define VF float
#define VF_LOAD(p) (*(p))
#define VF_STORE(p, v) (*(p) = (v))
#define VF_SET1(c) ((float)(c))
#define VF_ZERO() (0.f)
#define VF_BCAST(p) (*(p))
#define VF_ADD(a, b) ((a) + (b))
#define VF_SUB(a, b) ((a) - (b))
#define VF_MUL(a, b) ((a) * (b))
#define VF_DIV(a, b) ((a) / (b))
#define VF_FMA(a, b, c) ((a) * (b) + (c))
#define VF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VF_MAX(a, b) ((a) > (b) ? (a) : (b))
#define VF_SQRT(a) sqrtf(a)
#define VF_ABS(a) fabsf(a)
#define VF_HSUM(v) (v)
#define VF_HMAX(v) (v)
#define VF_HMIN(v) (v)
#define VF_LOAD_EVEN(p) (*(p))
#define VF_EXP(v) expf(v)

#elif DSL_SIMD_FORM == DSL_FORM_AVX2
/* ---- AVX2 + FMA: 8 lanes, masks are vectors ---- */
#define VM_SFX(name) name##__avx2
#define VM_TARGET __attribute__((target(DSL_TARGET_AVX2)))
#define VM_LEN 8
#define VF __m256
#define VI __m256i
#define VM __m256
#define VF_LOAD(p) _mm256_loadu_ps(p)
#define VF_STORE(p, v) _mm256_storeu_ps((p), (v))
#define VF_LOAD_N(p, n) _mm256_maskload_ps((p), dsl_tailmask8(n))
#define VF_STORE_N(p, v, n) _mm256_maskstore_ps((p), dsl_tailmask8(n), (v))
#define VF_SET1(c) _mm256_set1_ps(c)
#define VF_ZERO() _mm256_setzero_ps()
#define VF_BCAST(p) _mm256_broadcast_ss(p)
#define VF_ADD(a, b) _mm256_add_ps((a), (b))
#define VF_SUB(a, b) _mm256_sub_ps((a), (b))
#define VF_MUL(a, b) _mm256_mul_ps((a), (b))
#define VF_DIV(a, b) _mm256_div_ps((a), (b))
#define VF_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VF_FNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define VF_FMS(a, b, c) _mm256_fmsub_ps((a), (b), (c))
#define VF_MIN(a, b) _mm256_min_ps((a), (b))
#define VF_MAX(a, b) _mm256_max_ps((a), (b))
#define VF_SQRT(a) _mm256_sqrt_ps(a)
#define VF_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.f), (a))
#define VF_AND(a, b) _mm256_and_ps((a), (b))
#define VF_OR(a, b) _mm256_or_ps((a), (b))
#define VF_XOR(a, b) _mm256_xor_ps((a), (b))
#define VF_ANDNOT(a, b) _mm256_andnot_ps((a), (b))
#define VF_ROUND(a) _mm256_round_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VF_FLOOR(a) _mm256_round_ps((a), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VF_CEIL(a) _mm256_round_ps((a), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
#define VF_TO_I(a) _mm256_cvtps_epi32(a)
#define VI_TO_F(a) _mm256_cvtepi32_ps(a)
#define VF_AS_I(a) _mm256_castps_si256(a)
#define VI_AS_F(a) _mm256_castsi256_ps(a)
#define VI_SET1(c) _mm256_set1_epi32(c)
#define VI_ADD(a, b) _mm256_add_epi32((a), (b))
#define VI_SUB(a, b) _mm256_sub_epi32((a), (b))
#define VI_AND(a, b) _mm256_and_si256((a), (b))
#define VI_OR(a, b) _mm256_or_si256((a), (b))
#define VI_SLLI(a, k) _mm256_slli_epi32((a), (k))
#define VI_SRLI(a, k) _mm256_srli_epi32((a), (k))
#define VI_SRAI(a, k) _mm256_srai_epi32((a), (k))
#define M_LT(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define M_LE(a, b) _mm256_cmp_ps((a), (b), _CMP_LE_OQ)
#define M_GT(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define M_GE(a, b) _mm256_cmp_ps((a), (b), _CMP_GE_OQ)
#define M_EQ(a, b) _mm256_cmp_ps((a), (b), _CMP_EQ_OQ)
#define M_ISNAN(a) _mm256_cmp_ps((a), (a), _CMP_UNORD_Q)
#define M_OR(a, b) _mm256_or_ps((a), (b))
#define M_AND(a, b) _mm256_and_ps((a), (b))
#define M_ALL(m) (_mm256_movemask_ps(m) == 0xff)
#define VF_BLEND(m, a, b) _mm256_blendv_ps((a), (b), (m))
#define VF_HSUM(v) dsl_hsum8(v)
#define VF_HMAX(v) dsl_hmax8(v)
#define VF_HMIN(v) dsl_hmin8(v)
#define VF_LOAD_EVEN(p) dsl_load_even8(p)
#define VF_EXP(v) dsl_v_exp__avx2(v)

#elif DSL_SIMD_FORM == DSL_FORM_AVX512
/* ---- AVX-512 F/BW/DQ/VL: 16 lanes, masks are k-registers ---- */
#define VM_SFX(name) name##__avx512
#define VM_TARGET __attribute__((target(DSL_TARGET_AVX512)))
#define VM_LEN 16
#define VF __m512
#define VI __m512i
#define VM __mmask16
#define VF_LOAD(p) _mm512_loadu_ps(p)
#define VF_STORE(p, v) _mm512_storeu_ps((p), (v))
#define VF_LOAD_N(p, n) _mm512_maskz_loadu_ps(dsl_tailmask16(n), (p))
#define VF_STORE_N(p, v, n) _mm512_mask_storeu_ps((p), dsl_tailmask16(n), (v))
#define VF_SET1(c) _mm512_set1_ps(c)
#define VF_ZERO() _mm512_setzero_ps()
#define VF_BCAST(p) _mm512_set1_ps(*(p))
#define VF_ADD(a, b) _mm512_add_ps((a), (b))
#define VF_SUB(a, b) _mm512_sub_ps((a), (b))
#define VF_MUL(a, b) _mm512_mul_ps((a), (b))
#define VF_DIV(a, b) _mm512_div_ps((a), (b))
#define VF_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VF_FNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define VF_FMS(a, b, c) _mm512_fmsub_ps((a), (b), (c))
#define VF_MIN(a, b) _mm512_min_ps((a), (b))
#define VF_MAX(a, b) _mm512_max_ps((a), (b))
#define VF_SQRT(a) _mm512_sqrt_ps(a)
#define VF_ABS(a) _mm512_abs_ps(a)
#define VF_AND(a, b) _mm512_and_ps((a), (b))
#define VF_OR(a, b) _mm512_or_ps((a), (b))
#define VF_XOR(a, b) _mm512_xor_ps((a), (b))
#define VF_ANDNOT(a, b) _mm512_andnot_ps((a), (b))
#define VF_ROUND(a) _mm512_roundscale_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VF_FLOOR(a) _mm512_roundscale_ps((a), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VF_CEIL(a) _mm512_roundscale_ps((a), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
#define VF_TO_I(a) _mm512_cvtps_epi32(a)
#define VI_TO_F(a) _mm512_cvtepi32_ps(a)
#define VF_AS_I(a) _mm512_castps_si512(a)
#define VI_AS_F(a) _mm512_castsi512_ps(a)
#define VI_SET1(c) _mm512_set1_epi32(c)
#define VI_ADD(a, b) _mm512_add_epi32((a), (b))
#define VI_SUB(a, b) _mm512_sub_epi32((a), (b))
#define VI_AND(a, b) _mm512_and_si512((a), (b))
#define VI_OR(a, b) _mm512_or_si512((a), (b))
#define VI_SLLI(a, k) _mm512_slli_epi32((a), (k))
#define VI_SRLI(a, k) _mm512_srli_epi32((a), (k))
#define VI_SRAI(a, k) _mm512_srai_epi32((a), (k))
#define M_LT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ)
#define M_LE(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LE_OQ)
#define M_GT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define M_GE(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GE_OQ)
#define M_EQ(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ)
#define M_ISNAN(a) _mm512_cmp_ps_mask((a), (a), _CMP_UNORD_Q)
#define M_OR(a, b) ((__mmask16)((a) | (b)))
#define M_AND(a, b) ((__mmask16)((a) & (b)))
#define M_ALL(m) ((m) == (__mmask16)0xffff)
#define VF_BLEND(m, a, b) _mm512_mask_blend_ps((m), (a), (b))
#define VF_HSUM(v) _mm512_reduce_add_ps(v)
#define VF_HMAX(v) _mm512_reduce_max_ps(v)
#define VF_HMIN(v) _mm512_reduce_min_ps(v)
#define VF_LOAD_EVEN(p) dsl_load_even16(p)
#define VF_EXP(v) dsl_v_exp__avx512(v)

#elif DSL_SIMD_FORM == DSL_FORM_AVX512_ON_AVX2
/* ---- the 16-lane form as two AVX2 halves ---- */
#define VM_SFX(name) name##__avx512_on_avx2
#define VM_TARGET __attribute__((target(DSL_TARGET_AVX2)))
#define VM_LEN 16
#define VF dsl_p16f
#define VI dsl_p16i
#define VM dsl_p16f
#define VF_LOAD(p) dsl_p16_load(p)
#define VF_STORE(p, v) dsl_p16_store((p), (v))
#define VF_LOAD_N(p, n) dsl_p16_load_n((p), (n))
#define VF_STORE_N(p, v, n) dsl_p16_store_n((p), (v), (n))
#define VF_SET1(c) dsl_p16_set1(c)
#define VF_ZERO() dsl_p16_set1(0.f)
#define VF_BCAST(p) dsl_p16_bcast(p)
#define VF_ADD(a, b) dsl_p16_add((a), (b))
#define VF_SUB(a, b) dsl_p16_sub((a), (b))
#define VF_MUL(a, b) dsl_p16_mul((a), (b))
#define VF_DIV(a, b) dsl_p16_div((a), (b))
#define VF_FMA(a, b, c) dsl_p16_fma((a), (b), (c))
#define VF_FNMA(a, b, c) dsl_p16_fnma((a), (b), (c))
#define VF_FMS(a, b, c) dsl_p16_fms((a), (b), (c))
#define VF_MIN(a, b) dsl_p16_min((a), (b))
#define VF_MAX(a, b) dsl_p16_max((a), (b))
#define VF_SQRT(a) dsl_p16_sqrt(a)
#define VF_ABS(a) dsl_p16_abs(a)
#define VF_AND(a, b) dsl_p16_and((a), (b))
#define VF_OR(a, b) dsl_p16_or((a), (b))
#define VF_XOR(a, b) dsl_p16_xor((a), (b))
#define VF_ANDNOT(a, b) dsl_p16_andnot((a), (b))
#define VF_ROUND(a) dsl_p16_round(a)
#define VF_FLOOR(a) dsl_p16_floor(a)
#define VF_CEIL(a) dsl_p16_ceil(a)
#define VF_TO_I(a) dsl_p16_to_i(a)
#define VI_TO_F(a) dsl_p16_i_to_f(a)
#define VF_AS_I(a) dsl_p16_as_i(a)
#define VI_AS_F(a) dsl_p16_as_f(a)
#define VI_SET1(c) dsl_p16_iset1(c)
#define VI_ADD(a, b) dsl_p16_iadd((a), (b))
#define VI_SUB(a, b) dsl_p16_isub((a), (b))
#define VI_AND(a, b) dsl_p16_iand((a), (b))
#define VI_OR(a, b) dsl_p16_ior((a), (b))
#define VI_SLLI(a, k) dsl_p16_slli((a), (k))
#define VI_SRLI(a, k) dsl_p16_srli((a), (k))
#define VI_SRAI(a, k) dsl_p16_srai((a), (k))
#define M_LT(a, b) dsl_p16_lt((a), (b))
#define M_LE(a, b) dsl_p16_le((a), (b))
#define M_GT(a, b) dsl_p16_gt((a), (b))
#define M_GE(a, b) dsl_p16_ge((a), (b))
#define M_EQ(a, b) dsl_p16_eq((a), (b))
#define M_ISNAN(a) dsl_p16_isnan(a)
#define M_OR(a, b) dsl_p16_or((a), (b))
#define M_AND(a, b) dsl_p16_and((a), (b))
#define M_ALL(m) dsl_p16_all(m)
#define VF_BLEND(m, a, b) dsl_p16_blend((m), (a), (b))
#define VF_HSUM(v) dsl_p16_hsum(v)
#define VF_HMAX(v) dsl_p16_hmax(v)
#define VF_HMIN(v) dsl_p16_hmin(v)
#define VF_LOAD_EVEN(p) dsl_p16_load_even(p)
#define VF_EXP(v) dsl_v_exp__avx512_on_avx2(v)

#else
#error "DSL_SIMD_FORM must be one of the DSL_FORM_* values of dsl_cpu.h"
#endif
