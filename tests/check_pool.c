/* check_pool.c - the forward pass's thread team: barriers hold over many
 * rounds and runs (also with more threads than cores, where waiters
 * sleep), runs use the team size asked for and wake no other worker, the
 * team size follows the work, every wait's sleep and wake-up path
 * completes, and claimed work goes to exactly one thread, first come first
 * served. */
#include <slora/pool.h>

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#define MAX_TEAM 8
#define ROUNDS 500

/* Each round every thread writes its slot, meets the others, then checks
 * every slot holds this round (a thread let through early would find a
 * slot of the previous round), and meets them again before the next
 * write. */
struct rounds {
    struct slora_pool *p;
    int rounds;
    atomic_int slot[MAX_TEAM];
    atomic_int bad;
    atomic_int ran[MAX_TEAM]; /* runs each ith took part in */
    atomic_int seen_nth;      /* nth passed to the function, -1 if they disagree */
};

static void rounds_fn(void *arg, int ith, int nth)
{
    struct rounds *r = arg;
    atomic_fetch_add(&r->ran[ith], 1);
    int want = nth;
    if (!atomic_compare_exchange_strong(&r->seen_nth, &want, nth) && want != nth)
        atomic_store(&r->seen_nth, -1);
    for (int k = 1; k <= r->rounds; k++) {
        atomic_store_explicit(&r->slot[ith], k, memory_order_relaxed);
        slora_pool_barrier(r->p);
        for (int j = 0; j < nth; j++)
            if (atomic_load_explicit(&r->slot[j], memory_order_relaxed) != k)
                atomic_fetch_add(&r->bad, 1);
        slora_pool_barrier(r->p);
    }
}

static int ld(atomic_int *v)
{
    return atomic_load(v);
}

static void rounds_reset(struct rounds *r, struct slora_pool *p, int n_rounds, int nth)
{
    memset(r, 0, sizeof(*r));
    r->p = p;
    r->rounds = n_rounds;
    atomic_store(&r->seen_nth, nth);
}

/* Teams of 2, 3 and 8 threads on this machine's cores (2 in CI): the
 * larger ones have more threads than cores, so barrier waits go to sleep
 * and are woken, as well as spin. */
static const int team_sizes[] = {2, 3, 8};

START_TEST(barrier_many_rounds)
{
    int n = team_sizes[_i];
    struct slora_pool *p = slora_pool_new(n);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(slora_pool_size(p), n);
    struct rounds r;
    for (int run = 0; run < 20; run++) {
        rounds_reset(&r, p, ROUNDS / (n > 2 ? 5 : 1), n);
        slora_pool_run(p, rounds_fn, &r);
        ck_assert_int_eq(ld(&r.bad), 0);
        ck_assert_int_eq(ld(&r.seen_nth), n);
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(ld(&r.ran[i]), 1);
    }
    slora_pool_free(p);
}
END_TEST

/* A run of k threads calls the function on ith 0..k-1 only, with nth k;
 * k is clamped to 1..size. */
START_TEST(run_team_sizes)
{
    struct slora_pool *p = slora_pool_new(4);
    ck_assert_ptr_nonnull(p);
    const int ask[] = {2, 3, 1, 4, 0, -5, 99, 2};
    const int want[] = {2, 3, 1, 4, 1, 1, 4, 2};
    for (size_t c = 0; c < sizeof(ask) / sizeof(ask[0]); c++) {
        struct rounds r;
        rounds_reset(&r, p, 50, want[c]);
        slora_pool_run_team(p, ask[c], rounds_fn, &r);
        ck_assert_int_eq(ld(&r.bad), 0);
        ck_assert_int_eq(ld(&r.seen_nth), want[c]);
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(ld(&r.ran[i]), i < want[c]);
    }
    slora_pool_free(p);
}
END_TEST

/* A run of one thread is the caller's own call; its barriers return at
 * once (with a barrier waiting for absent workers it would never end). */
struct solo {
    struct slora_pool *p;
    pthread_t caller;
    int calls, on_caller, nth;
};

static void solo_fn(void *arg, int ith, int nth)
{
    struct solo *s = arg;
    s->calls++;
    s->on_caller += ith == 0 && pthread_equal(pthread_self(), s->caller);
    s->nth = nth;
    for (int k = 0; k < 1000; k++)
        slora_pool_barrier(s->p);
}

START_TEST(solo_runs_on_caller)
{
    for (int n = 1; n <= 3; n++) {
        struct slora_pool *p = slora_pool_new(n == 1 ? 0 : n); /* 0: a team of 1 */
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(slora_pool_size(p), n);
        struct solo s = {.p = p, .caller = pthread_self()};
        slora_pool_run_team(p, 1, solo_fn, &s);
        ck_assert_int_eq(s.calls, 1);
        ck_assert_int_eq(s.on_caller, 1);
        ck_assert_int_eq(s.nth, 1);
        if (n == 1) {
            slora_pool_run(p, solo_fn, &s);
            ck_assert_int_eq(s.calls, 2);
            ck_assert_int_eq(s.on_caller, 2);
        }
        slora_pool_free(p);
    }
}
END_TEST

