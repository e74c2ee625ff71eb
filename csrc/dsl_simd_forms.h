/* Instantiates one template once per kernel form. No include guard on purpose: the
 * includer defines DSL_SIMD_TEMPLATE (the template's file name as a string) and, to get
 * the scalar form too, DSL_SIMD_WITH_GENERIC 1; every form binds the primitives of
 * dsl_simd_form.h and includes the template, which names its functions with VM_SFX:
 *
 *     #define DSL_SIMD_TEMPLATE "reduce_f32_tmpl.h"
 *     #define DSL_SIMD_WITH_GENERIC 1
 *     #include "dsl_simd_forms.h"
 */
#include "dsl_simd.h"

#if defined(DSL_SIMD_WITH_GENERIC) && DSL_SIMD_WITH_GENERIC
#define DSL_SIMD_FORM DSL_FORM_GENERIC
#include "dsl_simd_form.h"
#include DSL_SIMD_TEMPLATE
#undef DSL_SIMD_FORM
#endif

#ifdef DSL_SIMD_X86
#define DSL_SIMD_FORM DSL_FORM_AVX2
#include "dsl_simd_form.h"
#include DSL_SIMD_TEMPLATE
#undef DSL_SIMD_FORM

#define DSL_SIMD_FORM DSL_FORM_AVX512
#include "dsl_simd_form.h"
#include DSL_SIMD_TEMPLATE
#undef DSL_SIMD_FORM

#define DSL_SIMD_FORM DSL_FORM_AVX512_ON_AVX2
#include "dsl_simd_form.h"
#include DSL_SIMD_TEMPLATE
#undef DSL_SIMD_FORM
#endif

#undef DSL_SIMD_TEMPLATE
#undef DSL_SIMD_WITH_GENERIC
