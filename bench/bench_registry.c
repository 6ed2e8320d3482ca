/* bench_registry.c - the registry under the daemon's upload path and read
 * path, without HTTP:
 *   upload-to-servable latency: slora_registry_put of a ~100 KB LoRA (all
 *     seven modules, 5 layers, r = 4, stories260K shape): validation with
 *     trial delta generation, sha256, durable write (temp, fsync, rename,
 *     dir fsync), index swap; p50/p99 over --uploads replacements, and the
 *     validation share alone (dry runs).
 *   resident adapters: --resident distinct names; RSS growth, malloc'd
 *     bytes (glibc mallinfo2) and the registry's counters per adapter.
 *   lookups: slora_registry_get + unref from 2 threads for --seconds.
 *
 * usage: bench_registry --state DIR [--resident-state DIR] [--uploads N]
 *        [--resident M] [--seconds S] [--json PATH] [--md PATH]
 */
#include <slora/adapter.h>
#include <slora/registry.h>
#include <slora/safetensors.h>

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAYERS 5
#define RANK 4

static const struct {
    const char *name;
    int rows, cols;
} modules[] = {{"wq", 64, 64},  {"wk", 32, 64},  {"wv", 32, 64}, {"wo", 64, 64},
               {"w1", 172, 64}, {"w2", 64, 172}, {"w3", 172, 64}};
#define N_MOD 7

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A LoRA over every module and layer; variant perturbs one value so each
 * variant has its own version. Returns a malloc'd file image. */
static void *make_adapter(int variant, size_t *len)
{
    struct slora_st_out t[2 * N_MOD * LAYERS];
    char names[2 * N_MOD * LAYERS][32];
    float *data = malloc(sizeof(float) * 2 * 172 * RANK * N_MOD * LAYERS);
    float *p = data;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int n = 0;
    for (int l = 0; l < LAYERS; l++)
        for (int m = 0; m < N_MOD; m++)
            for (int f = 0; f < 2; f++) {
                int rows = f == 0 ? modules[m].rows : modules[m].cols;
                snprintf(names[n], sizeof(names[n]), "g%d.k0.f%d", l * N_MOD + m, f);
                t[n] = (struct slora_st_out){names[n], 2, {rows, RANK}, p};
                for (int i = 0; i < rows * RANK; i++) {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    *p++ = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.02f;
                }
                n++;
            }
    data[0] = (float)variant * 1e-3f;
    const char *meta[] = {
        "superlora", "{\"version\": 1, \"base\": {\"dim\": 64, \"n_layers\": 5, \"n_heads\": 8, "
                     "\"n_kv_heads\": 4, \"hidden_dim\": 172, \"vocab_size\": 512}, "
                     "\"modules\": [\"wq\", \"wk\", \"wv\", \"wo\", \"w1\", \"w2\", \"w3\"]}"};
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f || slora_st_write(f, t, n, meta, 1) < 0 || fclose(f) != 0) {
        fprintf(stderr, "bench_registry: cannot build the adapter\n");
        exit(1);
    }
    free(data);
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static struct slora_registry_model model = {
    .shape = {.dim = 64,
              .hidden_dim = 172,
              .n_layers = 5,
              .n_heads = 8,
              .n_kv_heads = 4,
              .vocab_size = 512},
    .n_threads = 1,
};

static struct slora_registry *open_registry(const char *state)
{
    struct slora_registry_options opt = {.state_dir = state,
                                         .validate = slora_registry_validate_adapter,
                                         .release = slora_adapter_unref,
                                         .ctx = &model};
    struct slora_registry *r;
    char diag[256];
    if (slora_registry_new(&opt, &r, diag, sizeof(diag)) < 0) {
        fprintf(stderr, "bench_registry: %s\n", diag);
        exit(1);
    }
    return r;
}

static void put_or_die(struct slora_registry *r, const char *name, const void *buf, size_t len,
                       bool dry_run)
{
    char diag[512];
    if (slora_registry_put(r, "bench", name, NULL, NULL, buf, len, dry_run, NULL, NULL, diag,
                           sizeof(diag)) < 0) {
        fprintf(stderr, "bench_registry: put %s: %s\n", name, diag);
        exit(1);
    }
}

struct reader {
    struct slora_registry *r;
    int n_names;
    double seconds;
    long ops;
};

