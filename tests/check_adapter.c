/* check_adapter.c - adapter parsing: every rejection of spec sections 1-7 with
 * its code and a message naming the key or tensor; the derived target list
 * and group table of accepted adapters. Adapters are built at test time. */
#include "st_build.h"

#include <slora/adapter.h>
#include <slora/error.h>
#include <slora/superlora.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* stories260K: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512 */
static const struct slora_shape model = {64, 172, 5, 8, 4, 512};

#define BASE                                                                                       \
    "\"base\":{\"dim\":64,\"n_layers\":5,\"n_heads\":8,\"n_kv_heads\":4,\"hidden_dim\":172,"       \
    "\"vocab_size\":512}"
#define CFG(extra) "{\"version\":1," BASE ",\"modules\":[\"wq\"],\"layers\":[0]" extra "}"
/* LoRA r = 2 on layer 0 wq: N = 4096, one group */
#define LORA "g0.k0.f0=64x2 g0.k0.f1=64x2"

struct bad {
    const char *what;
    const char *config;
    const char *spec;
    const char *from, *to; /* header substitution */
    int poison_at;         /* F32 element of the data set to poison (-1 none) */
    float poison;
    int64_t max_params; /* 0 = default limit */
    int want;
    const char *frag;
};

#define NONE -1, 0, 0

