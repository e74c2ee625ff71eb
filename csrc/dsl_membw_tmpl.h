/* Template (one instantiation per vector form, dsl_simd_forms.h): the sum of n floats
 * read once, front to back, with 4 independent vector accumulators: the read bandwidth
 * a streaming kernel can reach from wherever the buffer lives (L2, L3, DRAM). It is the
 * ceiling the small-M GEMM is measured against (benchmarks/bench_gemm.py --suite small-m). */
static VM_TARGET float VM_SFX(dsl_stream_sum)(const float* restrict p, int64_t n) {
    VF s0 = VF_ZERO(), s1 = VF_ZERO(), s2 = VF_ZERO(), s3 = VF_ZERO();
    int64_t i = 0;
    for (; i + 4 * VM_LEN <= n; i += 4 * VM_LEN) {
        s0 = VF_ADD(s0, VF_LOAD(p + i));
        s1 = VF_ADD(s1, VF_LOAD(p + i + VM_LEN));
        s2 = VF_ADD(s2, VF_LOAD(p + i + 2 * VM_LEN));
        s3 = VF_ADD(s3, VF_LOAD(p + i + 3 * VM_LEN));
    }
    float t = VF_HSUM(VF_ADD(VF_ADD(s0, s1), VF_ADD(s2, s3)));
    for (; i < n; ++i) t += p[i];
    return t;
}