static void *read_loop(void *arg)
{
    struct reader *rd = arg;
    char name[32];
    uint32_t s = (uint32_t)(uintptr_t)arg | 1;
    double end = now() + rd->seconds;
    while (now() < end) {
        for (int k = 0; k < 1000; k++) {
            s = s * 1664525u + 1013904223u;
            snprintf(name, sizeof(name), "a%d", (int)(s >> 8) % rd->n_names);
            struct slora_registry_entry *e;
            if (slora_registry_get(rd->r, "bench", name, &e) == 0)
                slora_registry_entry_unref(e);
            rd->ops++;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *state = NULL, *resident_state = NULL, *json = NULL, *md = NULL;
    int uploads = 200, resident = 10000;
    double seconds = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--state"))
            state = argv[i + 1];
        else if (!strcmp(argv[i], "--resident-state"))
            resident_state = argv[i + 1];
        else if (!strcmp(argv[i], "--uploads"))
            uploads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--resident"))
            resident = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--json"))
            json = argv[i + 1];
        else if (!strcmp(argv[i], "--md"))
            md = argv[i + 1];
    }
    if (!state || uploads < 2 || resident < 1) {
        fprintf(stderr, "usage: bench_registry --state DIR [--resident-state DIR] [--uploads N] "
                        "[--resident M] [--seconds S] [--json PATH] [--md PATH]\n");
        return 2;
    }
    if (!resident_state)
        resident_state = state;
    slora_adapter_limits_default(&model.limits);
    size_t len[2];
    void *buf[2] = {make_adapter(0, &len[0]), make_adapter(1, &len[1])};

    /* Upload-to-servable latency: alternate two versions of one name. */
    struct slora_registry *r = open_registry(state);
    double *lat = malloc(sizeof(double) * (size_t)uploads);
    double *val = malloc(sizeof(double) * (size_t)uploads);
    for (int i = 0; i < uploads; i++) {
        double t0 = now();
        put_or_die(r, "latency", buf[i & 1], len[i & 1], false);
        lat[i] = (now() - t0) * 1e3;
        t0 = now();
        put_or_die(r, "latency", buf[i & 1], len[i & 1], true);
        val[i] = (now() - t0) * 1e3;
    }
    double p50 = pct(lat, uploads, 0.5), p99 = pct(lat, uploads, 0.99);
    double v50 = pct(val, uploads, 0.5), v99 = pct(val, uploads, 0.99);
    slora_registry_free(r);

    /* Resident adapters: RSS and counters per adapter. */
    r = open_registry(resident_state);
    long rss0 = rss_kb();
    struct mallinfo2 heap0 = mallinfo2();
    int64_t live0, bytes0;
    slora_registry_live(&live0, &bytes0);
    char name[32];
    double t0 = now();
    for (int i = 0; i < resident; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        put_or_die(r, name, buf[i & 1], len[i & 1], false);
    }
    double fill_s = now() - t0;
    long rss1 = rss_kb();
    struct mallinfo2 heap1 = mallinfo2();
    double heap_per = ((double)heap1.uordblks + (double)heap1.hblkhd - (double)heap0.uordblks -
                       (double)heap0.hblkhd) /
                      resident;
    int64_t live1, bytes1;
    slora_registry_live(&live1, &bytes1);
    double rss_per = (double)(rss1 - rss0) * 1024.0 / resident;
    double held_per = (double)(bytes1 - bytes0) / (double)(live1 - live0);

    /* Lookups from 2 threads. */
    struct reader rd[2] = {{r, resident, seconds, 0}, {r, resident, seconds, 0}};
    pthread_t th[2];
    t0 = now();
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, read_loop, &rd[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double gets = (double)(rd[0].ops + rd[1].ops) / (now() - t0);
    slora_registry_free(r);

    char report[2048];
    snprintf(report, sizeof(report),
             "## Registry (no HTTP)\n\n"
             "Adapter: LoRA r=%d on all 7 modules x %d layers, %zu bytes.\n\n"
             "| measure | value |\n|---|---|\n"
             "| upload-to-servable p50 / p99 (validate + sha256 + durable write + swap), "
             "%d uploads, state `%s` | %.2f / %.2f ms |\n"
             "| of which validation (dry run) p50 / p99 | %.2f / %.2f ms |\n"
             "| %d resident adapters: fill time | %.1f s |\n"
             "| RSS growth per adapter (state `%s`) | %.0f bytes (file %zu, so %.0f beyond it) |\n"
             "| heap in use per adapter (malloc: entry + adapter object) | %.0f bytes |\n"
             "| of which the params as float32 | %.0f bytes |\n"
             "| get+unref, 2 threads | %.2f M/s |\n",
             RANK, LAYERS, len[0], uploads, state, p50, p99, v50, v99, resident, fill_s,
             resident_state, rss_per, len[0], rss_per - (double)len[0], heap_per, held_per,
             gets / 1e6);
    printf("%s", report);
    if (md) {
        FILE *f = fopen(md, "w");
        if (f) {
            fputs(report, f);
            fclose(f);
        }
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f,
                    "{\"adapter_bytes\": %zu, \"uploads\": %d, \"upload_ms_p50\": %.3f, "
                    "\"upload_ms_p99\": %.3f, \"validate_ms_p50\": %.3f, \"validate_ms_p99\": "
                    "%.3f, \"resident\": %d, \"fill_s\": %.2f, \"rss_bytes_per_adapter\": %.0f, "
                    "\"beyond_file_bytes\": %.0f, \"heap_bytes_per_adapter\": %.0f, "
                    "\"params_bytes_per_adapter\": %.0f, "
                    "\"gets_per_s\": %.0f}\n",
                    len[0], uploads, p50, p99, v50, v99, resident, fill_s, rss_per,
                    rss_per - (double)len[0], heap_per, held_per, gets);
            fclose(f);
        }
    }
    free(lat);
    free(val);
    free(buf[0]);
    free(buf[1]);
    return 0;
}