static const struct bad bads[] = {
    /* safetensors structure reaches the adapter parser's caller unchanged */
    {"bad dtype", CFG(""), LORA, "\"F32\"", "\"F64\"", NONE, SLORA_EFORMAT,
     "tensor 'g0.k0.f0': unsupported dtype 'F64'"},
    {"offsets", CFG(""), LORA, "[512,1024]", "[512,1020]", NONE, SLORA_EFORMAT,
     "tensor 'g0.k0.f1': data_offsets [512, 1020]"},
    /* __metadata__.superlora */
    {"no metadata", NULL, LORA, NULL, NULL, NONE, SLORA_EFORMAT, "__metadata__.superlora missing"},
    {"no superlora", "@{\"other\":\"x\"}", LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "__metadata__.superlora missing"},
    {"superlora not string", "@{\"superlora\":{\"version\":1}}", LORA, NULL, NULL, NONE,
     SLORA_EFORMAT, "__metadata__.superlora is not a string"},
    {"config not json", "{\"version\":1,", LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "__metadata__.superlora is not valid JSON"},
    {"config not object", "[1]", LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "__metadata__.superlora is not a JSON object"},
    {"duplicate key", CFG(",\"alpha\":1,\"alpha\":2"), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "duplicate object key"},
    {"version 2", "{\"version\":2," BASE ",\"modules\":[\"wq\"]}", LORA, NULL, NULL, NONE,
     SLORA_EFORMAT, "superlora.version must be the integer 1"},
    {"version string", "{\"version\":\"1\"," BASE ",\"modules\":[\"wq\"]}", LORA, NULL, NULL, NONE,
     SLORA_EFORMAT, "superlora.version"},
    {"no version", "{" BASE ",\"modules\":[\"wq\"]}", LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.version missing"},
    {"no base", "{\"version\":1,\"modules\":[\"wq\"]}", LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.base missing"},
    {"no modules", "{\"version\":1," BASE "}", LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.modules missing"},
    {"unknown key", CFG(",\"rank\":4"), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora: unknown key 'rank'"},
    {"unknown base key",
     "{\"version\":1,\"base\":{\"dim\":64,\"seq_len\":256},\"modules\":[\"wq\"]}", LORA, NULL, NULL,
     NONE, SLORA_EFORMAT, "superlora.base: unknown key 'seq_len'"},
    {"unknown shuffle key", CFG(",\"shuffle\":{\"seed\":1,\"x\":2}"), LORA, NULL, NULL, NONE,
     SLORA_EFORMAT, "superlora.shuffle: unknown key 'x'"},
    {"unknown projection key", CFG(",\"projection\":{\"kind\":\"fastfood\",\"seed\":1,\"l\":2}"),
     LORA, NULL, NULL, NONE, SLORA_EFORMAT, "superlora.projection: unknown key 'l'"},
    {"null top", CFG(",\"shuffle\":null"), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.shuffle is null"},
    {"null nested", CFG(",\"projection\":{\"kind\":\"fastfood\",\"seed\":null}"), LORA, NULL, NULL,
     NONE, SLORA_EFORMAT, "superlora.projection.seed is null"},
    {"null in list", "{\"version\":1," BASE ",\"modules\":[\"wq\",null]}", LORA, NULL, NULL, NONE,
     SLORA_EFORMAT, "superlora.modules[1] is null"},
    {"base missing key",
     "{\"version\":1,\"base\":{\"dim\":64,\"n_layers\":5,\"n_heads\":8,\"n_kv_heads\":4,"
     "\"vocab_size\":512},\"modules\":[\"wq\"]}",
     LORA, NULL, NULL, NONE, SLORA_EFORMAT, "superlora.base.hidden_dim missing"},
    {"base not integer", CFG(""), LORA, "\\\"dim\\\":64", "\\\"dim\\\":64.0", NONE, SLORA_EFORMAT,
     "superlora.base.dim must be a positive integer"},
    {"base mismatch", CFG(""), LORA, "\\\"hidden_dim\\\":172", "\\\"hidden_dim\\\":171", NONE,
     SLORA_EMISMATCH, "superlora.base.hidden_dim is 171, the loaded model has 172"},
    {"base vocab mismatch", CFG(""), LORA, "\\\"vocab_size\\\":512", "\\\"vocab_size\\\":-32000",
     NONE, SLORA_EMISMATCH, "superlora.base.vocab_size is 32000, the loaded model has 512"},
    {"modules empty", "{\"version\":1," BASE ",\"modules\":[]}", LORA, NULL, NULL, NONE,
     SLORA_EFORMAT, "superlora.modules must be a non-empty list"},
    {"unknown module", "{\"version\":1," BASE ",\"modules\":[\"wq\",\"wx\"]}", LORA, NULL, NULL,
     NONE, SLORA_EFORMAT, "superlora.modules[1]: unknown module 'wx'"},
    {"repeated module", "{\"version\":1," BASE ",\"modules\":[\"wq\",\"wv\",\"wq\"]}", LORA, NULL,
     NULL, NONE, SLORA_EFORMAT, "superlora.modules[2]: 'wq' repeats module 'wq'"},
    {"repeated via alias", "{\"version\":1," BASE ",\"modules\":[\"wq\",\"q_proj\"]}", LORA, NULL,
     NULL, NONE, SLORA_EFORMAT, "superlora.modules[1]: 'q_proj' repeats module 'wq'"},
    {"layers empty", CFG(""), LORA, "[0]", "[]", NONE, SLORA_EFORMAT,
     "superlora.layers must be a non-empty list"},
    {"layers unsorted", CFG(""), LORA, "[0]", "[1,0]", NONE, SLORA_EFORMAT,
     "superlora.layers[1] = 0: layers must be strictly ascending"},
    {"layers repeated", CFG(""), LORA, "[0]", "[2,2]", NONE, SLORA_EFORMAT,
     "superlora.layers[1] = 2: layers must be strictly ascending"},
    {"layer out of range", CFG(""), LORA, "[0]", "[0,5]", NONE, SLORA_EFORMAT,
     "superlora.layers[1] = 5 is outside [0, 5)"},
    {"layer negative", CFG(""), LORA, "[0]", "[-1]", NONE, SLORA_EFORMAT,
     "superlora.layers[0] = -1 is outside [0, 5)"},
    {"order bad", CFG(",\"order\":\"row\""), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.order must be"},
    {"seed negative", CFG(",\"shuffle\":{\"seed\":-1}"), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.shuffle.seed = -1 is outside [0, 2^53 - 1]"},
    {"seed 2^53", CFG(",\"shuffle\":{\"seed\":9007199254740992}"), LORA, NULL, NULL, NONE,
     SLORA_EFORMAT, "superlora.shuffle.seed = 9007199254740992 is outside"},
    {"seed real", CFG(",\"projection\":{\"kind\":\"fastfood\",\"seed\":1.0}"), LORA, NULL, NULL,
     NONE, SLORA_EFORMAT, "superlora.projection.seed must be an integer"},
    {"seed missing", CFG(",\"shuffle\":{}"), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.shuffle.seed must be an integer"},
    {"projection kind", CFG(",\"projection\":{\"kind\":\"gauss\",\"seed\":1}"), LORA, NULL, NULL,
     NONE, SLORA_EFORMAT, "superlora.projection.kind must be \"fastfood\""},
    {"groups 0", CFG(",\"groups\":0"), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.groups = 0 must be >= 1"},
    {"groups above N", CFG(",\"groups\":4097"), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.groups = 4097 is above N = 4096"},
    {"groups layer, order module", CFG(",\"order\":\"module\",\"groups\":\"layer\""), LORA, NULL,
     NULL, NONE, SLORA_EFORMAT, "superlora.groups \"layer\" requires order \"layer\""},
    {"groups module, order layer", CFG(",\"groups\":\"module\""), LORA, NULL, NULL, NONE,
     SLORA_EFORMAT, "superlora.groups \"module\" requires order \"module\""},
    {"groups bad string", CFG(",\"groups\":\"all\""), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.groups must be an integer or"},
    {"alpha huge", CFG(",\"alpha\":1e39"), LORA, NULL, NULL, NONE, SLORA_ENONFINITE,
     "superlora.alpha = 1e+39 is not a finite float32"},
    {"alpha overflows a double", CFG(",\"alpha\":1e400"), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "after key 'alpha'): real number overflow"},
    {"alpha string", CFG(",\"alpha\":\"1\""), LORA, NULL, NULL, NONE, SLORA_EFORMAT,
     "superlora.alpha must be a number"},
    /* tensors */
    {"missing factor", CFG(""), "g0.k0.f0=64x2 g0.k0.f2=64x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "missing tensor 'g0.k0.f1'"},
    {"missing group", CFG(",\"groups\":2"), "g1.k0.f0=64x2 g1.k0.f1=32x2", NULL, NULL, NONE,
     SLORA_EFORMAT, "missing tensor 'g0.k0.f0'"},
    {"missing last group", CFG(",\"groups\":2"), "g0.k0.f0=64x2 g0.k0.f1=32x2", NULL, NULL, NONE,
     SLORA_EFORMAT, "missing tensor 'g1.k0.f0'"},
    {"missing kron factor", CFG(""), "g0.k0.f0=8x2 g0.k0.f1=8x2 g0.k2.f0=8x2 g0.k2.f1=8x2", NULL,
     NULL, NONE, SLORA_EFORMAT, "missing tensor 'g0.k1.f0'"},
    {"core without factors", CFG(""), LORA " g0.k1.core=2x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "missing tensor 'g0.k1.f0' (next: 'g0.k1.core')"},
    {"no tensors", CFG(""), "", NULL, NULL, NONE, SLORA_EFORMAT, "missing tensor 'g0.k0.f0'"},
    {"extra group", CFG(""), LORA " g1.k0.f0=64x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "unexpected tensor 'g1.k0.f0': the adapter has 1 groups"},
    {"misnamed", CFG(""), LORA " g0.k0.x0=2x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "unexpected tensor 'g0.k0.x0'"},
    {"leading zero", CFG(""), "g0.k0.f0=64x2 g0.k0.f01=64x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "unexpected tensor 'g0.k0.f01'"},
    {"leading zero group", CFG(""), "g00.k0.f0=64x2 g0.k0.f1=64x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "unexpected tensor 'g00.k0.f0'"},
    {"trailing junk", CFG(""), LORA " g0.k0.core2=2x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "unexpected tensor 'g0.k0.core2'"},
    {"factor 3-D", CFG(""), "g0.k0.f0=64x2x1 g0.k0.f1=64x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "tensor 'g0.k0.f0': a factor matrix must be 2-D, it has 3 dimensions"},
    {"factor zero dim", CFG(""), "g0.k0.f0=64x0 g0.k0.f1=64x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "tensor 'g0.k0.f0': zero dimension in shape (64, 0)"},
    {"kron orders differ", CFG(""), "g0.k0.f0=8x2 g0.k0.f1=8x2 g0.k1.f0=8x1", NULL, NULL, NONE,
     SLORA_EFORMAT, "group g0: Kronecker factor k1 has order 1, factor k0 has order 2"},
    {"core shape", CFG(""), "g0.k0.f0=64x2 g0.k0.f1=64x3 g0.k0.core=2x2", NULL, NULL, NONE,
     SLORA_EFORMAT, "tensor 'g0.k0.core': core dimension 1 is 2, factor f1 has rank 3"},
    {"core order", CFG(""), "g0.k0.f0=64x2 g0.k0.f1=64x2 g0.k0.core=4", NULL, NULL, NONE,
     SLORA_EFORMAT, "tensor 'g0.k0.core': core has 1 dimensions, the factor order is 2"},
    {"cp unequal ranks", CFG(""), "g0.k0.f0=64x2 g0.k0.f1=64x3", NULL, NULL, NONE, SLORA_EFORMAT,
     "g0.k0: CP factors (no core) need equal ranks, f0 has rank 2, f1 has rank 3"},
    {"fold too small", CFG(""), "g0.k0.f0=32x2 g0.k0.f1=64x2", NULL, NULL, NONE, SLORA_EFORMAT,
     "group g0: code length P_g = 2048 < N_g = 4096 without projection"},
    {"fold over bound", CFG(""), "g0.k0.f0=512x1 g0.k0.f1=512x1", NULL, NULL, NONE, SLORA_EFORMAT,
     "group g0: code length P_g = 262144 is over the sanity bound 69632"},
    {"projected over bound", CFG(",\"projection\":{\"kind\":\"fastfood\",\"seed\":3}"),
     "g0.k0.f0=512x1 g0.k0.f1=512x1", NULL, NULL, NONE, SLORA_EFORMAT,
     "group g0: code length P_g = 262144 is over the sanity bound"},
    {"too many kron factors", CFG(""), LORA " g0.k16.f0=1x1", NULL, NULL, NONE, SLORA_ELIMIT,
     "tensor 'g0.k16.f0': over the limit of 16 Kronecker factors"},
    {"nan", CFG(""), LORA, NULL, NULL, 70, __builtin_nanf(""), 0, SLORA_ENONFINITE,
     "tensor 'g0.k0.f0': NaN at element 70 (byte offset"},
    {"inf", CFG(""), LORA, NULL, NULL, 130, __builtin_inff(), 0, SLORA_ENONFINITE,
     "tensor 'g0.k0.f1': Inf at element 2 (byte offset"},
    {"params over max", CFG(""), LORA, NULL, NULL, -1, 0, 255, SLORA_ELIMIT,
     "parameter count 256 is over the limit of 255"},
};

/* SLORA_BAD_ADAPTERS=DIR: also write each file rejected under the default
 * limits to DIR/NAME.safetensors with its message fragment in DIR/NAME.txt,
 * for tests/e2e/adapter_rejects.sh to upload to the daemon. */
static void dump_bad(const char *name, const unsigned char *buf, size_t len, const char *frag)
{
    const char *dir = getenv("SLORA_BAD_ADAPTERS");
    if (!dir)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.txt", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s", frag);
    fclose(f);
}

START_TEST(rejects)
{
    const struct bad *b = &bads[_i];
    size_t len;
    unsigned char *buf = tb_build(b->config, b->spec, b->from, b->to, &len);
    if (b->poison_at >= 0) {
        size_t hl = (size_t)buf[0] | (size_t)buf[1] << 8 | (size_t)buf[2] << 16;
        memcpy(buf + 8 + hl + 4 * (size_t)b->poison_at, &b->poison, 4);
    }
    if (!b->max_params) {
        char name[32];
        snprintf(name, sizeof(name), "table_%02d", _i);
        dump_bad(name, buf, len, b->frag);
    }
    struct slora_adapter_limits lim;
    slora_adapter_limits_default(&lim);
    if (b->max_params)
        lim.max_params = b->max_params;
    struct slora_adapter *a = (void *)1;
    char diag[512] = "";
    int err = slora_adapter_parse(buf, len, &model, &lim, &a, diag, sizeof(diag));
    ck_assert_msg(err == b->want, "%s: got %d (%s), want %d", b->what, err, diag, b->want);
    ck_assert_msg(strstr(diag, b->frag), "%s: diag '%s' lacks '%s'", b->what, diag, b->frag);
    /* an invalid adapter file is 422 to an uploader, whatever the reason */
    ck_assert_int_eq(slora_err_http_status(err), 422);
    ck_assert_ptr_null(a);
    free(buf);
}
END_TEST

static struct slora_adapter *parse_ok(const char *config, const char *spec,
                                      const struct slora_shape *shape)
{
    size_t len;
    unsigned char *buf = tb_build(config, spec, NULL, NULL, &len);
    struct slora_adapter *a = NULL;
    char diag[512] = "";
    int err = slora_adapter_parse(buf, len, shape, NULL, &a, diag, sizeof(diag));
    ck_assert_msg(err == 0, "parse failed: %s", diag);
    ck_assert_int_eq(a->file_bytes, len);
    free(buf);
    return a;
}

START_TEST(lora_fields)
{
    struct slora_adapter *a = parse_ok(
        "{\"version\":1," BASE ",\"modules\":[\"v_proj\",\"wq\"],\"layers\":[1,3],\"alpha\":0.5}",
        "g0.k0.f0=32x2 g0.k0.f1=64x2 g1.k0.f0=64x2 g1.k0.f1=64x2 g2.k0.f0=32x1 g2.k0.f1=64x1 "
        "g3.k0.f0=64x3 g3.k0.f1=64x3",
        &model);
    ck_assert_int_eq(a->cfg.n_modules, 2);
    ck_assert_int_eq(a->cfg.modules[0], SLORA_MOD_WV);
    ck_assert_int_eq(a->cfg.n_layers, 2);
    ck_assert_int_eq(a->cfg.layers[1], 3);
    ck_assert_int_eq(a->cfg.groups_kind, SLORA_GROUPS_MATRIX);
    ck_assert_float_eq(a->cfg.alpha, 0.5f);
    ck_assert(!a->cfg.shuffle && !a->cfg.projection);
    /* order layer: (1, wv), (1, wq), (3, wv), (3, wq) */
    ck_assert_int_eq(a->n_targets, 4);
    ck_assert_int_eq(a->targets[2].layer, 3);
    ck_assert_int_eq(a->targets[2].module, SLORA_MOD_WV);
    ck_assert_int_eq(a->targets[2].rows, 32);
    ck_assert_int_eq(a->targets[2].cols, 64);
    ck_assert_int_eq(a->targets[3].offset, 2048 + 4096 + 2048);
    ck_assert_int_eq(a->total, 2 * (2048 + 4096));
    ck_assert_int_eq(a->n_groups, 4);
    ck_assert_int_eq(a->groups[3].offset, 8192);
    ck_assert_int_eq(a->groups[3].len, 4096);
    ck_assert_int_eq(a->groups[3].code_len, 4096);
    ck_assert_int_eq(a->groups[2].order, 2);
    ck_assert_int_eq(a->groups[2].n_kron, 1);
    ck_assert_int_eq(a->groups[2].k[0].r[1], 1);
    ck_assert_ptr_null(a->groups[2].k[0].core);
    ck_assert_int_eq(a->n_params, 64 + 128 + 128 + 128 + 32 + 64 + 192 + 192);
    /* tensor data in name order: g3.k0.f1 is the 8th tensor (t = 7) */
    ck_assert_float_eq(a->groups[3].k[0].a[1][5], tb_value(5, 7));
    ck_assert_float_eq(a->groups[0].k[0].a[0][0], tb_value(0, 0));
    ck_assert_ptr_eq(slora_adapter_ref(a), a);
    ck_assert_int_eq(a->refcount, 2);
    slora_adapter_unref(a);
    ck_assert_float_eq(a->groups[1].k[0].a[0][3], tb_value(3, 2));
    slora_adapter_unref(a);
    slora_adapter_unref(NULL);
}
END_TEST

/* Tucker M = 3 over (layers, out, in) with order/groups module, F16 and
 * BF16 tensors, shuffle and projection, default layers (all five). */
START_TEST(lotr_module_order)
{
    struct slora_adapter *a =
        parse_ok("{\"version\":1," BASE ",\"modules\":[\"wk\",\"w2\"],\"order\":\"module\","
                 "\"groups\":\"module\",\"shuffle\":{\"seed\":9007199254740991},"
                 "\"projection\":{\"kind\":\"fastfood\",\"seed\":0}}",
                 "g0.k0.f0=5x2@F16 g0.k0.f1=32x2@BF16 g0.k0.f2=64x3 g0.k0.core=2x2x3 "
                 "g1.k0.f0=5x1 g1.k0.f1=64x1 g1.k0.f2=86x1",
                 &model);
    ck_assert_int_eq(a->cfg.n_layers, 5);
    ck_assert_int_eq(a->cfg.layers[4], 4);
    ck_assert(a->cfg.shuffle && a->cfg.projection);
    ck_assert_uint_eq(a->cfg.shuffle_seed, 9007199254740991ULL);
    ck_assert_int_eq(a->n_targets, 10);
    /* order module: wk for layers 0..4, then w2 */
    ck_assert_int_eq(a->targets[4].module, SLORA_MOD_WK);
    ck_assert_int_eq(a->targets[4].layer, 4);
    ck_assert_int_eq(a->targets[5].module, SLORA_MOD_W2);
    ck_assert_int_eq(a->targets[5].layer, 0);
    ck_assert_int_eq(a->targets[5].offset, 5 * 32 * 64);
    ck_assert_int_eq(a->groups[0].len, 5 * 32 * 64);
    ck_assert_int_eq(a->groups[1].len, 5 * 64 * 172);
    ck_assert_int_eq(a->groups[0].code_len, 5 * 32 * 64);
    ck_assert_int_eq(a->groups[1].code_len, 5 * 64 * 86); /* projected: P_g < N_g allowed */
    ck_assert_ptr_nonnull(a->groups[0].k[0].core);
    ck_assert_float_eq(a->groups[0].k[0].a[0][3], tb_value(3, 0));
    ck_assert_float_eq(a->groups[0].k[0].a[1][7], tb_value(7, 1));
    ck_assert_float_eq(a->groups[0].k[0].core[11], tb_value(11, 3));
    slora_adapter_unref(a);
}
END_TEST

/* LoKr: two Kronecker factors, n_m multiply; even group split. */
START_TEST(lokr_and_count_groups)
{
    struct slora_adapter *a = parse_ok(CFG(",\"groups\":3"),
                                       "g0.k0.f0=4x4 g0.k0.f1=4x4 g0.k1.f0=9x1 g0.k1.f1=38x1 "
                                       "g1.k0.f0=37x1 g1.k0.f1=37x1 g2.k0.f0=1366x1",
                                       &model);
    ck_assert_int_eq(a->n_groups, 3);
    ck_assert_int_eq(a->groups[0].len, 1366);
    ck_assert_int_eq(a->groups[1].len, 1365);
    ck_assert_int_eq(a->groups[2].offset, 2731);
    ck_assert_int_eq(a->groups[0].n_kron, 2);
    ck_assert_int_eq(a->groups[0].n[0], 36);
    ck_assert_int_eq(a->groups[0].n[1], 152);
    ck_assert_int_eq(a->groups[0].code_len, 36 * 152);
    ck_assert_int_eq(a->groups[2].order, 1);
    /* every factor's records, packed group after group in one table */
    ck_assert_int_eq(a->groups[0].k[1].n[0], 9);
    ck_assert_int_eq(a->groups[0].k[1].n[1], 38);
    ck_assert_int_eq(a->groups[0].k[1].r[1], 1);
    ck_assert_float_eq(a->groups[0].k[1].a[1][37], tb_value(37, 3));
    ck_assert_int_eq(a->groups[1].n_kron, 1);
    ck_assert_int_eq(a->groups[1].k[0].n[1], 37);
    ck_assert_float_eq(a->groups[1].k[0].a[0][36], tb_value(36, 4));
    ck_assert_int_eq(a->groups[2].n[0], 1366);
    ck_assert_int_eq(a->groups[2].k[0].r[0], 1);
    ck_assert_float_eq(a->groups[2].k[0].a[0][1365], tb_value(1365, 6));
    slora_adapter_unref(a);
}
END_TEST

/* Without a model the base comes from the file (|vocab_size| accepted). */
START_TEST(no_model)
{
    struct slora_adapter *a = parse_ok(
        "{\"version\":1,\"base\":{\"dim\":16,\"n_layers\":2,\"n_heads\":2,\"n_kv_heads\":1,"
        "\"hidden_dim\":40,\"vocab_size\":-100},\"modules\":[\"wk\"],\"groups\":\"layer\"}",
        "g0.k0.f0=8x1 g0.k0.f1=16x1 g1.k0.f0=8x1 g1.k0.f1=16x1", NULL);
    ck_assert_int_eq(a->cfg.base.vocab_size, 100);
    ck_assert_int_eq(a->cfg.base.dim, 16);
    ck_assert_int_eq(a->total, 2 * 8 * 16);
    ck_assert_int_eq(a->groups[1].len, 128);
    slora_adapter_unref(a);
}
END_TEST

START_TEST(limits)
{
    struct slora_adapter_limits lim;
    slora_adapter_limits_default(&lim);
    ck_assert_int_eq(lim.max_params, 10000000);
    size_t len;
    char diag[256] = "";
    struct slora_adapter *a;
    unsigned char *buf = tb_build(CFG(",\"groups\":1"), LORA, NULL, NULL, &len);
    lim.max_total = 4095;
    ck_assert_int_eq(slora_adapter_parse(buf, len, &model, &lim, &a, diag, sizeof(diag)),
                     SLORA_ELIMIT);
    ck_assert_ptr_nonnull(strstr(diag, "total size N of the targets is over the limit of 4095"));
    free(buf);

    slora_adapter_limits_default(&lim);
    lim.max_core = 3;
    buf = tb_build(CFG(""), "g0.k0.f0=64x2 g0.k0.f1=64x2 g0.k0.core=2x2", NULL, NULL, &len);
    ck_assert_int_eq(slora_adapter_parse(buf, len, &model, &lim, &a, diag, sizeof(diag)),
                     SLORA_ELIMIT);
    ck_assert_ptr_nonnull(
        strstr(diag, "tensor 'g0.k0.core': 4 core elements is over the limit of 3"));
    free(buf);

    slora_adapter_limits_default(&lim);
    lim.max_fastfood = 4096;
    buf = tb_build(CFG(",\"projection\":{\"kind\":\"fastfood\",\"seed\":1}"),
                   "g0.k0.f0=65x2 g0.k0.f1=64x2", NULL, NULL, &len);
    ck_assert_int_eq(slora_adapter_parse(buf, len, &model, &lim, &a, diag, sizeof(diag)),
                     SLORA_ELIMIT);
    ck_assert_ptr_nonnull(
        strstr(diag, "group g0: fastfood length L = 8192 is over the limit of 4096"));
    free(buf);

    slora_adapter_limits_default(&lim);
    lim.max_groups = 2;
    buf = tb_build(CFG(",\"groups\":3"), LORA, NULL, NULL, &len);
    ck_assert_int_eq(slora_adapter_parse(buf, len, &model, &lim, &a, diag, sizeof(diag)),
                     SLORA_ELIMIT);
    ck_assert_ptr_nonnull(strstr(diag, "3 groups is over the limit of 2"));
    free(buf);
}
END_TEST

/* Rejections that only generating the deltas finds (slora_adapter_validate). */
START_TEST(validate_rejects)
{
    char diag[512] = "";
    struct slora_adapter *a = (void *)1;
    size_t len;
    /* dW[0, 0] = 1e20 * 1e20 overflows float32 */
    unsigned char *buf = tb_build(CFG(""), "g0.k0.f0=64x1 g0.k0.f1=64x1", NULL, NULL, &len);
    size_t hl = (size_t)buf[0] | (size_t)buf[1] << 8;
    float big = 1e20f;
    memcpy(buf + 8 + hl, &big, 4);
    memcpy(buf + 8 + hl + 4 * 64, &big, 4);
    ck_assert_int_eq(slora_adapter_parse(buf, len, &model, NULL, &a, diag, sizeof(diag)), 0);
    slora_adapter_unref(a);
    dump_bad("validate_overflow", buf, len, "layers.0.wq");
    ck_assert_int_eq(slora_adapter_validate(buf, len, &model, NULL, 1, &a, diag, sizeof(diag)),
                     SLORA_ENONFINITE);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(diag, "layers.0.wq"), "%s", diag);
    free(buf);

    /* One group per element of layer 0 wk (2048), fastfood seed 5: the numpy
     * reference (make_fixtures.py gd_zero_case) finds gd = 0 for group 1108. */
    char *spec = malloc(2048 * 20);
    size_t n = 0;
    for (int g = 0; g < 2048; g++)
        n += (size_t)sprintf(spec + n, "%sg%d.k0.f0=1x1", g ? " " : "", g);
    buf = tb_build("{\"version\":1," BASE ",\"modules\":[\"wk\"],\"layers\":[0],"
                   "\"groups\":2048,\"projection\":{\"kind\":\"fastfood\",\"seed\":5}}",
                   spec, NULL, NULL, &len);
    dump_bad("validate_gd_zero", buf, len, "group 1108: fastfood norm2(gd) = 0");
    ck_assert_int_eq(slora_adapter_validate(buf, len, &model, NULL, 2, &a, diag, sizeof(diag)),
                     SLORA_ELIMIT);
    ck_assert_msg(strstr(diag, "group 1108: fastfood norm2(gd) = 0"), "%s", diag);
    free(buf);
    free(spec);

    buf = tb_build(CFG(",\"shuffle\":{\"seed\":3}"), LORA, NULL, NULL, &len);
    ck_assert_int_eq(slora_adapter_validate(buf, len, &model, NULL, 2, &a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(a->total, 4096);
    slora_adapter_unref(a);
    free(buf);
}
END_TEST

/* VmRSS or VmHWM of this process, in bytes. */
static size_t proc_status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    size_t kb = 0, n = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = strtoull(line + n + 1, NULL, 10);
    fclose(f);
    ck_assert_uint_gt(kb, 0);
    return kb << 10;
}

/* Restart VmHWM from the current RSS (Linux clear_refs, value 5). */
static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs("5", f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* CP M = 3 (61, 61, 61) over every module of every layer (N = 226560),
 * rank R: the cheapest order builds a (3715, R) Khatri-Rao product. */
static unsigned char *budget_adapter(int rank, size_t *len)
{
    char spec[128];
    snprintf(spec, sizeof(spec), "g0.k0.f0=61x%d g0.k0.f1=61x%d g0.k0.f2=61x%d", rank, rank, rank);
    return tb_build("{\"version\":1," BASE ",\"modules\":[\"wq\",\"wk\",\"wv\",\"wo\",\"w1\","
                    "\"w2\",\"w3\"],\"groups\":1}",
                    spec, NULL, NULL, len);
}

/* An adapter exactly at max_expand_bytes is accepted, with the measured
 * peak of its validation (VmHWM after clear_refs) checked against the
 * estimate; one byte less, or a work limit below its work, is refused
 * before anything is generated. */
START_TEST(expand_budget)
{
    size_t len;
    struct slora_adapter *a;
    char diag[512] = "";
    unsigned char *buf = budget_adapter(64, &len); /* BLAS buffers, thread stacks: warm */
    ck_assert_int_eq(slora_adapter_validate(buf, len, &model, NULL, 1, &a, diag, sizeof(diag)), 0);
    slora_adapter_unref(a);
    free(buf);

    buf = budget_adapter(2048, &len);
    ck_assert_int_eq(slora_adapter_parse(buf, len, &model, NULL, &a, diag, sizeof(diag)), 0);
    struct slora_superlora_cost cost;
    ck_assert_int_eq(slora_superlora_cost(a, 1, &cost, diag, sizeof(diag)), 0);
    slora_adapter_unref(a);
    /* (3715, 2048) floats, then the worker's 128 KiB tile */
    ck_assert_uint_eq(cost.scratch_bytes, ((size_t)3715 * 2048 + 32768) * 4);
    /* the product alone: 226560 outputs x rank 2048 */
    ck_assert_uint_ge(cost.work, (size_t)226560 * 2048);

    struct slora_adapter_limits lim;
    slora_adapter_limits_default(&lim);
    lim.max_expand_bytes = (int64_t)cost.scratch_bytes;
    reset_peak_rss();
    size_t before = proc_status_bytes("VmRSS");
    ck_assert_int_eq(slora_adapter_validate(buf, len, &model, &lim, 1, &a, diag, sizeof(diag)), 0);
    size_t peak = proc_status_bytes("VmHWM") - before;
    /* scratch (each page written once) + parameters + output, 8 MiB of
     * slack (stacks, BLAS packing) and 1/8 for a sanitizer's shadow */
    size_t held = (size_t)a->n_params * 4 + (size_t)a->total * 4;
    ck_assert_msg(peak >= cost.scratch_bytes / 2 && peak <= cost.scratch_bytes + held +
                                                                cost.scratch_bytes / 8 +
                                                                ((size_t)8 << 20),
                  "measured peak %zu bytes, estimate %zu", peak, cost.scratch_bytes);
    slora_adapter_unref(a);

    lim.max_expand_bytes--;
    ck_assert_int_eq(slora_adapter_validate(buf, len, &model, &lim, 1, &a, diag, sizeof(diag)),
                     SLORA_ELIMIT);
    ck_assert_ptr_null(a);
    char want[160];
    snprintf(want, sizeof(want),
             "expanding the adapter needs %zu bytes of intermediates, over the limit of %lld "
             "(max_expand_bytes)",
             cost.scratch_bytes, (long long)lim.max_expand_bytes);
    ck_assert_str_eq(diag, want);

    slora_adapter_limits_default(&lim);
    lim.max_expand_work = (int64_t)cost.work - 1;
    ck_assert_int_eq(slora_adapter_validate(buf, len, &model, &lim, 1, &a, diag, sizeof(diag)),
                     SLORA_ELIMIT);
    ck_assert_msg(strstr(diag, "multiply-adds, over the limit of") &&
                      strstr(diag, "(max_expand_work)"),
                  "%s", diag);
    free(buf);
}
END_TEST

START_TEST(load_file)
{
    char path[] = "/tmp/slora-adapter-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t len;
    unsigned char *buf = tb_build(CFG(""), LORA, NULL, NULL, &len);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
    free(buf);
    struct slora_adapter *a;
    char diag[512] = "";
    ck_assert_int_eq(slora_adapter_load(path, &model, NULL, 1, &a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(a->file_bytes, len);
    slora_adapter_unref(a);
    unlink(path);
    ck_assert_int_eq(slora_adapter_load(path, &model, NULL, 0, &a, diag, sizeof(diag)), SLORA_EIO);
    ck_assert_ptr_nonnull(strstr(diag, path));
    ck_assert_int_eq(slora_adapter_load("/tmp", &model, NULL, 0, &a, diag, sizeof(diag)),
                     SLORA_EIO);
    ck_assert_ptr_nonnull(strstr(diag, "/tmp: not a regular file"));
}
END_TEST

Suite *slora_adapter_suite(void)
{
    Suite *s = suite_create("adapter");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, rejects, 0, sizeof(bads) / sizeof(bads[0]));
    tcase_add_test(tc, lora_fields);
    tcase_add_test(tc, lotr_module_order);
    tcase_add_test(tc, lokr_and_count_groups);
    tcase_add_test(tc, no_model);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, validate_rejects);
    tcase_add_test(tc, expand_budget);
    tcase_add_test(tc, load_file);
    suite_add_tcase(s, tc);
    return s;
}
