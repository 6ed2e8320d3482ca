/* check_cache.c - the delta cache: hit/miss/eviction accounting under a
 * tiny budget, pins, oversize entries, single flight, retirement, and the
 * merged matrices W' = W + dW.
 *
 * The cache's generator is replaced by a deterministic fake (dW[i] =
 * alpha * (i % 7 - 3)) so the policy is tested apart from the SuperLoRA
 * maths, and so a generation can be held open to make misses concurrent.
 * Adapters are built in-test: only the target table matters to the cache.
 */
#include <slora/cache.h>
#include <slora/error.h>

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_PATH "models/stories260K.bin"
#define MAT_BYTES (64 * 64 * 4) /* one wq of stories260K */

static struct slora_model *model;

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static int gen_calls;

static int fake_gen(const struct slora_adapter *a, float *out, int n_threads, char *diag,
                    size_t diag_len)
{
    (void)n_threads;
    pthread_mutex_lock(&gate_lock);
    gen_calls++;
    while (gate_closed)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    if (a->cfg.alpha < 0) {
        snprintf(diag, diag_len, "dW of wq layer 0 has a non-finite entry at 17");
        return SLORA_ENONFINITE;
    }
    for (int64_t i = 0; i < a->total; i++)
        out[i] = a->cfg.alpha * (float)(i % 7 - 3);
    return 0;
}

static void set_gate(bool closed)
{
    pthread_mutex_lock(&gate_lock);
    gate_closed = closed;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* An adapter on wq of layers 0..n_layers-1 (16 KiB each). */
struct fake {
    struct slora_adapter a;
    struct slora_target t[5];
};

static void fake_init(struct fake *f, int n_layers, float alpha)
{
    memset(f, 0, sizeof(*f));
    f->a.refcount = 1;
    f->a.cfg.base = model->cfg.shape;
    f->a.cfg.alpha = alpha;
    f->a.n_targets = n_layers;
    f->a.targets = f->t;
    for (int l = 0; l < n_layers; l++) {
        f->t[l] = (struct slora_target){l, SLORA_MOD_WQ, 64, 64, f->a.total};
        f->a.total += 64 * 64;
    }
}

static struct slora_cache *new_cache(size_t budget)
{
    struct slora_cache_config cfg = {.budget_bytes = budget, .gen_threads = 1, .gen = fake_gen};
    struct slora_cache *c = slora_cache_new(model, &cfg);
    ck_assert_ptr_nonnull(c);
    return c;
}

static void setup(void)
{
    char diag[256];
    ck_assert_msg(!slora_model_load(MODEL_PATH, NULL, &model, diag, sizeof(diag)), "%s", diag);
    gen_calls = 0;
    set_gate(false);
}

static void teardown(void)
{
    slora_model_free(model);
    model = NULL;
}

static struct slora_cache_handle *get(struct slora_cache *c, const char *id, const char *ver,
                                      const struct fake *f)
{
    struct slora_cache_handle *h = NULL;
    char diag[256];
    int err = slora_cache_acquire_wait(c, id, ver, &f->a, &h, diag, sizeof(diag));
    ck_assert_msg(!err, "%s: %s", id, diag);
    return h;
}

static void use(struct slora_cache *c, const char *id, const char *ver, const struct fake *f)
{
    slora_cache_release(c, get(c, id, ver, f));
}

static void expect(struct slora_cache *c, uint64_t hits, uint64_t misses, uint64_t evictions,
                   size_t entries)
{
    struct slora_cache_stats st;
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.hits, hits);
    ck_assert_uint_eq(st.misses, misses);
    ck_assert_uint_eq(st.evictions, evictions);
    ck_assert_uint_eq(st.entries, entries);
}

/* The dense F32 delta a weight set holds for (layer, mod). */
static const float *delta_f32(const struct slora_weights *ws, int layer, enum slora_module mod)
{
    const struct slora_delta *d = slora_weights_delta(ws, 0, layer, mod);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->kind, SLORA_DELTA_DENSE);
    ck_assert_int_eq(d->dw.type, SLORA_DTYPE_F32);
    return d->dw.data;
}