/* Team size from the work: threads whose share of a phase reaches the
 * minimum share, 1 to the team's size. */
static const struct {
    double ops;
    int phases, team;
} team_cases[] = {
    {0, 10, 1},
    {-1, 10, 1},
    {NAN, 10, 1},
    {INFINITY, 10, 4},
    {SLORA_POOL_MIN_SHARE * 10 - 1, 10, 1},  /* just under one share per phase */
    {SLORA_POOL_MIN_SHARE * 10, 10, 1},      /* one share */
    {SLORA_POOL_MIN_SHARE * 20, 10, 2},      /* two shares */
    {SLORA_POOL_MIN_SHARE * 39.9, 10, 3},    /* rounds down */
    {SLORA_POOL_MIN_SHARE * 40, 10, 4},
    {SLORA_POOL_MIN_SHARE * 1e6, 10, 4},     /* never above the team */
    {SLORA_POOL_MIN_SHARE * 3, 0, 3},        /* phases < 1 count as 1 */
    {SLORA_POOL_MIN_SHARE * 3, -7, 3},
};

START_TEST(team_from_work)
{
    struct slora_pool *p = slora_pool_new(4);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(slora_pool_team(p, team_cases[_i].ops, team_cases[_i].phases),
                     team_cases[_i].team);
    slora_pool_free(p);
}
END_TEST

START_TEST(team_min_share)
{
    struct slora_pool *p = slora_pool_new(3);
    ck_assert_ptr_nonnull(p);
    slora_pool_set_min_share(p, 100);
    ck_assert_int_eq(slora_pool_team(p, 199, 1), 1);
    ck_assert_int_eq(slora_pool_team(p, 200, 1), 2);
    ck_assert_int_eq(slora_pool_team(p, 2000, 10), 2);
    slora_pool_set_min_share(p, 0); /* every run is worth the whole team */
    ck_assert_int_eq(slora_pool_team(p, 0, 100), 3);
    ck_assert_int_eq(slora_pool_team(p, 1, 1), 3);
    ck_assert_int_eq(slora_pool_team(p, NAN, 1), 1);
    slora_pool_free(p);
    struct slora_pool *one = slora_pool_new(1);
    ck_assert_ptr_nonnull(one);
    ck_assert_int_eq(slora_pool_team(one, INFINITY, 1), 1);
    slora_pool_free(one);
}
END_TEST

/* Wait (yielding) until the pool has counted `want` more sleeps than
 * `base`. */
static void await_sleeps(struct slora_pool *p, unsigned long base, unsigned long want)
{
    while (slora_pool_sleeps(p) < base + want)
        sched_yield();
}

/* Every wait's sleep and wake-up path, forced in turn: thread 0 reaches the
 * barrier only after the workers went to sleep there; the workers return
 * only after the caller went to sleep waiting for the end of the run (the
 * one thread left that can sleep). Each hold-back would never end if the
 * waits only spun. */
struct sleepy {
    struct slora_pool *p;
    unsigned long base;
    atomic_int passed;
};

static void sleepy_fn(void *arg, int ith, int nth)
{
    struct sleepy *s = arg;
    if (ith == 0)
        await_sleeps(s->p, s->base, (unsigned long)(nth - 1));
    slora_pool_barrier(s->p);
    atomic_fetch_add(&s->passed, 1);
    if (ith > 0)
        await_sleeps(s->p, s->base, (unsigned long)nth);
}

START_TEST(sleep_and_wake)
{
    int n = 3;
    struct slora_pool *p = slora_pool_new(n);
    ck_assert_ptr_nonnull(p);
    for (int run = 0; run < 3; run++) {
        /* idle workers sleep after their spin; the run wakes them */
        await_sleeps(p, 0, (unsigned long)(n - 1) * (run + 1));
        struct sleepy s = {.p = p, .base = slora_pool_sleeps(p)};
        slora_pool_run(p, sleepy_fn, &s);
        ck_assert_int_eq(ld(&s.passed), n);
        ck_assert_uint_ge(slora_pool_sleeps(p), s.base + (unsigned long)n);
        /* and a normal run after it */
        struct rounds r;
        rounds_reset(&r, p, 20, n);
        slora_pool_run(p, rounds_fn, &r);
        ck_assert_int_eq(ld(&r.bad), 0);
    }
    slora_pool_free(p);
}
END_TEST

