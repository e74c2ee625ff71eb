/* Template of the EWCHAIN strip interpreter (q8_ewchain.h), one instance per vector form. */
#define EWC_RUN VM_SFX(ewc_run)
#define EWC_QROW VM_SFX(ewc_qrow)
#if VM_LEN == 1
#define EWC_VROUND(x) rintf(x)
#define EWC_GE(a, b) ((a) >= (b))
#define EWC_GT(a, b) ((a) > (b))
#define EWC_OR(a, b) ((a) || (b))
#define EWC_ALL(m) (m)
#else
#define EWC_VROUND(x) VF_ROUND(x)
#define EWC_GE(a, b) M_GE(a, b)
#define EWC_GT(a, b) M_GT(a, b)
#define EWC_OR(a, b) M_OR(a, b)
#define EWC_ALL(m) M_ALL(m)
#endif

/* the strip loops: vector body, scalar tail with the same formula */
#define EWC_LOOP(n, VEXPR, SEXPR)                                                          \
    do {                                                                                   \
        int64_t j_ = 0;                                                                    \
        for (; j_ + VM_LEN <= (n); j_ += VM_LEN) { VEXPR; }                                \
        for (; j_ < (n); ++j_) { SEXPR; }                                                  \
    } while (0)

/* QNT (and FQ: the quantized value dequantized again, (q - z) * s, one pass) of a strip.
 * rint(a / s) without a division per element: q = a * RN(1 / s) is within |q| 2^-23
 * (<= 2^-14 for |q| <= 512) of a / s, so rint(q) is rint(a / s) unless a / s lies within
 * 2^-12 of a half-integer; such vectors (and NaN) take the true division. Past |q| = 512
 * every result saturates. */
static inline __attribute__((always_inline)) VM_TARGET void
EWC_QROW(const float* a, float* d, int64_t n, const float* c, const int fq) {
    const float z = c[0], s = c[1], lo_ = c[2], hi_ = c[3];
    const int fast = fabsf(s) > 1e-30f && fabsf(s) < 1e30f;
    const float rs = 1.0f / s;
    const VF vz = VF_SET1(z), vs = VF_SET1(s), vlo = VF_SET1(lo_), vhi = VF_SET1(hi_),
             vr = VF_SET1(rs), vhalf = VF_SET1(0.5f), vdel = VF_SET1(EWC_TIE_BAND),
             vbig = VF_SET1(512.f);
    int64_t j = 0;
    for (; j + VM_LEN <= n; j += VM_LEN) {
        const VF x = VF_LOAD(a + j);
        VF v;
        if (fast) {
            const VF q = VF_MUL(x, vr);
            v = EWC_VROUND(q);
            const VF t = VF_ABS(VF_SUB(VF_ABS(VF_SUB(q, v)), vhalf));
            if (!EWC_ALL(EWC_OR(EWC_GE(t, vdel), EWC_GT(VF_ABS(q), vbig))))
                v = EWC_VROUND(VF_DIV(x, vs));
        } else {
            v = EWC_VROUND(VF_DIV(x, vs));
        }
        v = VF_MIN(VF_MAX(VF_ADD(v, vz), vlo), vhi);
        if (fq) v = VF_MUL(VF_SUB(v, vz), vs);
        VF_STORE(d + j, v);
    }
    for (; j < n; ++j) {
        const float x = a[j];
        float v;
        const float q = x * rs, r = rintf(q);
        if (fast && (fabsf(fabsf(q - r) - 0.5f) >= EWC_TIE_BAND || fabsf(q) > 512.f))
            v = r;
        else
            v = rintf(x / s);
        v += z;
        v = v < lo_ ? lo_ : (v > hi_ ? hi_ : v);
        d[j] = fq ? (v - z) * s : v;
    }
}

