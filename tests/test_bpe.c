/* Byte-level BPE: known merges on a tiny text, the same merges on every
 * run, encode then decode giving any bytes back, a vocabulary rebuilt from
 * its merges encoding alike, and bad merges refused; chrF by hand. */
#include "trainer/bpe.h"
#include "trainer/chrf.h"
#include "trainer/philox.h"

#include "tests/suite.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const char *const VERSES =
    "In the beginning God created the heaven and the earth. And the earth was without form, "
    "and void; and darkness was upon the face of the deep. EN el principio crió Dios los "
    "cielos y la tierra. Y la tierra estaba desordenada y vacía, y las tinieblas estaban "
    "sobre la haz del abismo. And God said, Let there be light: and there was light.\n"
    "Y dijo Dios: Sea la luz: y fué la luz. 1:1 2:3 ¶ 12345";

START_TEST(known_merges)
{
    bpe b;
    const char *text = "ab ab ab";
    ck_assert_int_eq(bpe_learn(&b, (const uint8_t *)text, strlen(text), 256 + 2 + BPE_SPECIALS),
                     0);
    ck_assert_int_eq(b.nmerges, 2);
    ck_assert_int_eq(b.vocab, 256 + 2 + BPE_SPECIALS);
    /* (a, b) three times first, then (space, ab) twice */
    ck_assert_int_eq(b.merges[0][0], 'a');
    ck_assert_int_eq(b.merges[0][1], 'b');
    ck_assert_int_eq(b.merges[1][0], ' ');
    ck_assert_int_eq(b.merges[1][1], 256);
    uint16_t ids[8];
    ck_assert_uint_eq(bpe_encode(&b, (const uint8_t *)text, strlen(text), ids), 3);
    ck_assert_int_eq(ids[0], 256);
    ck_assert_int_eq(ids[1], 257);
    ck_assert_int_eq(ids[2], 257);
    /* a text with no pair left stops early */
    bpe_free(&b);
    ck_assert_int_eq(bpe_learn(&b, (const uint8_t *)"a.b", 3, 300), 0); /* chunks a . b */
    ck_assert_int_eq(b.nmerges, 0);
    ck_assert_int_eq(b.vocab, 256 + BPE_SPECIALS);
    bpe_free(&b);
}
END_TEST

START_TEST(chunks_bound_merges)
{
    /* "a.a." never merges '.' with the letter after it: chunks are runs of one class */
    bpe b;
    const char *text = "x.y x.y x.y x.y";
    ck_assert_int_eq(bpe_learn(&b, (const uint8_t *)text, strlen(text), 400), 0);
    for (int i = 0; i < b.nmerges; i++) {
        const uint8_t *t = b.tok_bytes + b.tok_off[256 + i];
        const uint32_t n = b.tok_off[257 + i] - b.tok_off[256 + i];
        for (uint32_t j = 1; j < n; j++) {
            const int letters = (t[j - 1] == '.') + (t[j] == '.') == 1 && t[j - 1] != ' ' &&
                                t[j] != ' ';
            ck_assert_msg(!letters, "merge %d crosses a chunk: \"%.*s\"", i, (int)n, t);
        }
    }
    bpe_free(&b);
}
END_TEST

START_TEST(same_merges_every_run)
{
    bpe a, b;
    const size_t n = strlen(VERSES);
    ck_assert_int_eq(bpe_learn(&a, (const uint8_t *)VERSES, n, 400), 0);
    ck_assert_int_eq(bpe_learn(&b, (const uint8_t *)VERSES, n, 400), 0);
    ck_assert_int_eq(a.nmerges, b.nmerges);
    ck_assert_int_gt(a.nmerges, 50);
    ck_assert_int_eq(memcmp(a.merges, b.merges, (size_t)a.nmerges * sizeof *a.merges), 0);
    bpe_free(&a);
    bpe_free(&b);
}
END_TEST

