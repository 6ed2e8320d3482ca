/* tok_merge.c - the merge loop of SPM, llama2.c and BPE encoding.
 *
 * llama.cpp's sessions (and run.c's scan) repeatedly merge the adjacent
 * pair with the best priority, the leftmost on ties. Here a binary heap keyed
 * (priority, left position) holds candidate pairs; an entry is stale once
 * either symbol changed (the left one no longer ends where the right one
 * starts, or their lengths no longer add up), and is skipped when popped.
 * Each merge pushes at most two new pairs, so the heap holds at most
 * 3 * n entries and the loop costs O(n log n).
 */
#include "tok_internal.h"

#include <slora/error.h>

struct pair {
    double prio;
    int32_t left;
    int32_t right;
    uint32_t size; /* left.len + right.len when pushed */
    int32_t id;
};

struct heap {
    struct pair *p;
    size_t n;
};

static bool before(const struct pair *a, const struct pair *b)
{
    return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

static void push(struct heap *h, struct pair x)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&x, &h->p[parent]))
            break;
        h->p[i] = h->p[parent];
        i = parent;
    }
    h->p[i] = x;
}

static struct pair pop(struct heap *h)
{
    struct pair top = h->p[0], last = h->p[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->p[c + 1], &h->p[c]))
            c++;
        if (!before(&h->p[c], &last))
            break;
        h->p[i] = h->p[c];
        i = c;
    }
    if (h->n)
        h->p[i] = last;
    return top;
}

static void consider(struct heap *h, const struct slora__tok_sym *sym, int left,
                     slora__tok_pair_fn pair, const void *ctx)
{
    if (left < 0 || sym[left].next < 0)
        return;
    int right = sym[left].next;
    struct pair x = {.left = left, .right = right, .size = sym[left].len + sym[right].len};
    if (pair(ctx, &sym[left], &sym[right], &x.prio, &x.id))
        push(h, x);
}

int slora__tok_merge(struct slora__tok_sym *sym, int n, slora__tok_pair_fn pair, const void *ctx,
                     struct slora__tok_scratch *s)
{
    if (n < 2)
        return 0;
    struct heap h = {slora__tok_scratch_get(s, SLORA__SCR_HEAP, 3 * (size_t)n * sizeof(*h.p)), 0};
    if (!h.p)
        return SLORA_ENOMEM;
    for (int i = 0; i + 1 < n; i++)
        consider(&h, sym, i, pair, ctx);
    while (h.n) {
        struct pair x = pop(&h);
        struct slora__tok_sym *l = &sym[x.left], *r = &sym[x.right];
        if (l->len == 0 || r->len == 0 || l->next != x.right || l->len + r->len != x.size)
            continue;
        l->len += r->len;
        l->id = x.id;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = x.left;
        consider(&h, sym, l->prev, pair, ctx);
        consider(&h, sym, x.left, pair, ctx);
    }
    return 0;
}