static VM_TARGET void EWC_RUN(const ewc_prog* pg, int64_t lo, int64_t hi) {
    float buf[EWC_NREG][EWC_STRIP] __attribute__((aligned(64)));
    const float* rv[EWC_NREG];
    for (int r = 0; r < EWC_NREG; ++r) rv[r] = buf[r];
    for (int64_t i0 = lo; i0 < hi; i0 += EWC_STRIP) {
        const int64_t n = hi - i0 < EWC_STRIP ? hi - i0 : EWC_STRIP;
        for (int k = 0; k < pg->n_ins; ++k) {
            const int32_t* in = pg->ins + 4 * k;
            const float* c = pg->c + 4 * k;
            const int op = in[0], dst = in[1];
            float* d = buf[dst];
            const float* a = rv[in[2]];
            switch (op) {
            case EWC_LOAD_MAIN:
                if (pg->in_dt == EWC_F32) {
                    rv[dst] = (const float*)pg->main + i0;
                } else if (pg->in_dt == EWC_U8) {
                    const uint8_t* s = (const uint8_t*)pg->main + i0;
                    for (int64_t j = 0; j < n; ++j) d[j] = (float)s[j];
                    rv[dst] = d;
                } else {
                    const int8_t* s = (const int8_t*)pg->main + i0;
                    for (int64_t j = 0; j < n; ++j) d[j] = (float)s[j];
                    rv[dst] = d;
                }
                break;
            case EWC_LOAD_EXT: {
                const int e = in[2];
                const float* src = pg->ext[e];
                if (pg->pat[e] == 0) {
                    rv[dst] = src + i0;
                } else if (pg->pat[e] == 2) {
                    const float v = src[0];
                    for (int64_t j = 0; j < n; ++j) d[j] = v;
                    rv[dst] = d;
                } else {
                    const int64_t L = pg->per[e];
                    int64_t p = i0 % L;
                    if (p + n <= L) {
                        rv[dst] = src + p;
                    } else {
                        for (int64_t j = 0; j < n; ++j) {
                            d[j] = src[p];
                            if (++p == L) p = 0;
                        }
                        rv[dst] = d;
                    }
                }
                break;
            }
            case EWC_DEQ: {
                const VF vz = VF_SET1(c[0]), vs = VF_SET1(c[1]);
                const float z = c[0], s = c[1];
                EWC_LOOP(n, VF_STORE(d + j_, VF_MUL(VF_SUB(VF_LOAD(a + j_), vz), vs)),
                         d[j_] = (a[j_] - z) * s);
                rv[dst] = d;
                break;
            }
            case EWC_QNT:
            case EWC_FQ:
                EWC_QROW(a, d, n, c, op == EWC_FQ);
                rv[dst] = d;
                break;
            case EWC_ADDC: case EWC_SUBC: case EWC_RSUBC: case EWC_MULC: case EWC_DIVC: case EWC_RDIVC: {
                const float k0 = c[0];
                const VF vk = VF_SET1(k0);
                switch (op) {
                case EWC_ADDC: EWC_LOOP(n, VF_STORE(d + j_, VF_ADD(VF_LOAD(a + j_), vk)), d[j_] = a[j_] + k0); break;
                case EWC_SUBC: EWC_LOOP(n, VF_STORE(d + j_, VF_SUB(VF_LOAD(a + j_), vk)), d[j_] = a[j_] - k0); break;
                case EWC_RSUBC: EWC_LOOP(n, VF_STORE(d + j_, VF_SUB(vk, VF_LOAD(a + j_))), d[j_] = k0 - a[j_]); break;
                case EWC_MULC: EWC_LOOP(n, VF_STORE(d + j_, VF_MUL(VF_LOAD(a + j_), vk)), d[j_] = a[j_] * k0); break;
                case EWC_DIVC: EWC_LOOP(n, VF_STORE(d + j_, VF_DIV(VF_LOAD(a + j_), vk)), d[j_] = a[j_] / k0); break;
                default: EWC_LOOP(n, VF_STORE(d + j_, VF_DIV(vk, VF_LOAD(a + j_))), d[j_] = k0 / a[j_]); break;
                }
                rv[dst] = d;
                break;
            }
            case EWC_ADD: {
                const float* b = rv[in[3]];
                EWC_LOOP(n, VF_STORE(d + j_, VF_ADD(VF_LOAD(a + j_), VF_LOAD(b + j_))), d[j_] = a[j_] + b[j_]);
                rv[dst] = d;
                break;
            }
            case EWC_SUB: {
                const float* b = rv[in[3]];
                EWC_LOOP(n, VF_STORE(d + j_, VF_SUB(VF_LOAD(a + j_), VF_LOAD(b + j_))), d[j_] = a[j_] - b[j_]);
                rv[dst] = d;
                break;
            }
            case EWC_MUL: {
                const float* b = rv[in[3]];
                EWC_LOOP(n, VF_STORE(d + j_, VF_MUL(VF_LOAD(a + j_), VF_LOAD(b + j_))), d[j_] = a[j_] * b[j_]);
                rv[dst] = d;
                break;
            }
            case EWC_DIV: {
                const float* b = rv[in[3]];
                EWC_LOOP(n, VF_STORE(d + j_, VF_DIV(VF_LOAD(a + j_), VF_LOAD(b + j_))), d[j_] = a[j_] / b[j_]);
                rv[dst] = d;
                break;
            }
            case EWC_UNARY:
                dsl_vunary_f32(pg->uform, in[3], a, d, n, c[0], c[1]);
                rv[dst] = d;
                break;
            case EWC_STORE:
                if (pg->out_dt == EWC_F32) {
                    memcpy((float*)pg->out + i0, a, (size_t)n * sizeof(float));
                } else if (pg->out_dt == EWC_U8) {
                    uint8_t* o = (uint8_t*)pg->out + i0;
                    for (int64_t j = 0; j < n; ++j) o[j] = (uint8_t)(int32_t)a[j];
                } else {
                    int8_t* o = (int8_t*)pg->out + i0;
                    for (int64_t j = 0; j < n; ++j) o[j] = (int8_t)(int32_t)a[j];
                }
                break;
            default:
                break;
            }
        }
    }
}

#undef EWC_LOOP
#undef EWC_VROUND
#undef EWC_GE
#undef EWC_GT
#undef EWC_OR
#undef EWC_ALL
#undef EWC_RUN
#undef EWC_QROW