START_TEST(delta_weights)
{
    struct slora_cache *c = new_cache(SLORA_CACHE_DEFAULT_BYTES);
    struct fake f;
    fake_init(&f, 2, 0.5f);
    struct slora_cache_handle *h = get(c, "t/a", "v1", &f);
    const struct slora_weights *ws = slora_cache_handle_weights(h);
    ck_assert_uint_ne(ws->id, 0);
    ck_assert_int_eq(ws->n_terms, 1);
    for (int l = 0; l < 2; l++) {
        const float *dw = delta_f32(ws, l, SLORA_MOD_WQ);
        for (int i = 0; i < 64 * 64; i++) {
            int64_t k = l * 64 * 64 + i;
            ck_assert_float_eq(dw[i], 0.5f * (float)(k % 7 - 3));
        }
    }
    ck_assert_ptr_null(slora_weights_delta(ws, 0, 2, SLORA_MOD_WQ));
    ck_assert_ptr_null(slora_weights_delta(ws, 0, 0, SLORA_MOD_WK));

    /* Another version of the same adapter is another weight set. */
    struct slora_cache_handle *h2 = get(c, "t/a", "v2", &f);
    ck_assert_uint_ne(slora_cache_handle_weights(h2)->id, ws->id);
    struct slora_cache_stats st;
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.bytes, 4 * (size_t)MAT_BYTES);
    ck_assert_uint_eq(st.in_use, 2);
    ck_assert_uint_eq(st.gen_count, 2);
    slora_cache_release(c, h);
    slora_cache_release(c, h2);
    slora_cache_free(c);
}
END_TEST

START_TEST(lru_script)
{
    /* Room for two one-matrix entries. */
    struct slora_cache *c = new_cache(2 * MAT_BYTES + MAT_BYTES / 2);
    struct fake a, b, d;
    fake_init(&a, 1, 1), fake_init(&b, 1, 2), fake_init(&d, 1, 3);
    use(c, "t/a", "1", &a);
    expect(c, 0, 1, 0, 1);
    use(c, "t/b", "1", &b);
    expect(c, 0, 2, 0, 2);
    use(c, "t/a", "1", &a); /* a is now more recent than b */
    expect(c, 1, 2, 0, 2);
    use(c, "t/d", "1", &d); /* evicts b */
    expect(c, 1, 3, 1, 2);
    use(c, "t/a", "1", &a);
    expect(c, 2, 3, 1, 2);
    use(c, "t/b", "1", &b); /* evicts d */
    expect(c, 2, 4, 2, 2);
    use(c, "t/d", "1", &d); /* evicts a */
    expect(c, 2, 5, 3, 2);
    use(c, "t/b", "1", &b);
    expect(c, 3, 5, 3, 2);

    /* An entry in use is never evicted: the budget is exceeded instead. */
    struct slora_cache_handle *hb = get(c, "t/b", "1", &b);
    struct slora_cache_handle *hd = get(c, "t/d", "1", &d);
    struct slora_cache_handle *ha = get(c, "t/a", "1", &a);
    expect(c, 5, 6, 3, 3);
    slora_cache_release(c, hd); /* least recent unused: dropped now */
    expect(c, 5, 6, 4, 2);
    slora_cache_release(c, ha);
    slora_cache_release(c, hb);
    expect(c, 5, 6, 4, 2);
    struct slora_cache_stats st;
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.bytes, 2 * (size_t)MAT_BYTES);
    ck_assert_uint_eq(st.gen_count, 6);
    slora_cache_free(c);
}
END_TEST

