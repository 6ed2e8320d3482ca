/* bench_load.c - slorad's side of bench/load.sh: the wall time of
 * slora_model_load (map, parse, bind, validate) and the process's resident
 * memory split into file-backed pages (the mmap'd model) and anonymous
 * memory (copies, KV cache, scratch), after the load and after a short
 * greedy generation. One JSON line.
 *
 *   bench_load --model M [--gen N] [--threads T]
 */
#include <slora/cliarg.h>
#include <slora/forward.h>
#include <slora/model.h>
#include <slora/weights.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) this process has used. */
static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_load: %s\n", msg);
    exit(1);
}

/* RssAnon and RssFile of this process, in MiB (/proc/self/status). */
static void rss(double *anon, double *file)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb;
    *anon = *file = -1;
    if (!f)
        die("cannot read /proc/self/status");
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "RssAnon: %lld kB", &kb) == 1)
            *anon = kb / 1024.0;
        else if (sscanf(line, "RssFile: %lld kB", &kb) == 1)
            *file = kb / 1024.0;
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *model_path = NULL;
    long long n_gen = 0, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model"))
            model_path = v;
        else if (!strcmp(a, "--gen")       ? !slora_cliarg_int(v, 0, 4096, &n_gen)
                 : !strcmp(a, "--threads") ? !slora_cliarg_int(v, 1, 64, &threads)
                                           : true)
            die("usage: bench_load --model M [--gen N] [--threads T]");
    }
    if (!model_path)
        die("--model is required");
    double anon0, file0, anon1, file1, anon2, file2;
    rss(&anon0, &file0);
    char diag[512];
    struct slora_model *m;
    double t0 = now(), c0 = cpu();
    if (slora_model_load(model_path, NULL, &m, diag, sizeof(diag)))
        die(diag);
    double load_s = now() - t0, load_cpu_s = cpu() - c0;
    rss(&anon1, &file1);

    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, 1, (int)threads);
    float *logits = malloc((size_t)m->cfg.shape.vocab_size * sizeof(float));
    struct slora_weights ws;
    if (!kv || !f || !logits || slora_weights_init(&ws, m, 0))
        die("out of memory");
    int tok = 1;
    double t1 = now();
    for (int p = 0; p < n_gen && p < m->cfg.seq_len; p++) {
        struct slora_fwd_row row = {tok, p, kv, &ws, logits};
        if (slora_fwd_run(f, &row, 1))
            die("forward failed");
        int best = 0;
        for (int j = 1; j < m->cfg.shape.vocab_size; j++)
            if (logits[j] > logits[best])
                best = j;
        tok = best;
    }
    double gen_s = now() - t1;
    rss(&anon2, &file2);
    printf("{\"load_s\": %.4f, \"load_cpu_s\": %.4f, \"weight_mib\": %.1f, \"gen\": %lld, "
           "\"gen_s\": %.3f, "
           "\"rss_start\": {\"anon_mib\": %.1f, \"file_mib\": %.1f}, "
           "\"rss_loaded\": {\"anon_mib\": %.1f, \"file_mib\": %.1f}, "
           "\"rss_generated\": {\"anon_mib\": %.1f, \"file_mib\": %.1f}}\n",
           load_s, load_cpu_s, m->weight_bytes / 1048576.0, n_gen, gen_s, anon0, file0, anon1,
           file1, anon2, file2);
    slora_weights_deinit(&ws);
    free(logits);
    slora_fwd_free(f);
    slora_kv_free(kv);
    slora_model_free(m);
    return 0;
}