/* Claims: over a sequence of spaces (empty ones too; some met by a
 * barrier, most not, and threads yielding their core mid-space so others
 * run ahead into the next space), every item of every space goes to
 * exactly one thread, in every run of the same team. */
static const int claim_sizes[] = {5, 0, 1, 64, 3, 1000, 7, 2, 0, 33};
#define CLAIM_ROUNDS 20
#define CLAIM_SPACES (CLAIM_ROUNDS * (int)(sizeof(claim_sizes) / sizeof(claim_sizes[0])))

struct claims {
    struct slora_pool *p;
    atomic_int count[CLAIM_SPACES][1000]; /* claims of (space, item) */
    atomic_int bad;                       /* items outside their space */
};

static void claims_fn(void *arg, int ith, int nth)
{
    struct claims *c = arg;
    (void)nth;
    for (int sp = 0; sp < CLAIM_SPACES; sp++) {
        int64_t n = claim_sizes[sp % (int)(sizeof(claim_sizes) / sizeof(claim_sizes[0]))], item;
        int k = 0;
        while (slora_pool_claim(c->p, ith, n, &item)) {
            if (item < 0 || item >= n)
                atomic_fetch_add(&c->bad, 1);
            else
                atomic_fetch_add(&c->count[sp][item], 1);
            if (++k % 97 == ith)
                sched_yield();
        }
        if (sp % 7 == 0)
            slora_pool_barrier(c->p);
    }
}

START_TEST(claims_once_each)
{
    static const int sizes[] = {1, 2, 3, 8};
    static struct claims c;
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        struct slora_pool *p = slora_pool_new(sizes[t]);
        ck_assert_ptr_nonnull(p);
        for (int run = 0; run < 2; run++) {
            memset(&c, 0, sizeof(c));
            c.p = p;
            slora_pool_run(p, claims_fn, &c);
            ck_assert_int_eq(ld(&c.bad), 0);
            for (int sp = 0; sp < CLAIM_SPACES; sp++) {
                int n = claim_sizes[sp % (int)(sizeof(claim_sizes) / sizeof(claim_sizes[0]))];
                for (int i = 0; i < 1000; i++)
                    ck_assert_int_eq(ld(&c.count[sp][i]), i < n ? 1 : 0);
            }
        }
        slora_pool_free(p);
    }
}
END_TEST

/* First come, first served: while thread 1 is held back, thread 0 claims
 * every item of the space, and thread 1's first claim finds it empty; both
 * then share the next space. */
struct late {
    struct slora_pool *p;
    atomic_int first_done;
    atomic_int got[2][2]; /* items of space 0 and 1 per thread */
};

static void late_fn(void *arg, int ith, int nth)
{
    struct late *l = arg;
    int64_t item;
    (void)nth;
    if (ith == 1)
        while (!atomic_load(&l->first_done))
            sched_yield();
    while (slora_pool_claim(l->p, ith, 50, &item))
        atomic_fetch_add(&l->got[ith][0], 1);
    if (ith == 0)
        atomic_store(&l->first_done, 1);
    slora_pool_barrier(l->p);
    while (slora_pool_claim(l->p, ith, 20, &item))
        atomic_fetch_add(&l->got[ith][1], 1);
}

START_TEST(claims_first_come)
{
    struct slora_pool *p = slora_pool_new(2);
    ck_assert_ptr_nonnull(p);
    struct late l = {.p = p};
    slora_pool_run(p, late_fn, &l);
    ck_assert_int_eq(ld(&l.got[0][0]), 50);
    ck_assert_int_eq(ld(&l.got[1][0]), 0);
    ck_assert_int_eq(ld(&l.got[0][1]) + ld(&l.got[1][1]), 20);
    slora_pool_free(p);
}
END_TEST

/* Freeing a team whose workers sleep joins them (no hang, no leak under
 * the sanitizers), as does freeing one right after creation. */
START_TEST(free_sleeping_team)
{
    struct slora_pool *p = slora_pool_new(4);
    ck_assert_ptr_nonnull(p);
    await_sleeps(p, 0, 3);
    slora_pool_free(p);
    slora_pool_free(slora_pool_new(4));
    slora_pool_free(NULL);
}
END_TEST

Suite *slora_pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, barrier_many_rounds, 0, (int)(sizeof(team_sizes) / sizeof(team_sizes[0])));
    tcase_add_test(tc, run_team_sizes);
    tcase_add_test(tc, solo_runs_on_caller);
    tcase_add_loop_test(tc, team_from_work, 0, (int)(sizeof(team_cases) / sizeof(team_cases[0])));
    tcase_add_test(tc, team_min_share);
    tcase_add_test(tc, sleep_and_wake);
    tcase_add_test(tc, claims_once_each);
    tcase_add_test(tc, claims_first_come);
    tcase_add_test(tc, free_sleeping_team);
    suite_add_tcase(s, tc);
    return s;
}