START_TEST(pins)
{
    struct slora_cache *c = new_cache(2 * MAT_BYTES + MAT_BYTES / 2);
    struct fake a, b, d, big;
    fake_init(&a, 1, 1), fake_init(&b, 1, 2), fake_init(&d, 1, 3), fake_init(&big, 2, 4);
    char diag[256];
    ck_assert_int_eq(slora_cache_pin(c, "t/a", "1", &a.a, diag, sizeof(diag)), 0);
    ck_assert(slora_cache_is_pinned(c, "t/a"));
    use(c, "t/b", "1", &b);
    use(c, "t/d", "1", &d); /* evicts b, never the pinned a */
    use(c, "t/b", "1", &b); /* evicts d */
    use(c, "t/a", "1", &a);
    expect(c, 1, 4, 2, 2);

    /* Pinned bytes count against the budget: a + big do not fit. */
    struct slora_cache_stats before, after;
    slora_cache_stats(c, &before);
    ck_assert_int_eq(slora_cache_pin(c, "t/big", "1", &big.a, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_ptr_nonnull(strstr(diag, "budget"));
    slora_cache_stats(c, &after);
    ck_assert_uint_eq(after.misses, before.misses);
    ck_assert_uint_eq(after.entries, before.entries);
    ck_assert_uint_eq(after.pinned_bytes, MAT_BYTES);
    ck_assert(!slora_cache_is_pinned(c, "t/big"));
    ck_assert_int_eq(slora_cache_pin_check(c, "t/big", &big.a, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_ptr_nonnull(strstr(diag, "pinning t/big needs"));
    /* big replacing a's own pin fits. */
    ck_assert_int_eq(slora_cache_pin_check(c, "t/a", &big.a, diag, sizeof(diag)), 0);

    /* The pin carries over to a replacing version; the old one goes. */
    ck_assert_int_eq(slora_cache_retire(c, "t/a", "2", &a.a), 0);
    ck_assert(slora_cache_is_pinned(c, "t/a"));
    slora_cache_stats(c, &after);
    ck_assert_uint_eq(after.pinned_bytes, MAT_BYTES);
    uint64_t misses = after.misses;
    use(c, "t/a", "2", &a);
    slora_cache_stats(c, &after);
    ck_assert_uint_eq(after.misses, misses);

    /* A version nobody retired explicitly inherits the pin when generated. */
    use(c, "t/a", "3", &a);
    use(c, "t/b", "1", &b);
    use(c, "t/d", "1", &d);
    slora_cache_stats(c, &after);
    ck_assert_uint_eq(after.pinned_bytes, MAT_BYTES);
    misses = after.misses;
    use(c, "t/a", "3", &a);
    slora_cache_stats(c, &after);
    ck_assert_uint_eq(after.misses, misses);

    slora_cache_unpin(c, "t/a");
    ck_assert(!slora_cache_is_pinned(c, "t/a"));
    slora_cache_stats(c, &after);
    ck_assert_uint_eq(after.pinned_bytes, 0);
    slora_cache_free(c);
}
END_TEST

struct reserver {
    struct slora_cache *c;
    const char *id;
    const struct fake *f;
    pthread_barrier_t *go;
    struct slora_cache_reservation *r;
    int err;
    char diag[256];
};

static void *reserve(void *arg)
{
    struct reserver *x = arg;
    pthread_barrier_wait(x->go);
    x->err = slora_cache_pin_reserve(x->c, x->id, &x->f->a, &x->r, x->diag, sizeof(x->diag));
    return NULL;
}

START_TEST(pin_reservations)
{
    struct slora_cache *c = new_cache(2 * MAT_BYTES + MAT_BYTES / 2);
    struct fake a, b, d;
    fake_init(&a, 2, 1), fake_init(&b, 2, 2), fake_init(&d, 1, 3);

    /* Two concurrent reservations of 2 matrices each in a 2.5 budget. */
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    struct reserver x[2] = {{c, "t/a", &a, &go, NULL, 0, ""}, {c, "t/b", &b, &go, NULL, 0, ""}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, reserve, &x[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    int win = x[0].err == 0 ? 0 : 1, lose = 1 - win;
    ck_assert_int_eq(x[win].err, 0);
    ck_assert_ptr_nonnull(x[win].r);
    ck_assert_int_eq(x[lose].err, SLORA_ENOSPC);
    ck_assert_ptr_null(x[lose].r);
    ck_assert_ptr_nonnull(strstr(x[lose].diag, "the delta cache budget is"));

    /* The reserved bytes are taken from plain pins too, and nothing is
     * pinned or generated yet. */
    char diag[256];
    ck_assert_int_eq(slora_cache_pin(c, "t/d", "1", &d.a, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_int_eq(slora_cache_pin_check(c, "t/d", &d.a, diag, sizeof(diag)), SLORA_ENOSPC);
    struct slora_cache_stats st;
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.pinned_bytes, 0);
    ck_assert_uint_eq(st.misses, 0);

    /* Release restores the budget: the loser now fits. */
    slora_cache_pin_unreserve(c, x[win].r);
    slora_cache_pin_unreserve(c, NULL);
    ck_assert_int_eq(slora_cache_pin_reserve(c, x[lose].id, &x[lose].f->a, &x[lose].r, diag,
                                             sizeof(diag)),
                     0);

    /* Conversion: the reservation becomes the pin of the stored version. */
    ck_assert_int_eq(slora_cache_pin_commit(c, x[lose].r, "1", &x[lose].f->a, diag, sizeof(diag)),
                     0);
    ck_assert(slora_cache_is_pinned(c, x[lose].id));
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.pinned_bytes, 2 * (size_t)MAT_BYTES);
    ck_assert_uint_eq(st.misses, 1);
    /* ... and the budget holds it exactly once: d (1 matrix) does not fit,
     * a replacement of the pinned id by d does, and leaves its pin alone
     * until committed. */
    ck_assert_int_eq(slora_cache_pin_reserve(c, "t/d", &d.a, &x[win].r, diag, sizeof(diag)),
                     SLORA_ENOSPC);
    struct slora_cache_reservation *r;
    ck_assert_int_eq(slora_cache_pin_reserve(c, x[lose].id, &d.a, &r, diag, sizeof(diag)), 0);
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.pinned_bytes, 2 * (size_t)MAT_BYTES);
    ck_assert_int_eq(slora_cache_pin_commit(c, r, "2", &d.a, diag, sizeof(diag)), 0);
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.pinned_bytes, (size_t)MAT_BYTES);
    slora_cache_free(c);
}
END_TEST

/* A tenant's pins (ids "tenant/name") stay within tenant_pin_bytes: a
 * reservation and a carried-over pin count, a replacement of the tenant's
 * own pin and other tenants' pins are unaffected. */
START_TEST(tenant_pins)
{
    struct slora_cache_config cfg = {.budget_bytes = 8 * MAT_BYTES,
                                     .tenant_pin_bytes = 2 * MAT_BYTES + MAT_BYTES / 2,
                                     .gen_threads = 1,
                                     .gen = fake_gen};
    struct slora_cache *c = slora_cache_new(model, &cfg);
    ck_assert_ptr_nonnull(c);
    struct fake one, two;
    fake_init(&one, 1, 1), fake_init(&two, 2, 2);
    char diag[256];
    ck_assert_int_eq(slora_cache_pin(c, "acme/a", "1", &two.a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_cache_pin(c, "acme/b", "1", &one.a, diag, sizeof(diag)), SLORA_ENOSPC);
    char want[200];
    snprintf(want, sizeof(want),
             "pinning acme/b needs %d bytes (%d pinned by tenant acme); "
             "max_pinned_bytes_per_tenant is %d bytes",
             MAT_BYTES, 3 * MAT_BYTES, 2 * MAT_BYTES + MAT_BYTES / 2);
    ck_assert_str_eq(diag, want);
    ck_assert(!slora_cache_is_pinned(c, "acme/b"));
    /* another tenant, and a tenant whose name is a prefix, pin freely */
    ck_assert_int_eq(slora_cache_pin(c, "beta/a", "1", &two.a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_cache_pin(c, "acm/a", "1", &two.a, diag, sizeof(diag)), 0);
    /* replacing acme/a's own pin by a smaller version fits; then acme/b does */
    ck_assert_int_eq(slora_cache_pin(c, "acme/a", "2", &one.a, diag, sizeof(diag)), 0);
    struct slora_cache_reservation *r;
    ck_assert_int_eq(slora_cache_pin_reserve(c, "acme/b", &one.a, &r, diag, sizeof(diag)), 0);
    /* the reservation holds acme's last bytes: a third pin does not fit */
    ck_assert_int_eq(slora_cache_pin_check(c, "acme/c", &one.a, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_ptr_nonnull(strstr(diag, "pinned by tenant acme"));
    ck_assert_int_eq(slora_cache_pin_commit(c, r, "1", &one.a, diag, sizeof(diag)), 0);
    /* a new version of acme/a too large for acme's share is not pinned */
    use(c, "acme/a", "3", &two);
    ck_assert(slora_cache_is_pinned(c, "acme/a"));
    struct slora_cache_stats st;
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.pinned_bytes, (2 + 2 + 1 + 1) * (size_t)MAT_BYTES);
    slora_cache_free(c);
}
END_TEST

START_TEST(oversize)
{
    struct slora_cache *c = new_cache(2 * MAT_BYTES + MAT_BYTES / 2);
    struct fake a, big;
    fake_init(&a, 1, 1), fake_init(&big, 3, 2);
    use(c, "t/a", "1", &a);
    struct slora_cache_handle *h = get(c, "t/big", "1", &big);
    const float *dw = delta_f32(slora_cache_handle_weights(h), 2, SLORA_MOD_WQ);
    ck_assert_float_eq(dw[5], 2.0f * (float)((2 * 4096 + 5) % 7 - 3));
    struct slora_cache_stats st;
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.bytes, 3 * (size_t)MAT_BYTES); /* over budget while in use */
    slora_cache_release(c, h);
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.evictions, 2); /* a made room at the miss, big after use */
    slora_cache_free(c);
}
END_TEST

START_TEST(zero_budget)
{
    /* delta_cache_bytes 0: every entry serves its requests, then goes. */
    struct slora_cache *c = new_cache(0);
    struct fake a;
    fake_init(&a, 1, 1);
    struct slora_cache_handle *h1 = get(c, "t/a", "1", &a);
    struct slora_cache_handle *h2 = get(c, "t/a", "1", &a);
    expect(c, 1, 1, 0, 1);
    slora_cache_release(c, h1);
    expect(c, 1, 1, 0, 1);
    slora_cache_release(c, h2);
    expect(c, 1, 1, 1, 0);
    char diag[128];
    ck_assert_int_eq(slora_cache_pin(c, "t/a", "1", &a.a, diag, sizeof(diag)), SLORA_ENOSPC);
    slora_cache_free(c);
}
END_TEST

struct racer {
    struct slora_cache *c;
    const struct fake *f;
    struct slora_cache_handle *h;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    char diag[64];
    ck_assert_int_eq(slora_cache_acquire_wait(r->c, "t/a", "1", &r->f->a, &r->h, diag,
                                              sizeof(diag)),
                     0);
    return NULL;
}

START_TEST(single_flight)
{
    struct slora_cache *c = new_cache(SLORA_CACHE_DEFAULT_BYTES);
    struct fake a;
    fake_init(&a, 1, 1);
    set_gate(true);
    struct racer r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){c, &a, NULL};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    /* Wait until every racer is registered on the one entry. */
    for (;;) {
        struct slora_cache_stats st;
        slora_cache_stats(c, &st);
        if (st.hits + st.misses == 4)
            break;
        sched_yield();
    }
    set_gate(false);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(gen_calls, 1);
    expect(c, 3, 1, 0, 1);
    for (int i = 1; i < 4; i++)
        ck_assert_ptr_eq(r[i].h, r[0].h);
    for (int i = 0; i < 4; i++)
        slora_cache_release(c, r[i].h);
    slora_cache_free(c);
}
END_TEST

START_TEST(retire)
{
    struct slora_cache *c = new_cache(SLORA_CACHE_DEFAULT_BYTES);
    struct fake a1, a2, b;
    fake_init(&a1, 1, 1), fake_init(&a2, 2, 2), fake_init(&b, 1, 3);
    struct slora_cache_handle *h1 = get(c, "t/a", "1", &a1);
    use(c, "t/b", "1", &b);
    ck_assert_int_eq(slora_cache_retire(c, "t/a", "2", &a2.a), 0);
    /* Still usable by its running request, no longer served to new ones. */
    ck_assert_float_eq(delta_f32(slora_cache_handle_weights(h1), 0, SLORA_MOD_WQ)[0], -3.0f);
    expect(c, 0, 2, 0, 2);
    slora_cache_release(c, h1);
    expect(c, 0, 2, 0, 1);
    use(c, "t/a", "2", &a2);
    expect(c, 0, 3, 0, 2);
    /* A delete retires every version; unused entries go at once. */
    ck_assert_int_eq(slora_cache_retire(c, "t/a", NULL, NULL), 0);
    expect(c, 0, 3, 0, 1);
    struct slora_cache_stats st;
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.bytes, MAT_BYTES);
    slora_cache_free(c);
}
END_TEST

/* A one-adapter "registry": t/a is at version current_a. */
static const char *current_a = "1";

static bool is_current(void *arg, const char *id, const char *version)
{
    (void)arg;
    return strcmp(id, "t/a") || !strcmp(version, current_a);
}

START_TEST(unregistered_swept)
{
    struct slora_cache_config cfg = {
        .budget_bytes = SLORA_CACHE_DEFAULT_BYTES, .gen = fake_gen, .is_current = is_current};
    struct slora_cache *c = slora_cache_new(model, &cfg);
    ck_assert_ptr_nonnull(c);
    struct fake a, b;
    fake_init(&a, 1, 1), fake_init(&b, 1, 2);
    current_a = "1";
    use(c, "t/a", "1", &a);
    struct slora_cache_handle *h = get(c, "t/a", "1", &a);
    current_a = "2"; /* replaced without telling the cache */
    use(c, "t/b", "1", &b);
    expect(c, 1, 2, 0, 2); /* t/a@1 still in use */
    slora_cache_release(c, h);
    expect(c, 1, 2, 0, 1); /* freed by its last release */
    use(c, "t/a", "2", &a);
    current_a = "3";
    use(c, "t/b", "1", &b); /* the next acquire sweeps t/a@2 */
    expect(c, 2, 3, 0, 1);
    slora_cache_free(c);
}
END_TEST

START_TEST(gen_failure)
{
    struct slora_cache *c = new_cache(SLORA_CACHE_DEFAULT_BYTES);
    struct fake bad;
    fake_init(&bad, 1, -1);
    struct slora_cache_handle *h = (void *)1;
    char diag[256];
    ck_assert_int_eq(slora_cache_acquire_wait(c, "t/bad", "1", &bad.a, &h, diag, sizeof(diag)),
                     SLORA_ENONFINITE);
    ck_assert_ptr_null(h);
    ck_assert_ptr_nonnull(strstr(diag, "non-finite entry at 17"));
    struct slora_cache_stats st;
    slora_cache_stats(c, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.gen_failures, 1);
    ck_assert_uint_eq(st.gen_count, 0);
    /* The key is not poisoned: the next acquire generates again. */
    ck_assert_int_eq(slora_cache_acquire_wait(c, "t/bad", "1", &bad.a, &h, diag, sizeof(diag)),
                     SLORA_ENONFINITE);
    ck_assert_int_eq(gen_calls, 2);
    char long_version[SLORA_CACHE_VERSION_MAX + 1];
    memset(long_version, 'a', sizeof(long_version) - 1);
    long_version[sizeof(long_version) - 1] = 0;
    ck_assert_int_eq(slora_cache_acquire_wait(c, "t/bad", long_version, &bad.a, &h, diag,
                                              sizeof(diag)),
                     SLORA_EINVAL);
    slora_cache_free(c);
}
END_TEST

Suite *slora_cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, delta_weights);
    tcase_add_test(tc, lru_script);
    tcase_add_test(tc, pins);
    tcase_add_test(tc, pin_reservations);
    tcase_add_test(tc, tenant_pins);
    tcase_add_test(tc, oversize);
    tcase_add_test(tc, zero_budget);
    tcase_add_test(tc, single_flight);
    tcase_add_test(tc, retire);
    tcase_add_test(tc, unregistered_swept);
    tcase_add_test(tc, gen_failure);
    suite_add_tcase(s, tc);
    return s;
}
