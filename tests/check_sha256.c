/* check_sha256.c - SHA-256 against the FIPS 180-2 appendix B / NIST CAVS
 * published vectors, streaming equivalence, hex round trip, comparison. */
#include <slora/error.h>
#include <slora/sha256.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *msg;
    const char *hex;
} vectors[] = {
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
     "qrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
};

START_TEST(published_vectors)
{
    uint8_t d[SLORA_SHA256_LEN];
    char hex[SLORA_SHA256_HEX_LEN + 1];
    slora_sha256(vectors[_i].msg, strlen(vectors[_i].msg), d);
    slora_sha256_hex(d, hex);
    ck_assert_str_eq(hex, vectors[_i].hex);
}
END_TEST

START_TEST(million_a_streamed_in_odd_pieces)
{
    /* FIPS 180-2 B.3; pieces of 1..97 bytes cross every block boundary. */
    char chunk[97];
    memset(chunk, 'a', sizeof(chunk));
    struct slora_sha256 c;
    slora_sha256_init(&c);
    size_t left = 1000000, piece = 1;
    while (left > 0) {
        size_t n = piece < left ? piece : left;
        slora_sha256_update(&c, chunk, n);
        left -= n;
        piece = piece % 97 + 1;
    }
    uint8_t d[SLORA_SHA256_LEN];
    char hex[SLORA_SHA256_HEX_LEN + 1];
    slora_sha256_final(&c, d);
    slora_sha256_hex(d, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(padding_boundaries_match_one_shot)
{
    /* Lengths 55, 56, 63, 64, 65 straddle the one/two padding-block cases;
     * byte-at-a-time updates must agree with the one-shot digest. */
    static const size_t lens[] = {55, 56, 63, 64, 65, 119, 120};
    uint8_t msg[120];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        uint8_t a[SLORA_SHA256_LEN], b[SLORA_SHA256_LEN];
        slora_sha256(msg, lens[k], a);
        struct slora_sha256 c;
        slora_sha256_init(&c);
        for (size_t i = 0; i < lens[k]; i++)
            slora_sha256_update(&c, msg + i, 1);
        slora_sha256_final(&c, b);
        ck_assert_mem_eq(a, b, SLORA_SHA256_LEN);
    }
}
END_TEST

START_TEST(hex_parse_and_compare)
{
    uint8_t d[SLORA_SHA256_LEN], e[SLORA_SHA256_LEN];
    char hex[SLORA_SHA256_HEX_LEN + 1];
    slora_sha256("abc", 3, d);
    ck_assert_int_eq(slora_sha256_parse_hex(vectors[0].hex, e), 0);
    ck_assert(slora_sha256_equal(d, e));
    ck_assert_int_eq(slora_sha256_parse_hex(
                         "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", e),
                     0);
    slora_sha256_hex(e, hex);
    ck_assert_str_eq(hex, vectors[0].hex);
    e[31] ^= 1;
    ck_assert(!slora_sha256_equal(d, e));
    e[31] ^= 1;
    e[0] ^= 0x80;
    ck_assert(!slora_sha256_equal(d, e));
    /* 63 digits, 65 digits, a non-hex digit, a space. */
    ck_assert_int_eq(slora_sha256_parse_hex(
                         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a", e),
                     SLORA_EINVAL);
    ck_assert_int_eq(slora_sha256_parse_hex(
                         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", e),
                     SLORA_EINVAL);
    ck_assert_int_eq(slora_sha256_parse_hex(
                         "ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", e),
                     SLORA_EINVAL);
    ck_assert_int_eq(slora_sha256_parse_hex(
                         " a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", e),
                     SLORA_EINVAL);
}
END_TEST

Suite *slora_sha256_suite(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, published_vectors, 0, sizeof(vectors) / sizeof(vectors[0]));
    tcase_add_test(tc, million_a_streamed_in_odd_pieces);
    tcase_add_test(tc, padding_boundaries_match_one_shot);
    tcase_add_test(tc, hex_parse_and_compare);
    suite_add_tcase(s, tc);
    return s;
}