START_TEST(round_trips)
{
    bpe b, c;
    const size_t n = strlen(VERSES);
    ck_assert_int_eq(bpe_learn(&b, (const uint8_t *)VERSES, n, 400), 0);
    ck_assert_int_eq(bpe_from_merges(&c, (const uint16_t(*)[2])b.merges, b.nmerges), 0);
    enum { LEN = 4096 };
    static uint8_t text[LEN], back[LEN];
    static uint16_t ids[LEN], ids2[LEN];
    for (int trial = 0; trial < 20; trial++) {
        /* random bytes (invalid UTF-8, NULs, controls), then the verses */
        size_t len = LEN;
        if (trial % 2) {
            uint32_t w[4];
            for (size_t i = 0; i < LEN; i += 4) {
                rng_block(7, (uint32_t)trial, RNG_INIT, (uint32_t)i, 0, 0, w);
                for (int k = 0; k < 4; k++)
                    text[i + k] = (uint8_t)w[k];
            }
        } else {
            len = n;
            memcpy(text, VERSES, n);
        }
        const size_t k = bpe_encode(&b, text, len, ids);
        ck_assert_uint_le(k, len);
        if (trial % 2 == 0)
            ck_assert_uint_lt(k, len / 2); /* the text it learned from compresses */
        for (size_t i = 0; i < k; i++)
            ck_assert_int_lt(ids[i], b.vocab - BPE_SPECIALS);
        ck_assert_uint_eq(bpe_decode(&b, ids, k, back, sizeof back), len);
        ck_assert_int_eq(memcmp(back, text, len), 0);
        ck_assert_uint_eq(bpe_encode(&c, text, len, ids2), k);
        ck_assert_int_eq(memcmp(ids, ids2, k * sizeof *ids), 0);
    }
    /* the specials stand for no bytes */
    const uint16_t sp[3] = {(uint16_t)bpe_begin(&b), (uint16_t)bpe_end(&b), (uint16_t)bpe_pad(&b)};
    ck_assert_uint_eq(bpe_decode(&b, sp, 3, back, sizeof back), 0);
    bpe_free(&b);
    bpe_free(&c);
}
END_TEST

START_TEST(bad_merges_refused)
{
    bpe b;
    const uint16_t merges[2][2] = {{'a', 'b'}, {257, 'c'}}; /* 257 is made by this very merge */
    ck_assert_int_eq(bpe_from_merges(&b, merges, 2), -1);
    ck_assert_int_eq(bpe_learn(&b, (const uint8_t *)"ab", 2, 100), -1);
}
END_TEST

static double chrf_of(const char *hyp, const char *ref)
{
    chrf_stats s;
    memset(&s, 0, sizeof s);
    chrf_add(&s, (const uint8_t *)hyp, strlen(hyp), (const uint8_t *)ref, strlen(ref));
    return chrf_score(&s);
}

START_TEST(chrf_by_hand)
{
    ck_assert_double_eq_tol(chrf_of("la luz del día", "la luz del día"), 100.0, 1e-9);
    ck_assert_double_eq_tol(chrf_of("la luz del día", "laluzdeldía"), 100.0, 1e-9); /* no spaces */
    ck_assert_double_eq_tol(chrf_of("xyz", "abc"), 0.0, 1e-9);
    /* "abcdef" against "abcdeg": order n matches 6-n of 7-n n-grams on both
     * sides for n <= 5 (5/6, 4/5, 3/4, 2/3, 1/2) and 0 of 1 for n = 6, so
     * precision = recall = their mean and chrF is that mean */
    const double mean = (5.0 / 6 + 4.0 / 5 + 3.0 / 4 + 2.0 / 3 + 1.0 / 2 + 0.0) / 6.0;
    ck_assert_double_eq_tol(chrf_of("abcdef", "abcdeg"), 100.0 * mean, 1e-9);
    /* a two-byte letter is one character: "é" and "e" share no character */
    ck_assert_double_eq_tol(chrf_of("\xc3\xa9", "e"), 0.0, 1e-9);
    /* recall weighs more than precision (beta 2): a short hypothesis loses more */
    ck_assert_double_gt(chrf_of("abcdefgh", "abcd"), chrf_of("abcd", "abcdefgh"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bpe");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, known_merges);
    tcase_add_test(tc, chunks_bound_merges);
    tcase_add_test(tc, same_merges_every_run);
    tcase_add_test(tc, round_trips);
    tcase_add_test(tc, bad_merges_refused);
    tcase_add_test(tc, chrf_by_hand);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
